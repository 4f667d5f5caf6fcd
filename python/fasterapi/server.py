"""`Server`: runs a Config'd app — the app event loop, lifespan, the Rust core, graceful shutdown.

The Rust core (`_fasterapi.Server`) owns sockets and HTTP; this module owns the Python event loop,
the lifespan protocol and the lifecycle log lines. `run()` starts its own loop on a thread (uvloop
when available); `await serve()` uses the caller's running loop, as uvicorn's does.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from fasterapi import _fasterapi
from fasterapi.dispatch import run_http
from fasterapi.lifespan import Lifespan
from fasterapi.logging import access_log_stream

if TYPE_CHECKING:
    from fasterapi.config import Config

logger = logging.getLogger("fasterapi.error")

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_STARTUP_FAILED = 3


def new_event_loop(use_uvloop: bool) -> asyncio.AbstractEventLoop:
    if use_uvloop:
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def task_starter(loop: asyncio.AbstractEventLoop) -> Callable[[Coroutine[Any, Any, Any]], Any]:
    """Start tasks eagerly where Python supports it (3.12+): a request whose app never waits
    completes inside the drain that received it, without a trip through the ready queue."""
    if sys.version_info >= (3, 12):
        return functools.partial(asyncio.Task, loop=loop, eager_start=True)
    return loop.create_task


def serve_config(config: Config) -> int:
    """Serve `config` in this process, or under a supervisor for --workers N / --reload."""
    if config.supervised:
        from fasterapi.supervisor import Supervisor

        return Supervisor(config).run()
    return Server(config).run()


class Server:
    """Serve `config`'s app until SIGINT/SIGTERM, `--limit-max-requests` or `shutdown()`."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.should_exit = False
        self._core: Any = None
        self._timed_out = False
        #: Called (from the core's thread) once the server listens; the supervisor's workers use it.
        self.on_ready: Callable[[], None] | None = None
        #: Called with the app event loop once it exists; workers answer health checks through it.
        self.on_loop: Callable[[asyncio.AbstractEventLoop], None] | None = None
        #: Log the "running on" line (a supervisor logs it once for all its workers instead).
        self.announce = True

    def shutdown(self) -> None:
        """Ask a running server to stop gracefully (thread-safe)."""
        self.should_exit = True
        if self._core is not None:
            self._core.shutdown()

    def run(self) -> int:
        """Serve on a new event loop thread; returns the process exit status (0, 1 or 3)."""
        self.config.configure_logging()
        if not self.config.loaded:
            self.config.load()  # may exit with status 3, before any thread exists
        loop = new_event_loop(self.config.use_uvloop)
        thread = threading.Thread(target=loop.run_forever, name="fasterapi-loop-0", daemon=True)
        thread.start()
        if self.on_loop is not None:
            self.on_loop(loop)
        previous = _quiet_python_signal_handlers()
        try:
            return asyncio.run_coroutine_threadsafe(self.serve(), loop).result()
        finally:
            _restore_signal_handlers(previous)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            if not thread.is_alive():
                loop.close()

    async def serve(self) -> int:
        """Serve on the running event loop; returns the exit status."""
        config = self.config
        if not config.loaded:
            config.configure_logging()
            config.load()
        pid = os.getpid()
        logger.info("Started server process [%d]", pid)
        lifespan = Lifespan(config.loaded_app, config.lifespan)
        if not await lifespan.startup():
            return EXIT_STARTUP_FAILED
        status = await self._serve_http(lifespan)
        await lifespan.shutdown()
        logger.info("Finished server process [%d]", pid)
        return status

    def _make_core(self) -> Any:
        config = self.config
        return _fasterapi.Server(
            host=config.host,
            port=config.port,
            uds=config.uds,
            fd=config.fd,
            backlog=config.backlog,
            http=config.http,
            root_path=config.root_path,
            proxy_headers=config.proxy_headers,
            forwarded_allow_ips=config.forwarded_allow_ips,
            limit_concurrency=config.limit_concurrency,
            limit_max_requests=config.effective_max_requests,
            server_header=config.server_header,
            date_header=config.date_header,
            headers=config.headers,
            timeout_keep_alive=float(config.timeout_keep_alive),
            timeout_graceful_shutdown=(
                None if config.timeout_graceful_shutdown is None else float(config.timeout_graceful_shutdown)
            ),
            threads=config.threads,
            max_head_size=config.h11_max_incomplete_event_size or 65536,
        )

    async def _serve_http(self, lifespan: Lifespan) -> int:
        config = self.config
        loop = asyncio.get_running_loop()
        core = self._make_core()
        access = logging.getLogger("fasterapi.access")
        access_log = access_stream = None
        if config.access_log and access.isEnabledFor(logging.INFO):
            access_stream = access_log_stream(access)
            access_log = None if access_stream is not None else access.info
        app_loop = core.add_loop(
            loop,
            config.loaded_app,
            run_http,
            task_starter(loop),
            state=lifespan.state,
            access_log=access_log,
            access_stream=access_stream,
        )
        loop.add_reader(app_loop.fileno(), app_loop.drain)
        self._core = core
        if self.should_exit:
            core.shutdown()
        limit = config.limit_max_requests

        def on_event(name: str, value: Any) -> None:
            if name == "ready":
                for address in value if self.announce else ():
                    logger.info("fasterapi running on %s (Press CTRL+C to quit)", address)
                if self.on_ready is not None:
                    self.on_ready()
            elif name == "shutdown":
                if value == "request_limit":
                    logger.warning("Maximum request limit of %d exceeded. Terminating process.", limit)
                logger.info("Shutting down")
            elif name == "graceful_timeout":
                self._timed_out = True
                logger.error("Cancel %d running task(s), timeout graceful shutdown exceeded", len(app_loop))

        previous = _quiet_python_signal_handlers()
        try:
            await loop.run_in_executor(None, core.serve, on_event)
        except OSError as exc:
            logger.error("%s", exc.strerror or exc)
            return EXIT_ERROR
        finally:
            _restore_signal_handlers(previous)
            self._core = None
            loop.remove_reader(app_loop.fileno())
            if len(app_loop) and not self._timed_out:
                logger.info("Waiting for background tasks to complete. (CTRL+C to force quit)")
                await _wait_for_tasks(app_loop, config.timeout_graceful_shutdown)
            app_loop.cancel_all()
        return EXIT_OK


async def _wait_for_tasks(app_loop: Any, timeout: float | None) -> None:
    """Let requests still running after their connections closed finish, up to `timeout`."""
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    while len(app_loop) and (deadline is None or loop.time() < deadline):
        await asyncio.sleep(0.02)


def _quiet_python_signal_handlers() -> dict[int, Any]:
    """The Rust core handles SIGINT/SIGTERM and chains to the previous handlers; make Python's
    no-ops so no KeyboardInterrupt surfaces after a graceful shutdown."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, lambda *_: None)
    return previous


def _restore_signal_handlers(previous: dict[int, Any]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)
