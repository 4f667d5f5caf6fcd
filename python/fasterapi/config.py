"""`Config`: the single source of truth for the CLI, `fasterapi.run()` and the server.

Every option has uvicorn's name, meaning and default, is validated once, here, and a bad value is
reported with the option's name. Options whose feature is not built yet are refused clearly.
"""

from __future__ import annotations

import asyncio
import configparser
import importlib.util
import inspect
import ipaddress
import json
import logging
import logging.config
import os
import random
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fasterapi.asgi2 import ASGI2Middleware
from fasterapi.envfile import load_env_file
from fasterapi.importer import ImportFromStringError, import_from_string
from fasterapi.logging import LOG_LEVELS, LOGGING_CONFIG, TRACE_LOG_LEVEL, adopt_uvicorn_names
from fasterapi.loops import loop_factory

logger = logging.getLogger("fasterapi.error")

LIFESPAN_MODES = ("auto", "on", "off")
#: Besides these, `--loop` takes a loop factory as "module:attribute", as uvicorn's does.
LOOP_CHOICES = ("auto", "asyncio", "uvloop", "zuvloop", "none")
INTERFACES = ("auto", "asgi3", "asgi2")
HTTP_CHOICES = ("auto", "h1", "h2", "h11", "httptools", "zttp")
#: uvicorn's HTTP/1.1 implementations: all mean our HTTP/1.1-only mode, `h1`.
UVICORN_HTTP1 = ("h11", "httptools", "zttp")
WS_CHOICES = ("auto", "none", "websockets", "websockets-sansio", "wsproto")
SSL_CERT_REQS = (0, 1, 2)
#: `ssl.PROTOCOL_TLS_SERVER` (uvicorn's default), `ssl.PROTOCOL_TLS`, `ssl.PROTOCOL_TLSv1_2`.
SSL_PROTOCOL_TLS_SERVER = 17
SSL_VERSIONS = {17: "all", 2: "all", 5: "tls12"}

EXIT_STARTUP_FAILURE = 3


def _choice(option: str, value: Any, choices: tuple[Any, ...]) -> Any:
    if value not in choices:
        raise ValueError(f"{option} must be one of {', '.join(map(str, choices))}, got {value!r}")
    return value


def _number(option: str, value: Any, *, minimum: float = 0, allow_none: bool = False) -> Any:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
        raise ValueError(f"{option} must be a number >= {minimum:g}, got {value!r}")
    return value


def _integer(option: str, value: Any, *, minimum: int = 0, allow_none: bool = False) -> Any:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{option} must be an integer >= {minimum}, got {value!r}")
    return value


