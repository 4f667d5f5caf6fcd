"""fasterapi: an ASGI server written in Rust, a drop-in replacement for uvicorn."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from fasterapi.config import Config

if TYPE_CHECKING:
    from fasterapi.server import Server

    __version__: str

__all__ = ["Config", "Server", "run", "__version__"]


def run(app: Any, **kwargs: Any) -> None:
    """Serve `app` (an ASGI callable or a "module:attribute" string) like `uvicorn.run`."""
    from fasterapi.server import serve_config

    status = serve_config(Config(app, **kwargs))
    if status:
        sys.exit(status)


def __getattr__(name: str) -> Any:
    # The server (and the compiled core) are imported on first use, so `fasterapi.config`
    # stays importable without the extension, e.g. while building.
    if name == "Server":
        from fasterapi.server import Server

        return Server
    # The version too: importing importlib.metadata took a sixth of the CLI's start-up (~20 ms).
    if name == "__version__":
        globals()[name] = installed = _installed_version()
        return installed
    raise AttributeError(f"module 'fasterapi' has no attribute {name!r}")


def _installed_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("fasterapi")
    except PackageNotFoundError:  # running from a source tree without installing
        return "0.1.0"
