"""Slow handlers do not block each other, and many open connections do not stall the loop."""

from __future__ import annotations

import asyncio
import os
import resource
import socket
import time

import httpx
import pytest

from tests import rawhttp


@pytest.fixture(scope="module")
def server():
    from tests.conftest import ServerProcess

    srv = ServerProcess(["tests.apps.core_app:app", "--port", "0", "--no-access-log"]).wait_ready()
    yield srv
    srv.stop()


def test_ten_sleeping_requests_run_concurrently(server):
    async def run() -> float:
        async with httpx.AsyncClient(limits=httpx.Limits(max_connections=20)) as client:
            await client.get(server.url)  # warm the connection pool
            start = time.perf_counter()
            responses = await asyncio.gather(
                *(client.get(f"{server.url}/sleep", headers={"x-sleep": "0.1"}) for _ in range(10))
            )
            elapsed = time.perf_counter() - start
        assert all(r.text == "slept" for r in responses)
        return elapsed

    assert asyncio.run(run()) < 0.3


def test_io_threads_run_under_sched_batch_and_app_threads_do_not(server):
    # The I/O thread must not preempt the app loop on a shared core; the app's own threads keep
    # the normal policy.
    policies = httpx.get(f"{server.url}/sched").json()
    assert policies["loop"] == os.SCHED_OTHER
    assert policies["app_thread"] == os.SCHED_OTHER
    assert os.SCHED_BATCH in policies["process"], policies


def test_thousand_idle_connections_do_not_stall_new_requests(server):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 2200:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(4096, hard), hard))
    idle = []
    try:
        for _ in range(1000):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            idle.append(sock)
        for sock in idle[:: max(1, len(idle) // 20)]:
            assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        start = time.perf_counter()
        response = httpx.get(server.url, timeout=5)
        assert response.text == "Hello, world!"
        assert time.perf_counter() - start < 1.0
    finally:
        for sock in idle:
            sock.close()


def test_a_burst_of_requests_starts_in_slices(server):
    # While the loop is blocked, 200 requests queue up and reach it as one batch. It starts them a
    # slice at a time and runs each slice's tasks before starting the next, so no request sees the
    # whole burst alive at once (which would make the garbage collector walk all of it).
    blocker = rawhttp.connect(server.port)
    blocker.sendall(b"GET /block-loop HTTP/1.1\r\nHost: x\r\nx-sleep: 0.5\r\n\r\n")
    time.sleep(0.1)
    burst = [rawhttp.connect(server.port) for _ in range(200)]
    try:
        for sock in burst:
            sock.sendall(b"GET /tasks-alive HTTP/1.1\r\nHost: x\r\n\r\n")
        assert rawhttp.read_response(blocker)[2] == b"unblocked"
        alive = [int(rawhttp.read_response(sock)[2]) for sock in burst]
    finally:
        blocker.close()
        for sock in burst:
            sock.close()
    assert max(alive) <= 40, sorted(alive)
