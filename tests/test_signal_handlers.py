"""`loop.add_signal_handler` in an app: the app loops are not on the main thread, where asyncio and
uvloop catch signals, so the server relays them (`python/fasterapi/loops.py`)."""

from __future__ import annotations

import signal
import time

import httpx
import pytest

APP = "tests.apps.signal_apps:app"


def received_after(srv, sig: int, count: int) -> list[list[str]]:
    """Send `sig` to the server and wait until its app has seen `count` SIGUSR1s in all."""
    srv.signal(sig)
    deadline = time.monotonic() + 10
    while True:
        received = httpx.get(f"{srv.url}/received").json()
        if len(received) >= count or time.monotonic() > deadline:
            return received
        time.sleep(0.05)


@pytest.mark.parametrize("event_loop", ["uvloop", "asyncio"])
def test_a_handler_added_in_lifespan_runs_on_its_loop_in_its_context(start_server, event_loop):
    srv = start_server(APP, "--loop", event_loop)
    assert received_after(srv, signal.SIGUSR1, 1) == [["usr1", "fasterapi-loop-0", "lifespan"]]
    assert received_after(srv, signal.SIGUSR1, 2) == [["usr1", "fasterapi-loop-0", "lifespan"]] * 2
    assert srv.proc.poll() is None, "the server keeps serving"


def test_each_loop_runs_its_own_handlers(start_server):
    srv = start_server(APP, "--loops", "2")
    received = received_after(srv, signal.SIGUSR1, 2)
    assert sorted(thread for _, thread, _ in received) == ["fasterapi-loop-0", "fasterapi-loop-1"]


def test_the_app_sigterm_handler_runs_and_the_server_still_shuts_down(start_server):
    srv = start_server(APP)
    srv.signal(signal.SIGTERM)
    assert srv.wait_exit() == 0
    assert "app: SIGTERM handler ran on fasterapi-loop-0" in srv.output
    assert "Finished server process" in srv.output


def test_removing_the_handler_puts_the_default_back(start_server):
    srv = start_server(APP)
    assert httpx.get(f"{srv.url}/remove").json() == [True, False]
    srv.signal(signal.SIGUSR1)  # SIGUSR1's default, as after asyncio's remove_signal_handler: exit
    assert srv.wait_exit() == -signal.SIGUSR1


def test_bad_calls_raise_what_asyncio_raises(start_server):
    srv = start_server(APP)
    refusals = httpx.get(f"{srv.url}/refusals").json()
    assert refusals == ["RuntimeError", "ValueError", "TypeError", "ValueError"]


@pytest.mark.parametrize(("exit_code", "status"), [(None, 0), ("4", 4)])
def test_an_import_time_handler_runs_after_shutdown_as_under_uvicorn(start_server, exit_code, status):
    env = {"APP_EXIT_CODE": exit_code} if exit_code else None
    srv = start_server("tests.apps.import_signal_app:app", env=env)
    assert httpx.get(srv.url).status_code == 200
    srv.signal(signal.SIGTERM)
    assert srv.wait_exit() == status
    lines = srv.output.splitlines()
    finished = next(i for i, line in enumerate(lines) if "Finished server process" in line)
    assert lines[finished + 1 :] == ["app: import-time handler ran for SIGTERM"], srv.output


def test_a_signal_during_lifespan_startup_stops_the_server_once_started(start_server):
    srv = start_server("tests.apps.lifespan_apps:slow_startup", ready=False)
    srv.wait_for_line("slow startup begins")
    srv.signal(signal.SIGTERM)
    assert srv.wait_exit() == 0
    assert "Shutting down" in srv.output
