"""The `http.response.trailers` extension: offered only to clients that sent `TE: trailers`, sent as
HTTP/2 trailing HEADERS and as HTTP/1.1 chunked trailer fields."""

from __future__ import annotations

import h2.config
import h2.connection
import h2.events
import httpx

from tests import rawhttp

APP = "tests.apps.trailers_app:app"


def test_trailers_over_h2c(start_server):
    srv = start_server(APP)
    sock = rawhttp.connect(srv.port)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    headers = [(":method", "GET"), (":path", "/"), (":scheme", "http"), (":authority", "127.0.0.1")]
    conn.send_headers(1, [*headers, ("te", "trailers")], end_stream=True)
    sock.sendall(conn.data_to_send())
    body, trailers, ended = b"", None, False
    while not ended:
        chunk = sock.recv(65536)
        assert chunk, "connection closed early"
        for event in conn.receive_data(chunk):
            if isinstance(event, h2.events.DataReceived):
                body += event.data
                conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.TrailersReceived):
                trailers = dict(event.headers)
            elif isinstance(event, h2.events.StreamEnded):
                ended = True
        sock.sendall(conn.data_to_send())
    sock.close()
    assert body == b"part one, part two"
    assert trailers == {b"x-checksum": b"abc123", b"x-count": b"2"}


def test_trailers_over_http11_chunked(start_server):
    srv = start_server(APP)
    sock = rawhttp.connect(srv.port)
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nTE: trailers\r\nConnection: close\r\n\r\n")
    raw = rawhttp.read_until_close(sock)
    sock.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"transfer-encoding: chunked" in head.lower()
    assert body.endswith(b"0\r\nx-checksum: abc123\r\nx-count: 2\r\n\r\n")
    assert b"part one, " in body and b"part two" in body


def test_no_trailers_without_te(start_server):
    srv = start_server(APP)
    response = httpx.get(srv.url)
    assert response.text == "no trailers"
    with httpx.Client(http1=False, http2=True) as client:
        assert client.get(srv.url).text == "no trailers"
