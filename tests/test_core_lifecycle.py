"""Lifespan (on/off/auto, failures) and graceful shutdown with requests in flight."""

from __future__ import annotations

import re
import signal
import threading
import time

import httpx
import pytest


def wait_until_sleeping(srv, count: int) -> None:
    """Block until `count` requests are inside the app's /sleep handler."""
    deadline = time.monotonic() + 10
    while httpx.get(f"{srv.url}/sleeping").text != str(count):
        assert time.monotonic() < deadline, "requests never reached the app"
        time.sleep(0.01)


def test_lifespan_startup_and_shutdown_run_in_order(start_server):
    srv = start_server("tests.apps.lifespan_apps:complete")
    assert httpx.get(srv.url).text == "[('db', 'connected')]"
    srv.signal(signal.SIGTERM)
    assert srv.wait_exit() == 0
    lines = srv.output
    order = [
        "Started server process",
        "Waiting for application startup.",
        "app: startup",
        "Application startup complete.",
        "fasterapi running on http://127.0.0.1:",
        "Shutting down",
        "Waiting for application shutdown.",
        "app: shutdown",
        "Application shutdown complete.",
        "Finished server process",
    ]
    positions = [lines.index(text) for text in order]
    assert positions == sorted(positions), lines


def test_a_task_factory_installed_at_startup_makes_the_request_tasks(start_server):
    srv = start_server("tests.apps.task_factory_app:app")
    assert httpx.get(srv.url).text == "FactoryTask imported"


def test_each_request_runs_in_its_own_named_task(start_server):
    srv = start_server("tests.apps.core_app:app")
    with httpx.Client() as client:
        names = [client.get(f"{srv.url}/task").text for _ in range(3)]
    assert all(re.fullmatch(r"Task Task-\d+", name) for name in names), names
    assert len(set(names)) == 3, names


def test_a_request_keeps_its_task_and_context_across_its_first_wait(start_server):
    # On 3.12+ the first step runs eagerly, inside the drain; the rest always in the same Task.
    srv = start_server("tests.apps.core_app:app")
    with httpx.Client() as client:
        seen = [client.get(f"{srv.url}/task-context", headers={"x-id": f"r{i}"}).text for i in range(3)]
    for i, line in enumerate(seen):
        before, after, same, name = line.split()
        assert (before, after, same) == ("unset", f"r{i}", "True"), seen
        assert re.fullmatch(r"Task-\d+", name), seen


def test_startup_failure_exits_with_status_3(start_server):
    srv = start_server("tests.apps.lifespan_apps:startup_failed", ready=False)
    assert srv.wait_exit() == 3
    assert "database unreachable" in srv.output
    assert "Application startup failed. Exiting." in srv.output
    assert "running on" not in srv.output


def test_shutdown_failure_is_logged(start_server):
    srv = start_server("tests.apps.lifespan_apps:shutdown_failed")
    srv.signal(signal.SIGINT)
    srv.wait_exit()
    assert "could not flush" in srv.output
    assert "Application shutdown failed. Exiting." in srv.output


def test_auto_tolerates_apps_without_lifespan(start_server):
    srv = start_server("tests.apps.lifespan_apps:no_lifespan")
    assert httpx.get(srv.url).status_code == 200
    assert "ASGI 'lifespan' protocol appears unsupported." in srv.output


def test_lifespan_on_with_unsupporting_app_exits_3(start_server):
    srv = start_server("tests.apps.lifespan_apps:no_lifespan", "--lifespan", "on", ready=False)
    assert srv.wait_exit() == 3
    assert "Exception in 'lifespan' protocol" in srv.output


