"""`Server`: runs a Config'd app — app loop thread, lifespan, the Rust core, graceful shutdown.

The Rust core (`_fasterapi.Server`) owns sockets and HTTP; this module owns the Python event
loop thread, the lifespan protocol and the lifecycle log lines.
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

if TYPE_CHECKING:
    from fasterapi.config import Config

logger = logging.getLogger("fasterapi.error")

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_STARTUP_FAILED = 3


class AppLoopThread:
    """An asyncio (or uvloop) event loop running for ever on its own thread."""

    def __init__(self, index: int, use_uvloop: bool) -> None:
        if use_uvloop:
            import uvloop

            self.loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
        else:
            self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=f"fasterapi-loop-{index}", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def start(self) -> None:
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Run `coro` on the loop and wait for its result from this (another) thread."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Call `fn(*args)` on the loop thread and wait for its result."""

        async def call() -> Any:
            return fn(*args)

        return self.run(call())

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        if not self.loop.is_running():
            self.loop.close()


def task_starter(loop: asyncio.AbstractEventLoop) -> Callable[[Coroutine[Any, Any, Any]], Any]:
    """Start tasks eagerly where Python supports it (3.12+): a request whose app never waits
    completes inside the drain that received it, without a trip through the ready queue."""
    if sys.version_info >= (3, 12):
        return functools.partial(asyncio.Task, loop=loop, eager_start=True)
    return loop.create_task


class Server:
    """Serve `config`'s app until SIGINT/SIGTERM or `shutdown()`; `run()` returns the exit status."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._core: Any = None
        self._should_exit = threading.Event()
        self._timed_out = False

    def shutdown(self) -> None:
        """Ask a running server to stop gracefully (thread-safe)."""
        self._should_exit.set()
        if self._core is not None:
            self._core.shutdown()

    def run(self) -> int:
        config = self.config
        config.configure_logging()
        pid = os.getpid()
        logger.info("Started server process [%d]", pid)
        config.load()
        app = config.loaded_app

        app_loop_thread = AppLoopThread(0, config.use_uvloop)
        app_loop_thread.start()
        try:
            lifespan = app_loop_thread.call(Lifespan, app, config.lifespan)
            if not app_loop_thread.run(lifespan.startup()):
                return EXIT_STARTUP_FAILED
            status = self._serve(app, app_loop_thread, lifespan)
            app_loop_thread.run(lifespan.shutdown())
            return status
        finally:
            app_loop_thread.stop()
            logger.info("Finished server process [%d]", pid)

    def _serve(self, app: Any, thread: AppLoopThread, lifespan: Lifespan) -> int:
        config = self.config
        core = _fasterapi.Server(
            host=config.host,
            port=config.port,
            root_path=config.root_path,
            server_header=config.server_header,
            date_header=config.date_header,
            headers=[(str(k), str(v)) for k, v in config.headers],
            timeout_keep_alive=float(config.timeout_keep_alive),
            timeout_graceful_shutdown=(
                None if config.timeout_graceful_shutdown is None else float(config.timeout_graceful_shutdown)
            ),
        )
        access = logging.getLogger("fasterapi.access")
        access_log = access.info if config.access_log and access.isEnabledFor(logging.INFO) else None
        loop = thread.loop
        app_loop = core.add_loop(
            loop,
            app,
            run_http,
            task_starter(loop),
            state=lifespan.state,
            access_log=access_log,
        )
        thread.call(loop.add_reader, app_loop.fileno(), app_loop.drain)
        self._core = core
        if self._should_exit.is_set():
            return EXIT_OK

        def on_event(name: str, value: Any) -> None:
            if name == "ready":
                for host, port in value:
                    shown = f"[{host}]" if ":" in host else host
                    logger.info("fasterapi running on http://%s:%d (Press CTRL+C to quit)", shown, port)
            elif name == "shutdown":
                logger.info("Shutting down")
            elif name == "graceful_timeout":
                self._timed_out = True
                logger.error("Cancel %d running task(s), timeout graceful shutdown exceeded", len(app_loop))

        previous = _quiet_python_signal_handlers()
        try:
            core.serve(on_event)
        except OSError as exc:
            logger.error("%s", exc.strerror or exc)
            return EXIT_ERROR
        finally:
            _restore_signal_handlers(previous)
            self._core = None
            thread.call(loop.remove_reader, app_loop.fileno())
            if len(app_loop) and not self._timed_out:
                logger.info("Waiting for background tasks to complete. (CTRL+C to force quit)")
                thread.run(_wait_for_tasks(app_loop, config.timeout_graceful_shutdown))
            thread.call(app_loop.cancel_all)
        return EXIT_OK


async def _wait_for_tasks(app_loop: Any, timeout: float | None) -> None:
    """Let requests still running after their connections closed finish, up to `timeout`."""
    deadline = None if timeout is None else asyncio.get_running_loop().time() + timeout
    while len(app_loop) and (deadline is None or asyncio.get_running_loop().time() < deadline):
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
