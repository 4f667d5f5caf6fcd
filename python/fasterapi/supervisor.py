"""The supervisor for `--workers N` and `--reload`: binds the listening sockets once (see
`listeners`), runs worker processes on them, and keeps them healthy.

- a worker that dies is respawned; one that stops answering health checks is killed and
  respawned; workers dying right after start again and again (a crash loop) stop the server;
- a worker that exits with status 3 at startup (import or lifespan failure) stops everything with 3;
- SIGHUP restarts the workers one at a time, each replacement ready before the old one stops;
- SIGTTIN / SIGTTOU add / remove a worker;
- SIGINT / SIGTERM stop all workers gracefully within --timeout-graceful-shutdown;
- --limit-max-requests workers exit by themselves and are replaced; --limit-max-memory replaces a
  worker whose resident memory grows past the limit;
- with --reload (one worker), a relevant file change restarts the worker; a worker that fails to
  start after an edit leaves the supervisor waiting for the next change.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING

from fasterapi.listeners import Listeners
from fasterapi.reload import ChangeWatcher
from fasterapi.worker import PING, PONG, READY, run_worker

if TYPE_CHECKING:
    from fasterapi.config import Config

logger = logging.getLogger("fasterapi.error")
spawn = multiprocessing.get_context("spawn")

EXIT_STARTUP_FAILED = 3
#: This many workers in a row dying before they are ready is a crash loop: the server stops.
CRASH_LOOP_DEATHS = 5


def describe(sock: socket.socket, tls: bool) -> str:
    address = sock.getsockname()
    if isinstance(address, str):
        return f"unix socket {address}"
    host, port = address[0], address[1]
    scheme = "https" if tls else "http"
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


@dataclass
class Worker:
    """One worker process and the supervisor's view of it."""

    process: BaseProcess
    channel: Connection
    sock: socket.socket
    started: float = field(default_factory=time.monotonic)
    ready: bool = False
    next_ping: float = 0.0
    ping_sent: float | None = None
    retiring: bool = False

    @property
    def pid(self) -> int:
        return self.process.pid or 0