def test_lifespan_off_never_calls_the_app_for_lifespan(start_server):
    srv = start_server("tests.apps.lifespan_apps:counts_lifespan", "--lifespan", "off")
    assert httpx.get(srv.url).text == "[]"
    srv.signal(signal.SIGTERM)
    assert srv.wait_exit() == 0
    assert "app: lifespan called" not in srv.output
    assert "Waiting for application startup." not in srv.output


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_graceful_shutdown_finishes_requests_in_flight(start_server, sig):
    srv = start_server("tests.apps.core_app:app")
    results: list[httpx.Response | Exception] = []

    def slow_request() -> None:
        try:
            results.append(httpx.get(f"{srv.url}/sleep", headers={"x-sleep": "1"}, timeout=10))
        except Exception as exc:  # noqa: BLE001 - recorded and asserted below
            results.append(exc)

    threads = [threading.Thread(target=slow_request) for _ in range(5)]
    for thread in threads:
        thread.start()
    wait_until_sleeping(srv, 5)
    srv.signal(sig)
    srv.wait_for_line("Shutting down")
    for thread in threads:
        thread.join(timeout=10)
    assert srv.wait_exit() == 0
    assert [getattr(r, "status_code", r) for r in results] == [200] * 5
    assert "Application shutdown complete." in srv.output
    assert "Finished server process" in srv.output


def test_graceful_timeout_cancels_stuck_requests(start_server):
    srv = start_server("tests.apps.core_app:app", "--timeout-graceful-shutdown", "1")
    outcome: list[object] = []

    def stuck() -> None:
        try:
            outcome.append(httpx.get(f"{srv.url}/sleep", headers={"x-sleep": "30"}, timeout=20))
        except httpx.HTTPError as exc:
            outcome.append(type(exc).__name__)

    thread = threading.Thread(target=stuck)
    thread.start()
    wait_until_sleeping(srv, 1)
    srv.signal(signal.SIGTERM)
    assert srv.wait_exit(timeout=10) == 0
    thread.join(timeout=10)
    assert "timeout graceful shutdown exceeded" in srv.output
    assert outcome and not isinstance(outcome[0], httpx.Response)


def test_the_heap_alive_after_startup_is_frozen_out_of_gc(start_server):
    srv = start_server("tests.apps.lifespan_apps:gc_report")
    first, second = (httpx.get(srv.url).json() for _ in range(2))
    assert first["startup_objects_tracked"] == 0, first
    assert first["frozen"] > 1000
    assert second["frozen"] == first["frozen"], "only startup's objects are frozen, not requests'"


def test_no_gc_freeze_leaves_the_collector_alone(start_server):
    srv = start_server("tests.apps.lifespan_apps:gc_report", "--no-gc-freeze")
    report = httpx.get(srv.url).json()
    assert report == {"frozen": 0, "startup_objects_tracked": 1000}


@pytest.mark.parametrize("loops", ["1", "2"])
def test_shutdown_ends_background_tasks_and_async_generators_like_asyncio_run(start_server, loops):
    srv = start_server("tests.apps.lifespan_apps:leaves_work_behind", "--lifespan", "off", "--loops", loops)
    with httpx.Client() as client:  # a new connection each: with two loops, requests reach both
        for _ in range(4):
            assert client.get(srv.url, headers={"connection": "close"}).status_code == 200
    srv.signal(signal.SIGINT)
    assert srv.wait_exit() == 0
    cleaned_up = re.findall(r"app: background task cleaned up on loop (\d+)", srv.output)
    assert len(cleaned_up) == 4
    assert len(set(cleaned_up)) == int(loops), "each loop ends its own tasks"
    assert srv.output.count("app: async generator closed") == 4
    assert "Task was destroyed but it is pending" not in srv.output


def test_shutdown_gives_up_on_a_background_task_that_ignores_cancellation(start_server):
    srv = start_server("tests.apps.lifespan_apps:leaves_a_stubborn_task", "--lifespan", "off")
    assert httpx.get(srv.url).status_code == 200
    srv.signal(signal.SIGINT)
    assert srv.wait_exit(timeout=9) == 0  # the 5 s grace, not for ever as under asyncio.run
    assert "app: stubborn task ignored its cancellation" in srv.output
    assert "1 background task(s) still running 5 s after shutdown cancelled them" in srv.output
    assert "exiting without them: stubborn" in srv.output
