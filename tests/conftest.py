"""Shared pytest fixtures: start a real `fasterapi` server process on a free port and stop it by PID.

The fixture waits for the server's "running on" log line (no sleeps) and exposes the port and output.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RUNNING = re.compile(r"running on (?P<scheme>https?)://(?P<host>[^:]+|\[[^\]]+\]):(?P<port>\d+)")


class ServerProcess:
    """A `python -m fasterapi ...` child process whose combined output is captured line by line."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None, cwd: Path = ROOT) -> None:
        full_env = dict(os.environ)
        full_env["PYTHONUNBUFFERED"] = "1"
        full_env.setdefault("PYTHONPATH", str(ROOT))
        if env:
            full_env.update(env)
        self.args = args
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fasterapi", *args],
            cwd=cwd,
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.port: int | None = None
        self.host = "127.0.0.1"
        self.scheme = "http"

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    @property
    def output(self) -> str:
        with self._cond:
            return "\n".join(self.lines)

    def wait_for_line(self, pattern: str | re.Pattern[str], timeout: float = 15.0) -> re.Match[str]:
        """Block until a line matching `pattern` was printed; fail if the process exits first."""
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        seen = 0
        with self._cond:
            deadline = timeout
            while True:
                for line in self.lines[seen:]:
                    match = regex.search(line)
                    if match:
                        return match
                seen = len(self.lines)
                if self.proc.poll() is not None and not self._reader.is_alive():
                    raise AssertionError(
                        f"server exited ({self.proc.returncode}) before {regex.pattern!r}:\n"
                        + "\n".join(self.lines)
                    )
                if deadline <= 0:
                    raise AssertionError(
                        f"timed out waiting for {regex.pattern!r}:\n" + "\n".join(self.lines)
                    )
                self._cond.wait(timeout=0.1)
                deadline -= 0.1

    def wait_ready(self, timeout: float = 15.0) -> ServerProcess:
        match = self.wait_for_line(RUNNING, timeout)
        self.port = int(match["port"])
        self.host = match["host"].strip("[]")
        self.scheme = match["scheme"]
        return self

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    def signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def wait_exit(self, timeout: float = 15.0) -> int:
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        self._reader.join(timeout=5)


@pytest.fixture
def start_server() -> Iterator[Callable[..., ServerProcess]]:
    """Start `fasterapi APP --port 0 ...`, wait until it accepts connections, stop it afterwards.

    Usage: `srv = start_server("tests.apps.basic:app", "--lifespan", "off")`.
    Pass `ready=False` to get the process without waiting (for startup-failure tests).
    """
    started: list[ServerProcess] = []

    def start(app: str, *args: str, ready: bool = True, env: dict[str, str] | None = None) -> ServerProcess:
        argv = [app, "--port", "0", *args]
        srv = ServerProcess(argv, env=env)
        started.append(srv)
        if ready:
            srv.wait_ready()
        return srv

    yield start
    for srv in started:
        srv.stop()
