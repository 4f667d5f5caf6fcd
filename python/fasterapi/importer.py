"""Import an object from a `module:attribute` string, telling a missing module or attribute
apart from an error raised while the module itself was being imported."""

from __future__ import annotations

import importlib
from typing import Any


class ImportFromStringError(Exception):
    """The import string names nothing importable; the message is the one line users see."""


def import_from_string(import_str: Any) -> Any:
    """Return the object named by `module:attr.attr`; objects are returned as they are."""
    if not isinstance(import_str, str):
        return import_str

    module_str, _, attrs_str = import_str.partition(":")
    if not module_str or not attrs_str:
        raise ImportFromStringError(f'Import string "{import_str}" must be in format "<module>:<attribute>".')

    try:
        module = importlib.import_module(module_str)
    except ModuleNotFoundError as exc:
        # Only a missing *requested* module is ours to report; anything else came from the app.
        if exc.name is None or not _is_prefix(exc.name, module_str):
            raise
        raise ImportFromStringError(f'Could not import module "{module_str}".') from None

    instance: Any = module
    try:
        for attr in attrs_str.split("."):
            instance = getattr(instance, attr)
    except AttributeError:
        raise ImportFromStringError(f'Attribute "{attrs_str}" not found in module "{module_str}".') from None
    return instance


def _is_prefix(missing: str, wanted: str) -> bool:
    """True when `missing` is `wanted` or one of its parent packages."""
    return wanted == missing or wanted.startswith(missing + ".")
