"""`Config`: the single source of truth for the CLI, `fasterapi.run()` and the server.

Every option is validated once, here, and a bad value is reported with the option's name.
"""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import logging
import logging.config
import os
import sys
from collections.abc import Sequence
from typing import Any

from fasterapi.asgi2 import ASGI2Middleware
from fasterapi.importer import ImportFromStringError, import_from_string
from fasterapi.logging import LOG_LEVELS, LOGGING_CONFIG, TRACE_LOG_LEVEL

logger = logging.getLogger("fasterapi.error")

LIFESPAN_MODES = ("auto", "on", "off")
LOOP_CHOICES = ("auto", "asyncio", "uvloop")
INTERFACES = ("auto", "asgi3", "asgi2")

EXIT_STARTUP_FAILURE = 3


def _choice(option: str, value: str, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ValueError(f"{option} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _seconds(option: str, value: float | None, *, allow_none: bool) -> float | None:
    if value is None:
        if allow_none:
            return None
        raise ValueError(f"{option} must be a number of seconds, got None")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"{option} must be a non-negative number of seconds, got {value!r}")
    return value


class Config:
    """Server settings with uvicorn's names and defaults."""

    def __init__(
        self,
        app: Any,
        *,
        host: str = "127.0.0.1",
        port: int = 8000,
        app_dir: str | None = ".",
        factory: bool = False,
        lifespan: str = "auto",
        interface: str = "auto",
        log_level: str | int | None = None,
        log_config: dict[str, Any] | None = LOGGING_CONFIG,
        access_log: bool = True,
        loop: str = "auto",
        root_path: str = "",
        timeout_keep_alive: float = 5,
        timeout_graceful_shutdown: float | None = None,
        server_header: bool = True,
        date_header: bool = True,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        self.app = app
        self.host = host
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"--port must be an integer between 0 and 65535, got {port!r}")
        self.port = port
        self.app_dir = app_dir
        self.factory = factory
        self.lifespan = _choice("--lifespan", lifespan, LIFESPAN_MODES)
        self.interface = _choice("--interface", interface, INTERFACES)
        if isinstance(log_level, str):
            _choice("--log-level", log_level, tuple(LOG_LEVELS))
        self.log_level = log_level
        self.log_config = log_config
        self.access_log = access_log
        self.loop = _choice("--loop", loop, LOOP_CHOICES)
        if self.loop == "uvloop" and importlib.util.find_spec("uvloop") is None:
            raise ValueError("--loop uvloop needs the uvloop package: pip install uvloop")
        if root_path and not root_path.startswith("/"):
            raise ValueError(f"--root-path must start with '/', got {root_path!r}")
        self.root_path = root_path.rstrip("/")
        self.timeout_keep_alive = _seconds("--timeout-keep-alive", timeout_keep_alive, allow_none=False)
        if not self.timeout_keep_alive:
            raise ValueError("--timeout-keep-alive must be at least 1 second")
        self.timeout_graceful_shutdown = _seconds(
            "--timeout-graceful-shutdown", timeout_graceful_shutdown, allow_none=True
        )
        self.server_header = server_header
        self.date_header = date_header
        self.headers = [self._header(h) for h in (headers or [])]
        self.loaded_app: Any = None

    @staticmethod
    def _header(header: Any) -> tuple[str, str]:
        if isinstance(header, str):
            name, sep, value = header.partition(":")
            if not sep:
                raise ValueError(f"--header must be NAME:VALUE, got {header!r}")
            header = (name, value)
        name, value = header
        if not name.strip() or any(c in f"{name}{value}" for c in "\r\n\0"):
            raise ValueError(f"--header has an invalid name or value: {header!r}")
        return name.strip(), value.strip()

    @property
    def use_uvloop(self) -> bool:
        if self.loop == "auto":
            return importlib.util.find_spec("uvloop") is not None
        return self.loop == "uvloop"

    @property
    def is_ssl(self) -> bool:
        return False

    def configure_logging(self) -> None:
        """Apply the log config, then the log level to our three loggers."""
        if self.log_config is not None:
            logging.config.dictConfig(self.log_config)
        if self.log_level is not None:
            level = LOG_LEVELS[self.log_level] if isinstance(self.log_level, str) else self.log_level
            for name in ("fasterapi", "fasterapi.error", "fasterapi.access"):
                logging.getLogger(name).setLevel(level)
        if not self.access_log:
            access = logging.getLogger("fasterapi.access")
            access.handlers = []
            access.propagate = False
        logging.getLogger("fasterapi.error").log(
            TRACE_LOG_LEVEL, "Logging configured at level %s", self.log_level
        )

    def load(self) -> None:
        """Import the app (exit status 3 with one clear line on failure) and adapt ASGI 2."""
        if self.app_dir is not None:
            sys.path.insert(0, os.path.abspath(self.app_dir))
        try:
            app = import_from_string(self.app)
        except ImportFromStringError as exc:
            logger.error("Error loading ASGI app. %s", exc)
            sys.exit(EXIT_STARTUP_FAILURE)
        except Exception:  # noqa: BLE001 - the app's own module failed while importing
            logger.exception("Error loading ASGI app. Exception raised while importing %r:", self.app)
            sys.exit(EXIT_STARTUP_FAILURE)

        if self.factory:
            try:
                app = app()
            except TypeError as exc:
                logger.error("Error loading ASGI app factory: %s", exc)
                sys.exit(EXIT_STARTUP_FAILURE)
            except Exception:  # noqa: BLE001
                logger.exception("Error loading ASGI app factory:")
                sys.exit(EXIT_STARTUP_FAILURE)

        if not callable(app):
            logger.error('Error loading ASGI app. "%s" is not callable.', self.app)
            sys.exit(EXIT_STARTUP_FAILURE)

        interface = self.interface
        if interface == "auto":
            interface = "asgi3" if _looks_like_asgi3(app) else "asgi2"
        self.interface = interface
        self.loaded_app = ASGI2Middleware(app) if interface == "asgi2" else app


def _looks_like_asgi3(app: Any) -> bool:
    """uvicorn's rule: a class is ASGI 3 if its instances are awaitable; a function if it is a
    coroutine function; any other callable if its `__call__` is a coroutine function."""
    if inspect.isclass(app):
        return hasattr(app, "__await__")
    if inspect.isfunction(app):
        return asyncio.iscoroutinefunction(app)
    return asyncio.iscoroutinefunction(app.__call__)
