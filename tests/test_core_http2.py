"""HTTP/2 cleartext (prior knowledge): httpx, curl, many streams on one connection, and
RST_STREAM reaching exactly the stream it concerns (frame level with the h2 library)."""

from __future__ import annotations

import asyncio
import socket
import subprocess
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


def test_httpx_http2_prior_knowledge(server):
    with httpx.Client(http1=False, http2=True) as client:
        response = client.post(f"{server.url}/echo", content=b"over h2")
    assert response.http_version == "HTTP/2"
    assert response.content == b"over h2"
    assert response.headers["server"] == "fasterapi"
    assert "date" in response.headers


def test_curl_http2_prior_knowledge(server):
    out = subprocess.run(
        ["curl", "-sS", "--http2-prior-knowledge", "-o", "-", "-w", "\n%{http_version}", f"{server.url}/"],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    ).stdout
    body, version = out.rsplit("\n", 1)
    assert body == "Hello, world!"
    assert version == "2"


def test_streaming_response_over_http2(server):
    with httpx.Client(http1=False, http2=True) as client:
        response = client.get(f"{server.url}/stream")
    assert response.content == b"".join(b"chunk%d\n" % i for i in range(5))


def test_large_upload_over_http2(server):
    payload = bytes(range(256)) * 8192  # 2 MiB, beyond the initial flow-control windows
    with httpx.Client(http1=False, http2=True, timeout=30) as client:
        response = client.post(f"{server.url}/echo", content=payload)
    assert response.content == payload


def test_hundred_concurrent_streams_on_one_connection(server):
    async def run():
        async with httpx.AsyncClient(http1=False, http2=True) as client:
            responses = await asyncio.gather(
                *(client.get(f"{server.url}/sleep", headers={"x-sleep": "0.05"}) for _ in range(100))
            )
        return responses

    responses = asyncio.run(run())
    assert all(r.status_code == 200 and r.text == "slept" for r in responses)
    assert {r.http_version for r in responses} == {"HTTP/2"}


def test_rst_stream_disconnects_only_that_stream(server):
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    conn = h2.connection.H2Connection()
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())

    def request(stream_id: int, rid: str) -> None:
        conn.send_headers(
            stream_id,
            [
                (":method", "GET"),
                (":path", "/slow-stream"),
                (":scheme", "http"),
                (":authority", "x"),
                ("x-id", rid),
            ],
            end_stream=True,
        )

    request(1, "rst-victim")
    request(3, "rst-bystander")
    sock.sendall(conn.data_to_send())
    received = {1: 0, 3: 0}
    ended: set[int] = set()
    reset_sent = False
    while 3 not in ended:
        data = sock.recv(65536)
        assert data, "connection closed"
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.DataReceived):
                received[event.stream_id] += len(event.data)
                conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                if event.stream_id == 1 and not reset_sent and received[1] >= 300:
                    conn.reset_stream(1)
                    reset_sent = True
            elif isinstance(event, h2.events.StreamEnded):
                ended.add(event.stream_id)
        sock.sendall(conn.data_to_send())
    sock.close()
    assert reset_sent
    assert received[3] == 40 * 100
    assert 1 not in ended
    assert events(server, "rst-victim") == {
        "outcome": "send raised",
        "class": "ClientDisconnected",
        "oserror": True,
    }
    assert events(server, "rst-bystander") == {"outcome": "completed"}


def test_access_log_shows_http2(server):
    with httpx.Client(http1=False, http2=True) as client:
        client.get(f"{server.url}/h2-logged")
    server.wait_for_line(r'"GET /h2-logged HTTP/2" 200 OK')


def h2_get_over(sock: socket.socket, first_bytes: int) -> int:
    """GET / with the h2 library, the connection preface split after `first_bytes` bytes with a
    pause between the parts (as a slow network may deliver it); the response status."""
    conn = h2.connection.H2Connection()
    conn.initiate_connection()
    opening = conn.data_to_send()
    sock.sendall(opening[:first_bytes])
    time.sleep(0.3)
    sock.sendall(opening[first_bytes:])
    request = [(":method", "GET"), (":path", "/"), (":scheme", "http"), (":authority", "x")]
    conn.send_headers(1, request, end_stream=True)
    sock.sendall(conn.data_to_send())
    sock.settimeout(10)
    while True:
        data = sock.recv(65536)
        assert data, "closed before the response"
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.ResponseReceived):
                return int(dict(event.headers)[b":status"])
        sock.sendall(conn.data_to_send())


@pytest.mark.parametrize("first_bytes", [1, 10, 23])
def test_a_preface_that_arrives_in_pieces_is_still_http2(server, first_bytes):
    # The server tells HTTP/2 from HTTP/1.1 by peeking at the first bytes; a proper prefix of
    # the preface cannot decide, and must not be taken for HTTP/1.1.
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        assert h2_get_over(sock, first_bytes) == 200


def test_an_http1_request_whose_first_byte_arrives_alone_is_served(server):
    # "P" could begin the HTTP/2 preface or "POST": undecided until the next byte comes.
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"P")
        time.sleep(0.3)
        sock.sendall(b"OST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
        status, _, body = rawhttp.read_response(sock)
    assert status.startswith(b"HTTP/1.1 200") and body == b"hello"
