"""`Server`: runs a Config'd app — the app event loop, lifespan, the Rust core, graceful shutdown.

The Rust core (`_fasterapi.Server`) owns sockets and HTTP; this module owns the Python event loop,
the lifespan protocol and the lifecycle log lines. `run()` starts its own loop on a thread (uvloop
when available); `await serve()` uses the caller's running loop, as uvicorn's does.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, NamedTuple

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
#: Seconds the tasks an app leaves running at exit get to end once cancelled (`asyncio.run` waits
#: for ever); within `LoopThread.stop`'s wait for the loop thread.
CANCELLED_TASKS_GRACE = 5.0


class TaskStart(NamedTuple):
    """How each request's task starts: `factory(coro, **options)`, named `Task-<n>` by the server
    when `numbered`, in the context `context()` makes when given."""

    factory: Callable[..., Any]
    options: dict[str, Any] | None
    numbered: bool
    context: Callable[[], contextvars.Context] | None


def task_start(loop: asyncio.AbstractEventLoop, reset_contextvars: bool = False) -> TaskStart:
    """How each request's task starts. An app that installed a task factory (in its lifespan
    startup, say) gets it, as with `loop.create_task`. Otherwise the Task is made directly:
    eagerly where Python supports it (3.12+), so a request whose app never waits completes
    inside the drain that received it; on 3.11 without the event loop's `create_task` wrapper,
    and with a name the server makes (3.11's Task formats its `Task-<n>` with a printf-style call
    that costs more than the rest of its setup; 3.12 formats it only when asked).
    `reset_contextvars` (uvicorn's `--reset-contextvars`) runs each in a new, empty context
    instead of a copy of the loop's."""
    context = contextvars.Context if reset_contextvars else None
    if loop.get_task_factory() is not None:
        return TaskStart(loop.create_task, None, False, context)
    if sys.version_info >= (3, 12):
        return TaskStart(asyncio.Task, {"loop": loop, "eager_start": True}, False, context)
    return TaskStart(asyncio.Task, {"loop": loop}, True, context)


def serve_config(config: Config) -> int:
    """Serve `config` in this process, or under a supervisor for --workers N / --reload."""
    if config.supervised:
        from fasterapi.supervisor import Supervisor

        return Supervisor(config).run()
    return Server(config).run()


def freeze_startup_heap() -> None:
    """Collect what startup left as garbage, then freeze the rest: the objects alive now live as long
    as the process, and the collector's full collections stop walking them.

    A request that awaits (a database, a sleep) keeps its objects alive past the youngest
    generation, so under concurrency the collector promotes them and runs full collections, each
    walking the whole heap: with FastAPI's ~50k objects, 18% of the loop's time at 512 connections,
    in pauses of about 45 ms each. Frozen objects are still freed by reference counting; only cycles
    among them would outlive their use, and there is one such heap per process, not per request.
    """
    gc.collect()
    gc.freeze()
    logger.debug("Froze %d objects alive after startup out of garbage collection", gc.get_freeze_count())


def _cancel_remaining_tasks(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel the tasks still running on `loop` once the server is done with it (the app's
    background tasks: its requests have ended by then) and run the loop until they have ended, so
    their cleanup runs; report any that fail on the way out, as `asyncio.run` does. Unlike
    `asyncio.run`, give up on tasks that ignore their cancellation after `CANCELLED_TASKS_GRACE`."""
    tasks = [task for task in asyncio.all_tasks(loop) if not task.done()]
    if not tasks:
        return
    for task in tasks:
        task.cancel()
    ended, stuck = loop.run_until_complete(asyncio.wait(tasks, timeout=CANCELLED_TASKS_GRACE))
    if stuck:
        logger.warning(
            "%d background task(s) still running %g s after shutdown cancelled them; exiting without "
            "them: %s",
            len(stuck),
            CANCELLED_TASKS_GRACE,
            ", ".join(sorted(task.get_name() for task in stuck)),
        )
    for task in ended:
        if not task.cancelled() and (error := task.exception()) is not None:
            loop.call_exception_handler(
                {"message": "unhandled exception during shutdown", "exception": error, "task": task}
            )


class LoopThread:
    """An event loop running on its own thread until `stop()`, inside one root task; then ended as
    `asyncio.run` ends its loop (tasks left cancelled, async generators closed, executor shut down).

    The root task is what `asyncio.run` would give the loop: anyio (FastAPI's `def` endpoints and
    dependencies, Starlette's `FileResponse`) looks for it with `run_until_complete`'s callback
    and ties its worker threads' lives to it. On a bare `run_forever` it found none and tied each
    new thread to the request's own task instead, ending it with the request.
    """

    def __init__(self, new_loop: Callable[[], asyncio.AbstractEventLoop], index: int) -> None:
        self.loop = new_loop()
        if not isinstance(self.loop, asyncio.AbstractEventLoop):
            raise TypeError(f"the loop factory returned {self.loop!r}, not an event loop")
        self._stopped = self.loop.create_future()
        self._thread = threading.Thread(target=self._run, name=f"fasterapi-loop-{index}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        loop = self.loop
        loop.run_until_complete(self._until_stopped())
        # What `asyncio.run` does once its coroutine returns, so what uvicorn's apps get at exit.
        _cancel_remaining_tasks(loop)
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())

    async def _until_stopped(self) -> None:
        await self._stopped

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self._stopped.set_result, None)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self.loop.close()


class AppLoopSlot:
    """One app event loop of this process: its own lifespan (so loop-bound resources such as
    connection pools made at startup stay on the loop that uses them) and its link to the core."""

    def __init__(self, config: Config, loop: asyncio.AbstractEventLoop) -> None:
        self.config = config
        self.loop = loop
        self.lifespan: Lifespan | None = None
        self.app_loop: Any = None

    def run(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Future[Any]:
        """Run `coro` on this slot's loop; awaitable from any other running loop."""
        return asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    async def start(self, core: Any, access_log: Any, access_stream: Any) -> bool:
        """Run lifespan startup and attach to the core; False if startup failed."""
        config = self.config
        self.lifespan = Lifespan(config.loaded_app, config.lifespan)
        if not await self.lifespan.startup():
            return False
        self.app_loop = core.add_loop(
            self.loop,
            config.loaded_app,
            run_http,
            *task_start(self.loop, config.reset_contextvars),
            state=self.lifespan.state,
            access_log=access_log,
            access_stream=access_stream,
        )
        self.loop.add_reader(self.app_loop.fileno(), self.app_loop.drain)
        return True

    def running(self) -> int:
        return 0 if self.app_loop is None else len(self.app_loop)

    async def finish(self, wait: bool) -> None:
        """Detach from the core, let (or, if not `wait`, make) the remaining requests end, and
        run lifespan shutdown."""
        if self.app_loop is not None:
            self.loop.remove_reader(self.app_loop.fileno())
            if wait and len(self.app_loop):
                await _wait_for_tasks(self.app_loop, self.config.timeout_graceful_shutdown)
            self.app_loop.cancel_all()
        if self.lifespan is not None:
            await self.lifespan.shutdown()


class Server:
    """Serve `config`'s app until SIGINT/SIGTERM, `--limit-max-requests` or `shutdown()`."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.should_exit = False
        self._core: Any = None
        self._timed_out = False
        #: Called (from the core's thread) once the server listens; the supervisor's workers use it.
        self.on_ready: Callable[[], None] | None = None
        #: Called with the app event loops once they exist; workers answer health checks through them.
        self.on_loops: Callable[[list[asyncio.AbstractEventLoop]], None] | None = None
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
        threads = self._loop_threads(range(1))
        if threads is None:
            return EXIT_STARTUP_FAILED
        main = threads[0]
        with CapturedSignals(self.shutdown):
            try:
                return asyncio.run_coroutine_threadsafe(self.serve(), main.loop).result()
            finally:
                main.stop()

    def _loop_threads(self, indexes: range) -> list[LoopThread] | None:
        """New app loops on threads of their own, made by `--loop`'s factory; None, the error
        logged, if it fails."""
        factory = self.config.loop_factory
        assert factory is not None, "Config.load() resolves --loop"
        threads: list[LoopThread] = []
        try:
            for index in indexes:
                threads.append(LoopThread(factory, index))
        except Exception:  # noqa: BLE001 - a custom factory's own failure
            logger.exception("Error creating an event loop (--loop %s):", self.config.loop)
            for thread in threads:
                thread.stop()
            return None
        return threads

    async def serve(self) -> int:
        """Serve on the running event loop (plus `--loops - 1` loops of its own); returns the exit
        status."""
        config = self.config
        if not config.loaded:
            config.configure_logging()
            config.load()
        pid = os.getpid()
        logger.info("Started server process [%d]", pid)
        extra = self._loop_threads(range(1, config.loops))
        if extra is None:
            return EXIT_STARTUP_FAILED
        slots = [AppLoopSlot(config, asyncio.get_running_loop())]
        slots += [AppLoopSlot(config, thread.loop) for thread in extra]
        if self.on_loops is not None:
            self.on_loops([slot.loop for slot in slots])
        with CapturedSignals(self.shutdown):  # only where this loop is the main thread's
            try:
                return await self._serve_slots(slots)
            finally:
                for thread in extra:
                    thread.stop()
                logger.info("Finished server process [%d]", pid)

    async def _serve_slots(self, slots: list[AppLoopSlot]) -> int:
        config = self.config
        core = self._make_core()
        access = logging.getLogger("fasterapi.access")
        access_log = access_stream = None
        if config.access_log and access.isEnabledFor(logging.INFO):
            access_stream = access_log_stream(access)
            access_log = None if access_stream is not None else access.info
        started = []
        for slot in slots:  # one after the other, so startup logs and failures read clearly
            ok = await slot.run(slot.start(core, access_log, access_stream))
            started.append(slot)
            if not ok:
                await asyncio.gather(*(s.run(s.finish(wait=False)) for s in started[:-1]))
                return EXIT_STARTUP_FAILED
        if config.gc_freeze:
            freeze_startup_heap()
        status = await self._serve_http(core, slots)
        await asyncio.gather(*(slot.run(slot.finish(wait=not self._timed_out)) for slot in slots))
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
            tls=config.tls,
            tls_handshake_timeout=config.ssl_handshake_timeout,
            limit_requests_per_connection=config.limit_requests_per_connection,
            h2_max_concurrent_streams=config.h2_max_concurrent_streams,
            h2_initial_stream_window_size=config.h2_initial_stream_window_size,
            h2_initial_connection_window_size=config.h2_initial_connection_window_size,
            h2_max_frame_size=config.h2_max_frame_size,
            h2_max_header_list_size=config.h2_max_header_list_size,
            h2_keep_alive_interval=config.h2_keep_alive_interval,
            h2_keep_alive_timeout=config.h2_keep_alive_timeout,
            ws=config.ws != "none",
            ws_max_size=config.ws_max_size,
            ws_max_queue=config.ws_max_queue,
            ws_ping_interval=config.ws_ping_interval,
            ws_ping_timeout=config.ws_ping_timeout,
            ws_per_message_deflate=config.ws_per_message_deflate,
        )

    async def _serve_http(self, core: Any, slots: list[AppLoopSlot]) -> int:
        """Run the core on an executor thread until it has shut down and drained."""
        loop = asyncio.get_running_loop()
        self._core = core
        if self.should_exit:
            core.shutdown()
        limit = self.config.limit_max_requests

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
            elif name == "certificates_reloaded":
                if value is None:
                    logger.info("Received SIGHUP: TLS certificate and key reloaded.")
                else:
                    logger.error("Received SIGHUP: kept the old TLS certificate: %s", value)
            elif name == "graceful_timeout":
                self._timed_out = True
                running = sum(slot.running() for slot in slots)
                logger.error("Cancel %d running task(s), timeout graceful shutdown exceeded", running)

        try:
            await loop.run_in_executor(None, core.serve, on_event)
        except OSError as exc:
            logger.error("%s", exc.strerror or exc)
            return EXIT_ERROR
        finally:
            self._core = None
            if not self._timed_out and any(slot.running() for slot in slots):
                logger.info("Waiting for background tasks to complete. (CTRL+C to force quit)")
        return EXIT_OK


async def _wait_for_tasks(app_loop: Any, timeout: float | None) -> None:
    """Let requests still running after their connections closed finish, up to `timeout`."""
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    while len(app_loop) and (deadline is None or loop.time() < deadline):
        await asyncio.sleep(0.02)


class CapturedSignals:
    """While serving, Python's SIGINT and SIGTERM handlers note the signal and call `stop`: that
    stops a server still starting up (once it serves, the Rust core catches both itself, chaining
    to Python's handler, and shuts down gracefully), and no KeyboardInterrupt surfaces. On the way
    out the previous handlers are put back and, as uvicorn does, each signal that arrived is raised
    again (the last first) if the previous handler is one of the app's own, installed at import,
    say, so that it still runs once the server has finished. Python's defaults are not raised
    again: the exit status stays 0. Does nothing off the main thread."""

    HANDLED = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, stop: Callable[[], None]) -> None:
        self.stop = stop
        self.previous: dict[int, Any] = {}
        self.captured: list[int] = []

    def __enter__(self) -> CapturedSignals:
        if threading.current_thread() is threading.main_thread():
            self.previous = {sig: signal.signal(sig, self._note) for sig in self.HANDLED}
        return self

    def _note(self, sig: int, frame: object) -> None:
        if sig not in self.captured:
            self.captured.append(sig)
        self.stop()

    def __exit__(self, *exc_info: object) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        for sig in reversed(self.captured):
            handler = self.previous[sig]
            if callable(handler) and handler is not signal.default_int_handler:
                signal.raise_signal(sig)