class Supervisor:
    """Run `config.workers` workers on one shared socket until told to stop."""

    def __init__(self, config: Config, make_target: Callable[..., None] = run_worker) -> None:
        self.config = config
        self.target = make_target
        self.watcher: ChangeWatcher | None = None
        self.workers: list[Worker] = []
        self.wanted = config.workers
        self.listeners: Listeners | None = None
        self.stopping = False
        self.exit_status = 0
        self.early_deaths = 0
        self.pending_signals: list[int] = []

    # ---- lifecycle -------------------------------------------------------------------------

    def run(self) -> int:
        self.config.configure_logging()
        logger.info("Started parent process [%d]", os.getpid())
        self.config.load_tls()  # exits with status 3 on a bad certificate or key, before binding
        try:
            self.listeners = Listeners(self.config)
        except OSError as exc:
            logger.error("%s", exc.strerror or exc)
            return 1
        address = describe(self.listeners.primary, self.config.is_ssl)
        logger.info("fasterapi running on %s (Press CTRL+C to quit)", address)
        handled = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU)
        previous = {sig: signal.signal(sig, self._on_signal) for sig in handled}
        if self.config.reload:
            config = self.config
            self.watcher = ChangeWatcher(
                config.reload_dirs, config.reload_includes, config.reload_excludes, config.reload_delay
            )
        try:
            for _ in range(self.wanted):
                self.spawn()
            while not self.stopping:
                self.step()
            self.stop_all()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.listeners.close()
            if self.watcher is not None:
                self.watcher.close()
            if self.config.uds and os.path.exists(self.config.uds):
                os.remove(self.config.uds)
        logger.info("Stopping parent process [%d]", os.getpid())
        return self.exit_status

    def _on_signal(self, sig: int, frame: object) -> None:
        self.pending_signals.append(sig)

    def spawn(self, sock: socket.socket | None = None) -> Worker:
        """Start a worker on `sock` (a replacement keeps its predecessor's), or on a free socket."""
        assert self.listeners is not None
        if sock is None:
            sock = self.listeners.take([w.sock for w in self.workers if not w.retiring])
        parent, child = spawn.Pipe()
        process = spawn.Process(target=self.target, args=(self.config, sock, child), name="fasterapi-worker")
        process.start()
        child.close()
        worker = Worker(process, parent, sock)
        self.workers.append(worker)
        return worker

    # ---- one round of supervision ------------------------------------------------------------

    def step(self, timeout: float = 0.25) -> None:
        """Wait for a worker event or a signal, then act on everything that happened."""
        waitables: list = [w.channel for w in self.workers] + [w.process.sentinel for w in self.workers]
        if self.watcher is not None:
            waitables.append(self.watcher)
        try:
            wait(waitables, timeout=timeout)
        except InterruptedError:
            pass
        while self.pending_signals:
            self.handle_signal(self.pending_signals.pop(0))
        if self.watcher is not None:
            changes = self.watcher.take()
            if changes:
                self.reload(changes)
        for worker in list(self.workers):
            self.read_messages(worker)
            if not worker.process.is_alive():
                self.reap(worker)
        self.check_health()
        self.check_memory()

    def read_messages(self, worker: Worker) -> None:
        try:
            while worker.channel.poll():
                message = worker.channel.recv()
                if message == READY:
                    worker.ready = True
                    worker.next_ping = time.monotonic() + self.config.timeout_worker_healthcheck
                    self.early_deaths = 0
                elif message == PONG:
                    worker.ping_sent = None
                    worker.next_ping = time.monotonic() + self.config.timeout_worker_healthcheck
        except (EOFError, OSError):
            pass

    def reap(self, worker: Worker) -> None:
        worker.process.join()
        self.workers.remove(worker)
        worker.channel.close()
        code = worker.process.exitcode
        if worker.retiring and self.listeners is not None:
            self.listeners.prune([w.sock for w in self.workers], keep=self.wanted)
        if self.stopping or worker.retiring:
            return
        if self.watcher is not None:
            logger.error(
                "Worker [%d] exited (status %s); waiting for a file change to reload.", worker.pid, code
            )
            return
        if code == EXIT_STARTUP_FAILED and not worker.ready:
            logger.error("Worker [%d] failed to start (exit status 3); stopping.", worker.pid)
            self.exit_status = EXIT_STARTUP_FAILED
            self.stopping = True
            return
        if code == 0:
            logger.info("Worker [%d] exited; starting a replacement.", worker.pid)
        else:
            logger.warning("Worker [%d] died (exit status %s); starting a replacement.", worker.pid, code)
        if not worker.ready:
            self.early_deaths += 1
            if self.early_deaths >= CRASH_LOOP_DEATHS:
                logger.error(
                    "Workers keep dying right after they start (%d in a row); stopping.", self.early_deaths
                )
                self.exit_status = 1
                self.stopping = True
                return
        if len(self.workers) < self.wanted:
            self.spawn(worker.sock)

    def check_health(self) -> None:
        interval = self.config.timeout_worker_healthcheck
        if not interval:
            return
        now = time.monotonic()
        for worker in self.workers:
            if not worker.ready or worker.retiring:
                continue
            if worker.ping_sent is None:
                if now >= worker.next_ping:
                    try:
                        worker.channel.send(PING)
                        worker.ping_sent = now
                    except OSError:
                        pass
            elif now - worker.ping_sent > interval:
                logger.error(
                    "Worker [%d] did not answer a health check in %gs; killing it.", worker.pid, interval
                )
                worker.process.kill()

    def check_memory(self) -> None:
        limit = self.config.limit_max_memory
        if not limit:
            return
        for worker in list(self.workers):
            if worker.ready and not worker.retiring and rss_mib(worker.pid) > limit:
                logger.warning("Worker [%d] uses more than %d MiB; replacing it.", worker.pid, limit)
                self.replace(worker)

    # ---- signals ------------------------------------------------------------------------------

    def handle_signal(self, sig: int) -> None:
        if sig in (signal.SIGINT, signal.SIGTERM):
            logger.info("Received %s, stopping workers", signal.Signals(sig).name)
            self.stopping = True
        elif sig == signal.SIGHUP:
            logger.info("Received SIGHUP, restarting workers one at a time")
            for worker in [w for w in self.workers if not w.retiring]:
                self.replace(worker)
        elif sig == signal.SIGTTIN:
            self.wanted += 1
            logger.info("Received SIGTTIN, now %d workers", self.wanted)
            self.spawn()
        elif sig == signal.SIGTTOU:
            if self.wanted <= 1:
                logger.info("Received SIGTTOU, keeping the last worker")
                return
            self.wanted -= 1
            logger.info("Received SIGTTOU, now %d workers", self.wanted)
            victim = next(w for w in reversed(self.workers) if not w.retiring)
            self.retire(victim)

    def reload(self, changes: list[str]) -> None:
        shown = ", ".join(f"'{os.path.relpath(path)}'" for path in changes[:5])
        logger.warning("WatchFiles detected changes in %s. Reloading...", shown)
        for worker in list(self.workers):
            self.retire(worker)
            worker.process.join(timeout=10)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            self.workers.remove(worker)
            worker.channel.close()
        self.spawn()

    def replace(self, old: Worker) -> None:
        """Start a replacement, wait until it is ready, then retire `old`: no refused connection."""
        new = self.spawn(old.sock)
        deadline = time.monotonic() + 60
        while not new.ready and new.process.is_alive() and time.monotonic() < deadline:
            wait([new.channel, new.process.sentinel], timeout=0.25)
            self.read_messages(new)
        if not new.ready:
            logger.error("Replacement worker [%d] did not start; keeping [%d].", new.pid, old.pid)
            return
        self.retire(old)

    def retire(self, worker: Worker) -> None:
        worker.retiring = True
        if worker.process.is_alive():
            os.kill(worker.pid, signal.SIGTERM)

    def stop_all(self) -> None:
        for worker in self.workers:
            if worker.process.is_alive():
                os.kill(worker.pid, signal.SIGTERM)
        grace = self.config.timeout_graceful_shutdown
        deadline = None if grace is None else time.monotonic() + grace + 5
        for worker in self.workers:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            worker.process.join(remaining)
            if worker.process.is_alive():
                logger.warning("Worker [%d] did not stop in time; killing it.", worker.pid)
                worker.process.kill()
                worker.process.join()
        self.workers.clear()


def rss_mib(pid: int) -> float:
    """Resident memory of a process in MiB (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0
