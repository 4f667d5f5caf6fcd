"""`--workers N` under the supervisor, and `--reload`."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

APP = "tests.apps.worker_apps:app"


def pid_of_fresh_connection(url: str) -> int:
    with httpx.Client() as client:
        return int(client.get(url).text)


def wait_for(predicate, timeout: float = 15.0, message: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {message}"
        time.sleep(0.05)


def worker_pids(srv) -> set[int]:
    """The pids of the supervisor's live workers (its children that serve)."""
    children = Path(f"/proc/{srv.proc.pid}/task/{srv.proc.pid}/children").read_text().split()
    pids = set()
    for child in map(int, children):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"resource_tracker" not in cmdline:
            pids.add(child)
    return pids


def ready_workers(srv) -> int:
    return srv.output.count("Application startup complete.") - srv.output.count("Finished server process")


class Load:
    """Sends requests on fresh connections from a thread, counting failures."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.ok = 0
        self.failed: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                response = httpx.get(self.url, timeout=10)
                if response.status_code == 200:
                    self.ok += 1
                else:
                    self.failed.append(str(response.status_code))
            except httpx.HTTPError as exc:
                self.failed.append(repr(exc))

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def test_requests_are_served_by_both_workers(start_server):
    srv = start_server(APP, "--workers", "2")
    wait_for(lambda: ready_workers(srv) == 2, message="two ready workers")
    seen: set[int] = set()
    deadline = time.monotonic() + 15
    while len(seen) < 2 and time.monotonic() < deadline:
        seen.add(pid_of_fresh_connection(srv.url))
    assert seen == worker_pids(srv)


def test_killed_worker_is_respawned(start_server):
    srv = start_server(APP, "--workers", "2")
    wait_for(lambda: ready_workers(srv) == 2, message="two ready workers")
    victim = sorted(worker_pids(srv))[0]
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: victim not in worker_pids(srv) and len(worker_pids(srv)) == 2, message="respawn")
    wait_for(lambda: ready_workers(srv) >= 2 and srv.output.count("Application startup complete.") == 3)
    for _ in range(30):
        assert httpx.get(srv.url).status_code == 200


def test_sighup_rolling_restart_refuses_nothing(start_server):
    srv = start_server(APP, "--workers", "2")
    wait_for(lambda: ready_workers(srv) == 2, message="two ready workers")
    before = worker_pids(srv)
    with Load(srv.url) as load:
        wait_for(lambda: load.ok > 20, message="traffic")
        srv.signal(signal.SIGHUP)
        wait_for(
            lambda: len(worker_pids(srv) & before) == 0 and len(worker_pids(srv)) == 2, 30, "new workers"
        )
        served = load.ok
        wait_for(lambda: load.ok > served + 20, message="traffic after the restart")
    assert load.failed == []


def test_sigterm_lets_slow_requests_finish(start_server):
    srv = start_server(APP, "--workers", "2")
    wait_for(lambda: ready_workers(srv) == 2, message="two ready workers")
    results: list[object] = []

    def slow() -> None:
        try:
            results.append(httpx.get(f"{srv.url}/sleep", timeout=10).status_code)
        except httpx.HTTPError as exc:
            results.append(repr(exc))

    threads = [threading.Thread(target=slow) for _ in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(0.3)  # let the four requests reach the workers (they take 1 s each)
    srv.signal(signal.SIGTERM)
    for thread in threads:
        thread.join()
    assert srv.wait_exit() == 0
    assert results == [200] * 4


def test_ttin_and_ttou_change_the_worker_count(start_server):
    srv = start_server(APP, "--workers", "2")
    wait_for(lambda: ready_workers(srv) == 2, message="two ready workers")
    srv.signal(signal.SIGTTIN)
    wait_for(lambda: len(worker_pids(srv)) == 3, message="a third worker")
    srv.signal(signal.SIGTTOU)
    wait_for(lambda: len(worker_pids(srv)) == 2, message="back to two workers")
    srv.signal(signal.SIGTTOU)  # a signal sent before the previous one was handled may merge with it
    wait_for(lambda: len(worker_pids(srv)) == 1, message="one worker left")
    assert httpx.get(srv.url).status_code == 200


def test_startup_failure_in_a_worker_exits_3(start_server):
    srv = start_server("tests.apps.lifespan_apps:startup_failed", "--workers", "2", ready=False)
    assert srv.wait_exit(timeout=30) == 3


def test_crash_loop_stops_the_server(start_server):
    srv = start_server(APP, "--workers", "2", ready=False, env={"FASTERAPI_TEST_CRASH_AT_IMPORT": "1"})
    assert srv.wait_exit(timeout=60) == 1
    assert "Workers keep dying right after they start" in srv.output


def test_hung_worker_is_killed_and_replaced(start_server):
    srv = start_server(APP, "--workers", "2", "--timeout-worker-healthcheck", "1")
    wait_for(lambda: ready_workers(srv) == 2, message="two ready workers")
    before = worker_pids(srv)
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{srv.url}/block", timeout=10)
    srv.wait_for_line(r"did not answer a health check")
    wait_for(lambda: len(worker_pids(srv)) == 2 and worker_pids(srv) != before, message="replacement")


def test_max_requests_recycles_workers_without_failures(start_server):
    srv = start_server(
        APP, "--workers", "2", "--limit-max-requests", "20", "--limit-max-requests-jitter", "5"
    )
    wait_for(lambda: ready_workers(srv) == 2, message="two ready workers")
    with Load(srv.url) as load:
        wait_for(lambda: srv.output.count("starting a replacement") >= 2, 30, "recycled workers")
        served = load.ok
        wait_for(lambda: load.ok > served + 10, message="traffic after recycling")
    assert load.failed == []


@pytest.mark.timeout(90)
def test_reload_serves_edits_survives_broken_code(start_server, tmp_path):
    module = tmp_path / "reloadme.py"
    source = (
        "async def app(scope, receive, send):\n"
        "    await send({'type': 'http.response.start', 'status': 200, 'headers': []})\n"
        "    await send({'type': 'http.response.body', 'body': b'VERSION'})\n"
    )
    module.write_text(source.replace("VERSION", "one"))
    srv = start_server(
        "reloadme:app",
        "--reload",
        "--reload-dir",
        str(tmp_path),
        "--app-dir",
        str(tmp_path),
        "--lifespan",
        "off",
    )
    wait_for(lambda: _body(srv.url) == "one", message="first version")

    module.write_text(source.replace("VERSION", "two"))
    start = time.monotonic()
    wait_for(lambda: _body(srv.url) == "two", timeout=10, message="edited version")
    assert time.monotonic() - start < 2.5

    module.write_text("this is not python(\n")
    srv.wait_for_line(r"waiting for a file change to reload")
    assert srv.proc.poll() is None, "the supervisor must survive a broken edit"

    module.write_text(source.replace("VERSION", "three"))
    wait_for(lambda: _body(srv.url) == "three", timeout=10, message="fixed version")


def _body(url: str) -> str | None:
    try:
        return httpx.get(url, timeout=2).text
    except httpx.HTTPError:
        return None


LOOP_APP = "tests.apps.loop_apps:app"


def test_loops_spread_requests_each_with_its_own_lifespan(start_server):
    srv = start_server(LOOP_APP, "--loops", "3")
    with httpx.Client() as client:
        replies = [client.get(srv.url).text.split() for _ in range(12)]
    served_by = {thread for thread, _, _ in replies}
    assert served_by == {"fasterapi-loop-0", "fasterapi-loop-1", "fasterapi-loop-2"}
    # Each request sees the lifespan state made on its own loop, and startup ran once per loop.
    assert all(thread == lifespan_thread for thread, lifespan_thread, _ in replies)
    assert {startups for _, _, startups in replies} == {"3"}
    srv.stop()
    assert srv.output.count("Application shutdown complete.") == 3


def test_a_loop_stuck_in_a_blocking_handler_does_not_hold_up_other_requests(start_server):
    srv = start_server(LOOP_APP, "--loops", "2")
    blocked = threading.Thread(target=httpx.get, args=(f"{srv.url}/block",), kwargs={"timeout": 10})
    blocked.start()
    time.sleep(0.3)
    started = time.monotonic()
    with httpx.Client() as client:
        for _ in range(5):
            assert client.get(srv.url, timeout=10).status_code == 200
    assert time.monotonic() - started < 1.0, "requests were queued behind the blocked loop"
    blocked.join()


def test_workers_refuse_a_port_already_in_use(start_server):
    first = start_server(APP, "--workers", "2")
    second = start_server(APP, "--workers", "2", "--port", str(first.port), ready=False)
    assert second.wait_exit() == 1
    assert "address already in use" in second.output
    assert pid_of_fresh_connection(first.url) in worker_pids(first)