def _strings(value: list[str] | tuple[str, ...] | str | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _forwarded_allow_ips(value: str | list[str] | None) -> str:
    if value is None:
        value = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
    items = [v.strip() for v in (value.split(",") if isinstance(value, str) else value) if v.strip()]
    for item in items:
        if item == "*" or not item[0].isdigit() and ":" not in item:
            continue  # the wildcard, or a literal such as "unix:"
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ValueError(f"--forwarded-allow-ips: {item!r} is not an IP address or network") from None
    return ",".join(items)


class Config:
    """Server settings with uvicorn's names and defaults."""

    def __init__(
        self,
        app: Any,
        *,
        host: str = "127.0.0.1",
        port: int = 8000,
        uds: str | None = None,
        fd: int | None = None,
        loop: str = "auto",
        http: str = "auto",
        http2: bool = False,
        ws: str = "auto",
        ws_max_size: int = 16 * 1024 * 1024,
        ws_max_queue: int = 32,
        ws_ping_interval: float | None = 20.0,
        ws_ping_timeout: float | None = 20.0,
        ws_per_message_deflate: bool = True,
        lifespan: str = "auto",
        interface: str = "auto",
        reload: bool = False,
        reload_dirs: list[str] | str | None = None,
        reload_includes: list[str] | str | None = None,
        reload_excludes: list[str] | str | None = None,
        reload_delay: float = 0.25,
        workers: int | None = None,
        limit_max_memory: int | None = None,
        env_file: str | os.PathLike[str] | None = None,
        log_config: dict[str, Any]
        | str
        | os.PathLike[str]
        | configparser.RawConfigParser
        | None = LOGGING_CONFIG,
        log_level: str | int | None = None,
        access_log: bool = True,
        use_colors: bool | None = None,
        proxy_headers: bool = True,
        server_header: bool = True,
        date_header: bool = True,
        forwarded_allow_ips: list[str] | str | None = None,
        root_path: str = "",
        limit_concurrency: int | None = None,
        limit_max_requests: int | None = None,
        limit_max_requests_jitter: int = 0,
        backlog: int = 2048,
        timeout_keep_alive: float = 5,
        timeout_graceful_shutdown: float | None = None,
        timeout_worker_healthcheck: float = 5,
        ssl_keyfile: str | os.PathLike[str] | None = None,
        ssl_certfile: str | os.PathLike[str] | None = None,
        ssl_keyfile_password: str | None = None,
        ssl_version: int = SSL_PROTOCOL_TLS_SERVER,
        ssl_cert_reqs: int = 0,
        ssl_ca_certs: str | os.PathLike[str] | None = None,
        ssl_ciphers: str = "TLSv1",
        ssl_handshake_timeout: float = 10.0,
        headers: list[tuple[str, str]] | list[str] | None = None,
        app_dir: str | None = ".",
        factory: bool = False,
        reset_contextvars: bool = False,
        h11_max_incomplete_event_size: int | None = None,
        threads: int = 1,
        loops: int = 1,
        gc_freeze: bool = True,
        limit_requests_per_connection: int | None = None,
        h2_max_concurrent_streams: int = 100,
        h2_initial_stream_window_size: int = 1024 * 1024,
        h2_initial_connection_window_size: int = 2 * 1024 * 1024,
        h2_max_frame_size: int = 16384,
        h2_max_header_list_size: int = 65536,
        h2_keep_alive_interval: float | None = None,
        h2_keep_alive_timeout: float = 20.0,
    ) -> None:
        self.app = app
        self.host = host
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"--port must be an integer between 0 and 65535, got {port!r}")
        self.port = port
        if uds is not None and fd is not None:
            raise ValueError("--uds and --fd cannot be used together")
        self.uds = str(uds) if uds is not None else None
        self.fd = _integer("--fd", fd, allow_none=True)
        if not isinstance(loop, str) or loop not in LOOP_CHOICES and ":" not in loop:
            raise ValueError(
                f"--loop must be one of {', '.join(LOOP_CHOICES)} or a loop factory as "
                f'"module:attribute", got {loop!r}'
            )
        self.loop = loop
        for package in ("uvloop", "zuvloop"):
            if loop == package and importlib.util.find_spec(package) is None:
                raise ValueError(f"--loop {package} needs the {package} package: pip install {package}")
        #: What makes the app loops; `load()` resolves it.
        self.loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None
        _choice("--http", http, HTTP_CHOICES)
        self.http = "h1" if http in UVICORN_HTTP1 else http
        if http2 and self.http == "h1":  # uvicorn's `--http zttp --http2`: both versions
            self.http = "auto"
        _choice("--ws", ws, WS_CHOICES)
        # uvicorn's WebSocket libraries all mean our native implementation; `none` turns it off.
        self.ws = "none" if ws == "none" else "auto"
        self.ws_max_size = _integer("--ws-max-size", ws_max_size, minimum=1)
        self.ws_max_queue = _integer("--ws-max-queue", ws_max_queue, minimum=1)
        self.ws_ping_interval = _number("--ws-ping-interval", ws_ping_interval, allow_none=True)
        self.ws_ping_timeout = _number("--ws-ping-timeout", ws_ping_timeout, allow_none=True)
        self.ws_per_message_deflate = bool(ws_per_message_deflate)
        self.lifespan = _choice("--lifespan", lifespan, LIFESPAN_MODES)
        self.interface = _choice("--interface", interface, INTERFACES)
        self.reload = bool(reload)
        self.reload_dirs = _strings(reload_dirs)
        self.reload_includes = _strings(reload_includes)
        self.reload_excludes = _strings(reload_excludes)
        self.reload_delay = _number("--reload-delay", reload_delay)
        for directory in self.reload_dirs:
            if not os.path.isdir(directory):
                raise ValueError(f"--reload-dir: {directory!r} is not a directory")
        if workers is None:
            workers = int(os.environ.get("WEB_CONCURRENCY", "1") or "1")
        self.workers = _integer("--workers", workers, minimum=1)
        self.limit_max_memory = _integer("--limit-max-memory", limit_max_memory, minimum=1, allow_none=True)
        if self.reload and self.workers > 1:
            logger.warning('"workers" flag is ignored when reloading is enabled.')
            self.workers = 1
        if (self.reload or self.workers > 1) and not isinstance(app, str):
            raise ValueError(
                "You must pass the application as an import string to enable 'reload' or 'workers'."
            )
        if self.reload and importlib.util.find_spec("watchfiles") is None:
            raise ValueError("--reload needs the watchfiles package: pip install watchfiles")
        if ssl_keyfile and not ssl_certfile:
            raise ValueError("--ssl-keyfile needs --ssl-certfile")
        if ssl_version not in SSL_VERSIONS:
            raise ValueError(
                f"--ssl-version {ssl_version} is not supported: TLS 1.2 and 1.3 only "
                "(17 or 2 for both, 5 for TLS 1.2 only)"
            )
        _choice("--ssl-cert-reqs", ssl_cert_reqs, SSL_CERT_REQS)
        self.ssl_keyfile_password = ssl_keyfile_password
        self.ssl_version = ssl_version
        self.ssl_cert_reqs = ssl_cert_reqs
        self.ssl_ca_certs = None if ssl_ca_certs is None else os.fspath(ssl_ca_certs)
        self.ssl_ciphers = ssl_ciphers
        self.ssl_handshake_timeout = _number("--ssl-handshake-timeout", ssl_handshake_timeout, minimum=0.1)
        self.tls: Any = None
        self.env_file = env_file
        self.log_config = log_config
        if isinstance(log_level, str):
            _choice("--log-level", log_level, tuple(LOG_LEVELS))
        self.log_level = log_level
        self.access_log = access_log
        self.use_colors = use_colors
        self.proxy_headers = proxy_headers
        self.server_header = server_header
        self.date_header = date_header
        self.forwarded_allow_ips = _forwarded_allow_ips(forwarded_allow_ips)
        if root_path and not root_path.startswith("/"):
            raise ValueError(f"--root-path must start with '/', got {root_path!r}")
        self.root_path = root_path.rstrip("/")
        self.limit_concurrency = _integer(
            "--limit-concurrency", limit_concurrency, minimum=1, allow_none=True
        )
        self.limit_max_requests = _integer(
            "--limit-max-requests", limit_max_requests, minimum=1, allow_none=True
        )
        self.limit_max_requests_jitter = _integer("--limit-max-requests-jitter", limit_max_requests_jitter)
        self.backlog = _integer("--backlog", backlog, minimum=1)
        self.timeout_keep_alive = _number("--timeout-keep-alive", timeout_keep_alive, minimum=1)
        self.timeout_graceful_shutdown = _number(
            "--timeout-graceful-shutdown", timeout_graceful_shutdown, allow_none=True
        )
        self.timeout_worker_healthcheck = _number("--timeout-worker-healthcheck", timeout_worker_healthcheck)
        self.ssl_keyfile = None if ssl_keyfile is None else os.fspath(ssl_keyfile)
        self.ssl_certfile = None if ssl_certfile is None else os.fspath(ssl_certfile)
        self.headers = [self._header(h) for h in (headers or [])]
        self.app_dir = app_dir
        self.factory = factory
        self.reset_contextvars = bool(reset_contextvars)
        self.h11_max_incomplete_event_size = _integer(
            "--h11-max-incomplete-event-size", h11_max_incomplete_event_size, minimum=8192, allow_none=True
        )
        self.threads = _integer("--threads", threads, minimum=1)
        self.loops = _integer("--loops", loops, minimum=1)
        self.gc_freeze = gc_freeze
        self.limit_requests_per_connection = _integer(
            "--limit-requests-per-connection", limit_requests_per_connection, minimum=1, allow_none=True
        )
        self.h2_max_concurrent_streams = _integer(
            "--h2-max-concurrent-streams", h2_max_concurrent_streams, minimum=1
        )
        self.h2_initial_stream_window_size = _integer(
            "--h2-initial-stream-window-size", h2_initial_stream_window_size, minimum=65535
        )
        self.h2_initial_connection_window_size = _integer(
            "--h2-initial-connection-window-size", h2_initial_connection_window_size, minimum=65535
        )
        self.h2_max_frame_size = _integer("--h2-max-frame-size", h2_max_frame_size, minimum=16384)
        self.h2_max_header_list_size = _integer(
            "--h2-max-header-list-size", h2_max_header_list_size, minimum=1024
        )
        self.h2_keep_alive_interval = _number(
            "--h2-keep-alive-interval", h2_keep_alive_interval, minimum=0.001, allow_none=True
        )
        self.h2_keep_alive_timeout = _number("--h2-keep-alive-timeout", h2_keep_alive_timeout, minimum=0.001)
        self.loaded_app: Any = None
        if self.env_file is not None:
            load_env_file(self.env_file)

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
    def is_ssl(self) -> bool:
        return bool(self.ssl_certfile)

    def load_tls(self) -> Any:
        """Read and check the certificate and key: one clear line and exit status 3 if they cannot be
        used, before anything binds. Returns the core's TlsConfig (None without TLS)."""
        if not self.is_ssl:
            return None
        from fasterapi import _fasterapi

        try:
            return _fasterapi.TlsConfig(
                self.ssl_certfile,
                keyfile=self.ssl_keyfile,
                password=self.ssl_keyfile_password,
                ca_certs=self.ssl_ca_certs,
                cert_reqs=self.ssl_cert_reqs,
                ciphers=self.ssl_ciphers,
                tls12_only=SSL_VERSIONS[self.ssl_version] == "tls12",
                http=self.http,
            )
        except ValueError as exc:
            logger.error("Cannot use the TLS configuration: %s", exc)
            sys.exit(EXIT_STARTUP_FAILURE)

    @property
    def effective_max_requests(self) -> int | None:
        """`--limit-max-requests` plus a random share of the jitter, so workers do not all recycle
        at once."""
        if self.limit_max_requests is None:
            return None
        return self.limit_max_requests + random.randint(0, self.limit_max_requests_jitter)

    def configure_logging(self) -> None:
        """Apply the log config (dict, JSON, YAML or ini; uvicorn logger names are adopted), then
        the log level and the access-log switch."""
        log_config = self.log_config
        if isinstance(log_config, dict):
            log_config = adopt_uvicorn_names(log_config)
            if self.use_colors in (True, False):
                for name in ("default", "access"):
                    log_config.get("formatters", {}).get(name, {})["use_colors"] = self.use_colors
            logging.config.dictConfig(log_config)
        elif isinstance(log_config, configparser.RawConfigParser):
            logging.config.fileConfig(log_config, disable_existing_loggers=False)
            adopt_uvicorn_names(None)
        elif log_config is not None:
            path = Path(log_config)
            if not path.is_file():
                raise ValueError(f"--log-config: no such file {str(path)!r}")
            if path.suffix == ".json":
                logging.config.dictConfig(adopt_uvicorn_names(json.loads(path.read_text())))
            elif path.suffix in (".yaml", ".yml"):
                try:
                    import yaml
                except ImportError:
                    raise ValueError("--log-config: YAML files need PyYAML: pip install pyyaml") from None
                logging.config.dictConfig(adopt_uvicorn_names(yaml.safe_load(path.read_text())))
            else:
                logging.config.fileConfig(path, disable_existing_loggers=False)
                adopt_uvicorn_names(None)
        if self.log_level is not None:
            level = LOG_LEVELS[self.log_level] if isinstance(self.log_level, str) else self.log_level
            for name in ("fasterapi", "fasterapi.error", "fasterapi.access"):
                logging.getLogger(name).setLevel(level)
        if not self.access_log:
            access = logging.getLogger("fasterapi.access")
            access.handlers = []
            access.propagate = False
        logger.log(TRACE_LOG_LEVEL, "Logging configured at level %s", self.log_level)

    @property
    def supervised(self) -> bool:
        """Run under a supervisor process (worker processes or reloading)."""
        return self.reload or self.workers > 1

    def load(self) -> None:
        """Check TLS files, import the app (exit status 3 with one clear line on either failure) and
        adapt ASGI 2."""
        self.tls = self.load_tls()
        if self.app_dir is not None:
            sys.path.insert(0, os.path.abspath(self.app_dir))
        try:
            self.loop_factory = loop_factory(self.loop)
        except ImportFromStringError as exc:
            logger.error("Error loading custom loop setup function. %s", exc)
            sys.exit(EXIT_STARTUP_FAILURE)
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

    @property
    def loaded(self) -> bool:
        return self.loaded_app is not None


def _looks_like_asgi3(app: Any) -> bool:
    """uvicorn's rule: a class is ASGI 3 if its instances are awaitable; a function if it is a
    coroutine function; any other callable if its `__call__` is a coroutine function."""
    if inspect.isclass(app):
        return hasattr(app, "__await__")
    if inspect.isfunction(app):
        return asyncio.iscoroutinefunction(app)
    return asyncio.iscoroutinefunction(app.__call__)
