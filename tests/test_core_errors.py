"""Misbehaving apps: the server answers for them, logs once, and keeps serving."""

from __future__ import annotations

import socket
import time

import h2.connection
import h2.events
import httpx
import pytest

from tests import rawhttp


@pytest.fixture(scope="module")
def server():
    from tests.conftest import ServerProcess

    srv = ServerProcess(["tests.apps.core_app:app", "--port", "0"]).wait_ready()
    yield srv
    srv.stop()


def events(server, rid: str):
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        found = httpx.get(f"{server.url}/events/{rid}").json()
        if found is not None:
            return found
        time.sleep(0.02)
    raise AssertionError(f"no events recorded for {rid}")


def test_exception_before_start_gives_500_with_connection_close(server):
    logged_before = server.output.count("RuntimeError: boom before start")
    sock = rawhttp.connect(server.port)
    sock.sendall(b"GET /error-before-start HTTP/1.1\r\nHost: x\r\n\r\n")
    status, headers, body = rawhttp.read_response(sock)
    assert status.startswith(b"HTTP/1.1 500")
    assert headers[b"connection"] == b"close"
    assert body == b"Internal Server Error"
    server.wait_for_line("RuntimeError: boom before start")
    server.wait_for_line(r'"GET /error-before-start HTTP/1.1" 500 Internal Server Error')
    assert server.output.count("RuntimeError: boom before start") == logged_before + 1
    assert httpx.get(server.url).status_code == 200


def test_exception_after_start_closes_the_connection(server):
    sock = rawhttp.connect(server.port)
    sock.sendall(b"GET /error-after-start HTTP/1.1\r\nHost: x\r\n\r\n")
    data = rawhttp.read_until_close(sock)
    # The head may or may not have left before the failure; either way the connection is closed
    # and the client never sees a cleanly terminated body.
    assert data == b"" or data.startswith(b"HTTP/1.1 200")
    assert not data.endswith(b"0\r\n\r\n"), "the chunked body must not be terminated cleanly"
    server.wait_for_line("RuntimeError: boom after start")
    assert httpx.get(server.url).status_code == 200


def test_exception_after_start_resets_only_that_http2_stream(server):
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    conn = h2.connection.H2Connection()
    conn.initiate_connection()
    for stream_id, path in ((1, "/error-after-start"), (3, "/stream")):
        conn.send_headers(
            stream_id,
            [(":method", "GET"), (":path", path), (":scheme", "http"), (":authority", "x")],
            end_stream=True,
        )
    sock.sendall(conn.data_to_send())
    reset, ended, body3 = set(), set(), b""
    while not ({1, 3} <= reset | ended):
        data = sock.recv(65536)
        assert data
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.StreamReset):
                reset.add(event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                ended.add(event.stream_id)
            elif isinstance(event, h2.events.DataReceived):
                conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                if event.stream_id == 3:
                    body3 += event.data
        sock.sendall(conn.data_to_send())
    assert 1 in reset
    assert 3 in ended and body3 == b"".join(b"chunk%d\n" % i for i in range(5))


def test_returning_without_response_gives_500(server):
    response = httpx.get(f"{server.url}/no-response")
    assert response.status_code == 500
    server.wait_for_line("ASGI callable returned without starting response.")


def test_body_before_start_raises_runtime_error(server):
    response = httpx.get(f"{server.url}/bad-order", headers={"x-id": "order1"})
    assert response.status_code == 500
    assert events(server, "order1") == {
        "error": "Expected ASGI message 'http.response.start', but got 'http.response.body'."
    }


def test_start_twice_raises_runtime_error(server):
    response = httpx.get(f"{server.url}/start-twice", headers={"x-id": "twice1"})
    assert response.status_code == 200 and response.text == "ok"
    assert events(server, "twice1") == {
        "error": "Expected ASGI message 'http.response.body', but got 'http.response.start'."
    }


def test_header_injection_is_refused_and_never_written(server):
    sock = rawhttp.connect(server.port)
    sock.sendall(b"GET /bad-header HTTP/1.1\r\nHost: x\r\nx-id: inject1\r\n\r\n")
    data = rawhttp.read_until_close(sock)
    assert data.startswith(b"HTTP/1.1 500")
    assert b"x-injected" not in data.lower()
    assert b"x-ok" not in data.lower()
    assert "invalid value for response header" in events(server, "inject1")["error"]
