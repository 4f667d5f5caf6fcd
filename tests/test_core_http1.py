"""HTTP/1.1 behaviour over raw sockets and httpx: keep-alive, pipelining, bodies in both
directions, 100-continue, framing of responses, malformed requests."""

from __future__ import annotations

import json
import os
import socket
import time

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


def test_keep_alive_serves_several_requests_on_one_connection(server):
    sock = rawhttp.connect(server.port)
    for _ in range(3):
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, body = rawhttp.read_response(sock)
        assert status.startswith(b"HTTP/1.1 200")
        assert body == b"Hello, world!"
        assert headers.get(b"connection") != b"close"


def test_pipelined_requests_are_answered_in_order(server):
    sock = rawhttp.connect(server.port)
    sock.sendall(
        b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
        b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    bodies = [rawhttp.read_response(sock)[2] for _ in range(3)]
    assert bodies == [b"Hello, world!", b"hello", b"".join(b"chunk%d\n" % i for i in range(5))]


def test_chunked_request_body_is_dechunked(server):
    sock = rawhttp.connect(server.port)
    sock.sendall(
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\n\r\n"
    )
    _, _, body = rawhttp.read_response(sock)
    assert body == b"hello world"


def test_large_body_arrives_complete_in_several_events(server):
    payload = os.urandom(5 * 1024 * 1024)
    response = httpx.post(f"{server.url}/echo", content=payload, timeout=30)
    assert response.content == payload
    assert int(response.headers["x-events"]) > 1


def test_body_read_ahead_of_a_slow_app_arrives_in_larger_events(server):
    # The server reads up to 256 KiB ahead of the app, and one receive gets all of it: 1 MiB
    # arrives in a handful of events, not in the 64 KiB pieces hyper reads.
    sizes = httpx.post(f"{server.url}/echo-paced", content=b"z" * (1 << 20), timeout=30).json()
    assert sum(sizes) == 1 << 20
    assert len(sizes) <= 8, sizes
    assert max(sizes) >= 256 * 1024, sizes


def test_small_body_arrives_in_one_event(server):
    response = httpx.post(f"{server.url}/echo", content=b"x" * 1000)
    assert response.content == b"x" * 1000
    assert response.headers["x-events"] == "1"


def test_request_body_streams_while_the_response_streams(server):
    def chunks():
        for i in range(20):
            yield b"%02d" % i

    response = httpx.post(f"{server.url}/echo-stream", content=chunks())
    assert response.content == b"".join(b"%02d" % i for i in range(20))


def test_expect_continue_not_sent_when_app_does_not_read(server):
    sock = rawhttp.connect(server.port)
    sock.sendall(
        b"POST /ignore-body HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
    )
    status, _, body = rawhttp.read_response(sock)
    assert status.startswith(b"HTTP/1.1 200"), status
    assert body == b"did not read"


def test_expect_continue_sent_when_app_reads(server):
    sock = rawhttp.connect(server.port)
    sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
    status, _, rest = rawhttp.read_response(sock)
    assert status.startswith(b"HTTP/1.1 100"), status
    sock.sendall(b"hello")
    status, _, body = rawhttp.read_response(sock)
    assert status.startswith(b"HTTP/1.1 200")
    assert body == b"hello"


def test_streaming_response_without_length_is_chunked(server):
    sock = rawhttp.connect(server.port)
    sock.sendall(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
    _, headers, body = rawhttp.read_response(sock)
    assert headers[b"transfer-encoding"] == b"chunked"
    assert b"content-length" not in headers
    assert body == b"".join(b"chunk%d\n" % i for i in range(5))


def test_content_length_set_by_app_is_kept(server):
    sock = rawhttp.connect(server.port)
    sock.sendall(b"GET /sized HTTP/1.1\r\nHost: x\r\n\r\n")
    _, headers, body = rawhttp.read_response(sock)
    assert headers[b"content-length"] == b"10"
    assert b"transfer-encoding" not in headers
    assert body == b"0123456789"


def test_head_response_has_headers_but_no_body(server):
    sock = rawhttp.connect(server.port)
    sock.sendall(b"HEAD /sized HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
    sock.settimeout(5)
    data = b""
    while data.count(b"HTTP/1.1 200") < 2 or not data.endswith(b"Hello, world!"):
        chunk = sock.recv(65536)
        assert chunk, data
        data += chunk
    head_response, _, rest = data.partition(b"\r\n\r\n")
    assert b"content-length: 10" in head_response
    assert rest.startswith(b"HTTP/1.1 200"), "the HEAD response carried a body"


@pytest.mark.parametrize("status", [204, 304])
def test_no_body_statuses_send_no_body(server, status):
    sock = rawhttp.connect(server.port)
    request = f"GET /status/{status} HTTP/1.1\r\nHost: x\r\n\r\n"
    sock.sendall((request + "GET / HTTP/1.1\r\nHost: x\r\n\r\n").encode())
    sock.settimeout(5)
    data = b""
    while not data.endswith(b"Hello, world!"):
        chunk = sock.recv(65536)
        assert chunk, data
        data += chunk
    first, _, rest = data.partition(b"\r\n\r\n")
    assert first.startswith(f"HTTP/1.1 {status}".encode())
    assert b"should not be sent" not in data
    assert rest.startswith(b"HTTP/1.1 200")


def test_default_server_and_date_headers(server):
    response = httpx.get(server.url)
    assert response.headers["server"] == "fasterapi"
    assert response.headers["date"].endswith(" GMT")


def test_malformed_request_line_gets_400_and_server_keeps_serving(server):
    sock = rawhttp.connect(server.port)
    sock.sendall(b"THIS IS NOT HTTP\r\n\r\n")
    data = rawhttp.read_until_close(sock)
    assert data.startswith(b"HTTP/1.1 400")
    assert httpx.get(server.url).status_code == 200


def test_oversized_request_head_gets_431(server):
    sock = rawhttp.connect(server.port)
    sock.sendall(rawhttp.get_with_big_header(100_000))
    data = rawhttp.read_until_close(sock)
    assert data.startswith(b"HTTP/1.1 431")
    assert httpx.get(server.url).status_code == 200


def test_head_size_limit_is_exact_in_http1_mode(start_server):
    # hyper's buffer limit alone let a head past it when one read brought it all in.
    srv = start_server("tests.apps.core_app:app", "--http", "h1", "--h11-max-incomplete-event-size", "20000")
    for size, status in ((15_000, b"200"), (25_000, b"431")):
        sock = rawhttp.connect(srv.port)
        sock.sendall(rawhttp.get_with_big_header(size))
        assert rawhttp.read_response(sock)[0].startswith(b"HTTP/1.1 " + status), size
        sock.close()


def test_receive_returns_disconnect_after_response(server):
    httpx.get(f"{server.url}/after-response", headers={"x-id": "after1"})
    assert events(server, "after1") == {"event": "http.disconnect"}


def test_client_leaving_delivers_http_disconnect(server):
    sock = rawhttp.connect(server.port)
    sock.sendall(b"GET /wait-disconnect HTTP/1.1\r\nHost: x\r\nx-id: gone1\r\n\r\n")
    time.sleep(0.1)  # let the app reach its second receive(); the outcome is polled below
    sock.close()
    assert events(server, "gone1") == {"event": "http.disconnect"}


def test_send_after_client_left_raises_oserror(server):
    sock = rawhttp.connect(server.port)
    sock.sendall(b"GET /slow-stream HTTP/1.1\r\nHost: x\r\nx-id: gone2\r\n\r\n")
    sock.recv(100)
    sock.close()
    found = events(server, "gone2")
    assert found == {"outcome": "send raised", "class": "ClientDisconnected", "oserror": True}
    assert "Exception in ASGI application" not in server.output.split("gone2")[-1]


def test_access_log_line_in_uvicorn_format(server):
    httpx.get(f"{server.url}/a%20b?x=1")
    server.wait_for_line(r'INFO:     127\.0\.0\.1:\d+ - "GET /a%20b\?x=1 HTTP/1\.1" 200 OK')


def test_response_to_json_route(server):
    assert json.loads(httpx.get(f"{server.url}/events/none").content) is None


def test_request_body_is_read_only_as_fast_as_the_app_reads(server):
    """A client pushing 64 MiB to an app that stopped reading is held back by TCP flow control:
    only what fits in socket buffers is accepted, nothing is buffered in the server."""
    sock = rawhttp.connect(server.port)
    total = 64 * 1024 * 1024
    sock.sendall(b"POST /slow-reader HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % total)
    sock.setblocking(False)
    chunk = b"y" * 65536
    accepted = 0
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline and accepted < total:
        try:
            accepted += sock.send(chunk)
        except BlockingIOError:
            time.sleep(0.005)
    sock.close()
    assert accepted < 16 * 1024 * 1024, f"server swallowed {accepted} bytes without the app reading"


def test_send_waits_for_a_slow_client(server):
    """An app streaming 1 MiB chunks to a client that reads nothing is paused by `send`."""
    sock = rawhttp.connect(server.port)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    sock.sendall(b"GET /firehose HTTP/1.1\r\nHost: x\r\nx-id: hose1\r\n\r\n")
    first = events(server, "hose1")
    time.sleep(0.5)  # the client reads nothing; how far did the app get?
    sent = httpx.get(f"{server.url}/events/hose1").json()["sent"]
    sock.close()
    assert first is not None
    assert sent < 20, f"app pushed {sent} MiB to a client that read nothing"
    deadline = time.monotonic() + 5
    while not httpx.get(f"{server.url}/events/hose1").json().get("disconnected"):
        assert time.monotonic() < deadline, "the app was never told the client left"
        time.sleep(0.02)
