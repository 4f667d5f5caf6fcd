"""HTTP/2 settings users tune, protection against the known HTTP/2 floods (and none against a
busy honest client), the per-connection request cap, and GOAWAY on graceful shutdown — at frame
level with the `h2`/`hyperframe` libraries.

Each flood test checks the same three things: the attacking connection is cut off (GOAWAY or
close) or its requests refused, the server process stays up, and another client is served at once.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time

import h2.config
import h2.connection
import h2.events
import h2.settings
import httpx
import pytest
from hpack import Encoder
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    SettingsFrame,
)

APP = "tests.apps.core_app:app"
REQUEST = [(":method", "GET"), (":path", "/"), (":scheme", "http"), (":authority", "x")]


class Client:
    """A raw HTTP/2 client connection: the h2 state machine plus a socket."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.conn.initiate_connection()
        self.flush()
        self.events: list[h2.events.Event] = []

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def pump(self, until, timeout: float = 10.0) -> bool:
        """Read events until `until(event)` is true; False if the connection closed first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                data = self.sock.recv(65536)
            except ConnectionResetError:
                return False
            except TimeoutError:
                break
            if not data:
                return False
            try:
                new = self.conn.receive_data(data)
            except h2.exceptions.ProtocolError:
                return False
            self.events.extend(new)
            self.flush()
            if any(until(event) for event in new):
                return True
        raise AssertionError("timed out")

    def remote_settings(self) -> h2.settings.Settings:
        self.pump(lambda e: isinstance(e, h2.events.RemoteSettingsChanged))
        return self.conn.remote_settings

    def close(self) -> None:
        self.sock.close()


def goaway_or_closed(client: Client, timeout: float = 10.0) -> str:
    """Wait until the server sends GOAWAY or drops the connection and say which; a server that
    does neither within `timeout` fails the test (pump raises)."""
    try:
        got = client.pump(lambda e: isinstance(e, h2.events.ConnectionTerminated), timeout)
    except (BrokenPipeError, ConnectionResetError):
        return "closed"
    return "goaway" if got else "closed"


def assert_healthy(srv) -> None:
    assert srv.proc.poll() is None, "the server died"
    started = time.monotonic()
    with httpx.Client(http1=False, http2=True) as other:
        assert other.get(f"{srv.url}/scope", timeout=5).status_code == 200
    assert time.monotonic() - started < 2


def test_h2_settings_are_advertised(start_server):
    srv = start_server(
        APP,
        "--h2-max-concurrent-streams", "7",
        "--h2-initial-stream-window-size", "131072",
        "--h2-max-frame-size", "32768",
        "--h2-max-header-list-size", "8192",
    )  # fmt: skip
    client = Client(srv.port)
    settings = client.remote_settings()
    assert settings.max_concurrent_streams == 7
    assert settings.initial_window_size == 131072
    assert settings.max_frame_size == 32768
    assert settings.max_header_list_size == 8192
    client.close()


def test_bad_h2_settings_are_usage_errors(start_server):
    srv = start_server(APP, "--h2-max-frame-size", "1000", ready=False)
    assert srv.wait_exit() == 2
    assert "--h2-max-frame-size" in srv.output


def test_rapid_reset_flood(start_server):
    srv = start_server(APP, "--no-access-log")
    client = Client(srv.port)
    client.remote_settings()
    stream_id = 1
    try:
        for _ in range(50):  # 50 batches of 100 streams opened and reset at once
            for _ in range(100):
                client.conn.send_headers(stream_id, REQUEST, end_stream=True)
                client.conn.reset_stream(stream_id)
                stream_id += 2
            client.flush()
    except (BrokenPipeError, ConnectionResetError, h2.exceptions.ProtocolError):
        pass  # the server already cut us off
    goaway_or_closed(client)
    client.close()
    assert_healthy(srv)


def test_continuation_flood_is_cut_off(start_server):
    srv = start_server(APP)
    client = Client(srv.port)
    client.remote_settings()
    encoder = Encoder()
    first = HeadersFrame(1, encoder.encode(REQUEST))
    first.flags.add("END_STREAM")  # no END_HEADERS: CONTINUATION frames must follow
    client.sock.sendall(first.serialize())
    block = encoder.encode([("x-flood", "a" * 4000)])
    sent = 0
    try:
        for _ in range(5000):  # 20 MB of headers if nobody stops it
            client.sock.sendall(ContinuationFrame(1, block).serialize())
            sent += len(block)
    except (BrokenPipeError, ConnectionResetError):
        pass
    client.sock.settimeout(10)
    outcome = goaway_or_closed(client)
    assert sent < 5000 * len(block) or outcome == "goaway"
    client.close()
    assert_healthy(srv)


def test_hpack_bomb_is_refused(start_server):
    srv = start_server(APP)
    client = Client(srv.port)
    client.remote_settings()
    # One 4 KB header in the dynamic table, then a block that references it 500 times: a few
    # hundred bytes on the wire that decode to 2 MB.
    encoder = Encoder()
    big = ("x-bomb", "b" * 4000)
    client.sock.sendall(
        HeadersFrame(1, encoder.encode([*REQUEST, big]), flags=["END_HEADERS", "END_STREAM"]).serialize()
    )
    bomb = encoder.encode(REQUEST) + encoder.encode([big]) * 500
    client.sock.sendall(HeadersFrame(3, bomb, flags=["END_HEADERS", "END_STREAM"]).serialize())
    try:
        # Closed before an answer is refused too: the server's GOAWAY can be lost to the reset
        # that closing a socket with unread input (the rest of the bomb) sends.
        refused = not client.pump(
            lambda e: (
                (isinstance(e, h2.events.ResponseReceived) and e.stream_id == 3)
                or (isinstance(e, h2.events.StreamReset) and e.stream_id == 3)
                or isinstance(e, h2.events.ConnectionTerminated)
            )
        )
    except h2.exceptions.ProtocolError:
        refused = True
    for event in client.events:
        if isinstance(event, h2.events.ResponseReceived) and event.stream_id == 3:
            refused = dict(event.headers)[b":status"] == b"431"
        elif isinstance(event, (h2.events.StreamReset, h2.events.ConnectionTerminated)):
            refused = True
    assert refused, client.events
    client.close()
    assert_healthy(srv)


def test_empty_data_frame_flood(start_server):
    srv = start_server(APP)
    client = Client(srv.port)
    client.remote_settings()
    post = [(":method", "POST"), (":path", "/echo"), (":scheme", "http"), (":authority", "x")]
    client.conn.send_headers(1, post)
    client.flush()
    empty = DataFrame(1, b"").serialize()
    try:
        for _ in range(20):
            client.sock.sendall(empty * 1000)
    except (BrokenPipeError, ConnectionResetError):
        pass
    goaway_or_closed(client)
    client.close()
    assert_healthy(srv)


@pytest.mark.parametrize("frame", [PingFrame(0, b"12345678"), SettingsFrame(0, {0x3: 100})])
def test_ping_and_settings_floods_leave_the_server_up(start_server, frame):
    srv = start_server(APP)
    client = Client(srv.port)
    client.remote_settings()
    blob = frame.serialize() * 1000
    client.sock.settimeout(2)
    try:
        for _ in range(50):  # 50,000 frames without reading any answer
            client.sock.sendall(blob)
    except (BrokenPipeError, ConnectionResetError, TimeoutError):
        pass
    client.close()
    assert_healthy(srv)


def read_frames(sock: socket.socket, until, timeout: float = 10.0) -> list[Frame]:
    """Read raw frames (answering PINGs) until `until(frames)` is true or the server closes the
    connection. The h2 state machine is not used here: it rejects the PING that follows a
    graceful GOAWAY, which servers send to learn which streams are in flight."""
    frames: list[Frame] = []
    buffer = b""
    deadline = time.monotonic() + timeout
    while not until(frames):
        assert time.monotonic() < deadline, f"timed out; frames so far: {frames}"
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            return frames
        if not data:
            return frames
        buffer += data
        while len(buffer) >= 9:
            frame, length = Frame.parse_frame_header(memoryview(buffer[:9]))
            if len(buffer) < 9 + length:
                break
            frame.parse_body(memoryview(buffer[9 : 9 + length]))
            buffer = buffer[9 + length :]
            frames.append(frame)
            if isinstance(frame, PingFrame) and "ACK" not in frame.flags:
                sock.sendall(PingFrame(0, frame.opaque_data, flags=["ACK"]).serialize())
    return frames


def ended_streams(frames: list[Frame]) -> set[int]:
    return {
        f.stream_id for f in frames if isinstance(f, (DataFrame, HeadersFrame)) and "END_STREAM" in f.flags
    }


def test_a_busy_honest_connection_is_not_taken_for_a_flood(start_server):
    """Many streams on one connection, one after another and 16 at a time, are all served: a flood
    guard that counts streams (uvicorn 0.55 with zttp ends every connection after 4,096 as an
    "HTTP/2 flood") would cut it."""
    h2load = shutil.which("h2load")
    if h2load is None:
        pytest.skip("h2load is not installed (Debian nghttp2-client)")
    srv = start_server(APP, "--no-access-log")
    for streams in ("1", "16"):
        command = [h2load, "-n", "12000", "-c", "1", "-m", streams, f"{srv.url}/"]
        out = subprocess.run(command, capture_output=True, text=True, timeout=120).stdout
        assert "12000 succeeded, 0 failed, 0 errored" in out, out


def test_requests_per_connection_cap_over_http1_and_http2(start_server):
    srv = start_server(APP, "--limit-requests-per-connection", "3")
    with httpx.Client() as client:
        responses = [client.get(f"{srv.url}/scope") for _ in range(3)]
    assert [r.headers.get("connection") for r in responses] == [None, None, "close"]
    client = Client(srv.port)
    for stream_id in (1, 3, 5):
        client.conn.send_headers(stream_id, REQUEST, end_stream=True)
    client.flush()
    frames = read_frames(client.sock, lambda fs: False)  # until the server closes the connection
    assert any(isinstance(f, GoAwayFrame) for f in frames)
    assert ended_streams(frames) == {1, 3, 5}
    client.close()


def test_graceful_shutdown_sends_goaway_and_finishes_open_streams(start_server):
    srv = start_server(APP)
    client = Client(srv.port)
    sleep = [
        (":method", "GET"),
        (":path", "/sleep"),
        (":scheme", "http"),
        (":authority", "x"),
        ("x-sleep", "1"),
    ]
    client.conn.send_headers(1, sleep, end_stream=True)
    client.flush()
    time.sleep(0.3)
    srv.signal(signal.SIGTERM)
    frames = read_frames(client.sock, lambda fs: False)
    goaway = [i for i, f in enumerate(frames) if isinstance(f, GoAwayFrame)]
    data = [i for i, f in enumerate(frames) if isinstance(f, DataFrame) and f.stream_id == 1]
    assert goaway and data and goaway[0] < data[0], frames  # GOAWAY first, then the open stream ends
    assert b"".join(frames[i].data for i in data) == b"slept"
    assert 1 in ended_streams(frames)
    client.close()
    assert srv.wait_exit() == 0
