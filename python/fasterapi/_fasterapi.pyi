"""Type stub for the compiled core (`src/`)."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

class ClientDisconnected(OSError):
    """Raised by `send` when the client has gone away."""

class HttpCycle:
    """The `receive`/`send` pair of one HTTP request (created by the core)."""

    def receive(self) -> Awaitable[dict[str, Any]]: ...
    def send(self, message: dict[str, Any]) -> Awaitable[None]: ...
    def app_returned(self) -> str | None: ...
    def app_failed(self) -> None: ...
    @property
    def response_started(self) -> bool: ...

class AppLoop:
    """One app event loop as the core sees it."""

    def fileno(self) -> int: ...
    def drain(self) -> None: ...
    def flush(self) -> None: ...
    def cancel_all(self) -> int: ...
    def __len__(self) -> int: ...

class TlsConfig:
    """Checked `--ssl-*` options; raises ValueError naming the option and file."""

    def __init__(
        self,
        certfile: str,
        *,
        keyfile: str | None = None,
        password: str | None = None,
        ca_certs: str | None = None,
        cert_reqs: int = 0,
        ciphers: str = "TLSv1",
        tls12_only: bool = False,
        http: str = "auto",
    ) -> None: ...

class Server:
    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 8000,
        uds: str | None = None,
        fd: int | None = None,
        backlog: int = 2048,
        http: str = "auto",
        root_path: str = "",
        proxy_headers: bool = True,
        forwarded_allow_ips: str = "127.0.0.1",
        limit_concurrency: int | None = None,
        limit_max_requests: int | None = None,
        server_header: bool = True,
        date_header: bool = True,
        headers: list[tuple[str, str]] = ...,
        timeout_keep_alive: float = 5.0,
        timeout_graceful_shutdown: float | None = None,
        threads: int = 1,
        max_head_size: int = 65536,
        tls: TlsConfig | None = None,
        tls_handshake_timeout: float = 10.0,
        limit_requests_per_connection: int | None = None,
        h2_max_concurrent_streams: int = 100,
        h2_initial_stream_window_size: int = 1048576,
        h2_initial_connection_window_size: int = 2097152,
        h2_max_frame_size: int = 16384,
        h2_max_header_list_size: int = 65536,
        h2_keep_alive_interval: float | None = None,
        h2_keep_alive_timeout: float = 20.0,
    ) -> None: ...
    def add_loop(
        self,
        event_loop: asyncio.AbstractEventLoop,
        app: Any,
        dispatch: Callable[[Any, dict[str, Any], HttpCycle], Coroutine[Any, Any, None]],
        start_task: Callable[..., Any],
        task_options: dict[str, Any] | None = None,
        number_tasks: bool = False,
        task_context: Callable[[], contextvars.Context] | None = None,
        state: dict[str, Any] | None = None,
        access_log: Callable[..., None] | None = None,
        access_stream: Any = None,
    ) -> AppLoop: ...
    def serve(self, on_event: Callable[[str, Any], None]) -> None: ...
    def shutdown(self) -> None: ...
