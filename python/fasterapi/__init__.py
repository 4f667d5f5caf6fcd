"""fasterapi: an ASGI server written in Rust, a drop-in replacement for uvicorn."""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from fasterapi.config import Config

if TYPE_CHECKING:
    from fasterapi.server import Server

try:
    __version__ = version("fasterapi")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.1.0"

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
    raise AttributeError(f"module 'fasterapi' has no attribute {name!r}")
