"""WebSockets over HTTP/1.1 Upgrade and HTTP/2 extended CONNECT (RFC 8441), against a real server
process: messages, scope, handshake answers (accept, 403, denial response, 500), close codes both
ways, limits (max size 1009, ping timeout 1011, shutdown 1012), backpressure and options."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import ssl
import time

import h2.config
import h2.connection
import h2.events
import h2.settings
import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests import rawhttp
from tests.browser import chromium_page, needs_chromium
from tests.wsraw import RawWebSocket, client_frame, close_code, parse_server_frame

APP = "tests.apps.ws_app:app"


def run(coro):
    return asyncio.run(coro)


def ws_url(srv, path: str) -> str:
    return f"ws://127.0.0.1:{srv.port}{path}"


def events(srv, key: str, count: int = 1, timeout: float = 5.0) -> list:
    """What the app recorded under `id=key`, once it has recorded `count` things."""
    deadline = time.monotonic() + timeout
    while True:
        recorded = httpx.get(f"{srv.url}/events/{key}").json()
        if len(recorded) >= count or time.monotonic() > deadline:
            return recorded
        time.sleep(0.05)


@pytest.mark.parametrize("compression", ["deflate", None])
def test_echo_text_binary_and_one_mebibyte(start_server, compression):
    srv = start_server(APP)

    async def scenario():
        async with websockets.connect(ws_url(srv, "/echo"), compression=compression, max_size=None) as ws:
            await ws.send("héllo ✓")
            assert await ws.recv() == "héllo ✓"
            await ws.send(b"\x00\xff" * 10)
            assert await ws.recv() == b"\x00\xff" * 10
            big = bytes(range(256)) * 4096  # 1 MiB
            await ws.send(big)
            assert await ws.recv() == big
            text = "x" * (1 << 20)
            await ws.send(text)
            assert await ws.recv() == text
            return ws.response.headers.get("sec-websocket-extensions")

    extensions = run(scenario())
    assert extensions == ("permessage-deflate" if compression else None)


def test_fragmented_messages_are_reassembled(start_server):
    srv = start_server(APP)
    ws = RawWebSocket(srv.port, "/echo")
    try:
        assert ws.status == 101
        ws.send(0x1, b"frag", fin=False)
        ws.send(0x9, b"interleaved ping")  # control frames may come between fragments
        ws.send(0x0, "mented ✓".encode()[:4], fin=False)
        ws.send(0x0, "mented ✓".encode()[4:], fin=True)
        assert ws.recv() == (0xA, b"interleaved ping")
        assert ws.recv() == (0x1, "fragmented ✓".encode())
    finally:
        ws.close()


def test_scope_subprotocol_and_extra_headers(start_server):
    srv = start_server(APP, "--root-path", "/api")

    async def scenario():
        async with websockets.connect(ws_url(srv, "/scope?x=1"), subprotocols=["chat", "superchat"]) as ws:
            described = json.loads(await ws.recv())
            return described, ws.subprotocol, ws.response.headers.get("x-extra")

    described, subprotocol, extra = run(scenario())
    assert subprotocol == "superchat" and extra == "yes"
    assert described["type"] == "websocket"
    assert described["scheme"] == "ws"
    assert described["http_version"] == "1.1"
    assert described["path"] == "/api/scope" and described["root_path"] == "/api"
    assert described["query_string"] == "x=1"
    assert described["subprotocols"] == ["chat", "superchat"]
    assert described["headers"]["sec-websocket-protocol"] == "chat, superchat"
    assert described["client"][0] == "127.0.0.1"
    assert described["spec_version"] == "2.4"
    assert "websocket.http.response" in described["extensions"]


def test_close_codes_both_ways(start_server):
    srv = start_server(APP)

    async def scenario():
        # The app closes with a code and reason; its `send` afterwards raises an OSError.
        async with websockets.connect(ws_url(srv, "/close?code=4001&reason=bye&id=server")) as ws:
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
            assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4001, "bye")
        # The client closes: the app sees its code and reason.
        async with websockets.connect(ws_url(srv, "/echo?id=client")) as ws:
            await ws.close(code=4002, reason="done here")
        async with websockets.connect(ws_url(srv, "/echo?id=nocode")) as ws:
            await ws.send("x")
            await ws.recv()
            await ws.close(code=1000)

    run(scenario())
    assert events(srv, "server", 2) == [
        {"after_close": "websocket.disconnect"},
        {"send_after_close": "ClientDisconnected", "is_oserror": True},
    ]
    assert events(srv, "client") == [{"code": 4002, "reason": "done here"}]
    assert events(srv, "nocode") == [{"code": 1000, "reason": ""}]


def test_dropped_connection_is_1006_and_empty_close_is_1005(start_server):
    srv = start_server(APP)
    ws = RawWebSocket(srv.port, "/echo?id=dropped")
    ws.close()
    ws = RawWebSocket(srv.port, "/echo?id=empty")
    ws.send(0x8, b"")
    assert ws.recv() == (0x8, b"")  # the server echoes a close without a code
    assert ws.recv() == (-1, b"")
    assert events(srv, "dropped") == [{"code": 1006, "reason": ""}]
    assert events(srv, "empty") == [{"code": 1005, "reason": ""}]


def test_close_before_accept_is_403_and_denial_response_is_the_apps(start_server):
    srv = start_server(APP)

    async def scenario():
        with pytest.raises(InvalidStatus) as rejected:
            async with websockets.connect(ws_url(srv, "/reject?id=rejected")):
                pass
        with pytest.raises(InvalidStatus) as denied:
            async with websockets.connect(ws_url(srv, "/deny")):
                pass
        return rejected.value.response, denied.value.response

    rejected, denied = run(scenario())
    assert rejected.status_code == 403
    assert denied.status_code == 418
    assert denied.headers["x-denied"] == "yes"
    assert bytes(denied.body) == b"no tea"
    assert events(srv, "rejected") == [{"after_reject": "websocket.disconnect", "code": 1006}]
    srv.wait_for_line(r'"WebSocket /reject\?id=rejected" 403')
    srv.wait_for_line(r'"WebSocket /deny" 418')


def test_app_errors_are_500_before_accept_and_1011_after(start_server):
    srv = start_server(APP)

    async def scenario():
        statuses = []
        for path in ("/error-before", "/no-handshake", "/send-before-accept?id=early"):
            with pytest.raises(InvalidStatus) as failed:
                async with websockets.connect(ws_url(srv, path)):
                    pass
            statuses.append(failed.value.response.status_code)
        async with websockets.connect(ws_url(srv, "/error-after")) as ws:
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
        return statuses, closed.value.rcvd.code

    statuses, code = run(scenario())
    assert statuses == [500, 500, 403]
    assert code == 1011
    assert "Expected ASGI message 'websocket.accept'" in events(srv, "early")[0]["error"]
    srv.wait_for_line("ASGI callable returned without sending handshake.")
    srv.wait_for_line("RuntimeError: boom after accept")
    # The server is still fine.
    assert httpx.get(f"{srv.url}/plain").text == "plain HTTP: /plain"


def test_message_over_max_size_closes_with_1009(start_server):
    srv = start_server(APP, "--ws-max-size", "1000")

    async def scenario():
        async with websockets.connect(ws_url(srv, "/echo?id=big"), compression=None) as ws:
            await ws.send("a" * 1000)
            assert await ws.recv() == "a" * 1000
            await ws.send("a" * 1001)
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
            return closed.value.rcvd.code

    assert run(scenario()) == 1009
    assert events(srv, "big")[0]["code"] == 1009


def test_compressed_message_inflating_past_max_size_closes_with_1009(start_server):
    srv = start_server(APP, "--ws-max-size", "100000")

    async def scenario():
        async with websockets.connect(ws_url(srv, "/echo"), compression="deflate") as ws:
            await ws.send(b"\0" * 200_000)  # compresses to a few hundred bytes
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
            return closed.value.rcvd.code

    assert run(scenario()) == 1009


def test_unanswered_ping_closes_with_1011(start_server):
    srv = start_server(APP, "--ws-ping-interval", "0.2", "--ws-ping-timeout", "0.3")
    ws = RawWebSocket(srv.port, "/idle?id=ping")
    try:
        opcode, _ = ws.recv()
        assert opcode == 0x9  # a ping, which this client ignores
        opcode, payload = ws.recv()
        assert opcode == 0x8 and close_code(payload) == 1011
    finally:
        ws.close()
    assert events(srv, "ping")[0]["code"] == 1011


def test_answered_pings_keep_the_connection(start_server):
    srv = start_server(APP, "--ws-ping-interval", "0.1", "--ws-ping-timeout", "0.2")

    async def scenario():
        async with websockets.connect(ws_url(srv, "/echo")) as ws:  # answers pings itself
            await asyncio.sleep(1.0)
            await ws.send("still here")
            return await ws.recv()

    assert run(scenario()) == "still here"


def test_shutdown_closes_websockets_with_1012(start_server):
    srv = start_server(APP)
    ws = RawWebSocket(srv.port, "/idle")
    try:
        assert ws.status == 101
        srv.signal(signal.SIGTERM)
        opcode, payload = ws.recv()
        assert opcode == 0x8 and close_code(payload) == 1012
        ws.send(0x8, payload[:2])
    finally:
        ws.close()
    assert srv.wait_exit() == 0


def test_shutdown_with_graceful_timeout_lets_the_app_close_first(start_server):
    srv = start_server(APP, "--timeout-graceful-shutdown", "1")
    ws = RawWebSocket(srv.port, "/idle")
    try:
        srv.signal(signal.SIGTERM)
        started = time.monotonic()
        opcode, payload = ws.recv()
        assert opcode == 0x8 and close_code(payload) == 1012
        assert time.monotonic() - started >= 0.8, "closed before the graceful timeout"
    finally:
        ws.close()
    assert srv.wait_exit() == 0


def test_backpressure_keeps_every_message_of_a_flood(start_server):
    srv = start_server(APP)

    async def scenario():
        async with websockets.connect(ws_url(srv, "/flood?count=64&size=65536"), max_size=None) as ws:
            received = []
            async for message in ws:
                received.append(message)
                await asyncio.sleep(0.005)  # a slow reader
            return received

    received = run(scenario())
    assert len(received) == 64
    assert all(m == bytes([i]) * 65536 for i, m in enumerate(received))


def test_a_slow_app_stops_the_server_reading(start_server):
    srv = start_server(APP, "--ws-max-queue", "2")
    sock = RawWebSocket(srv.port, "/slow?delay=0.3&id=slow")
    try:
        sock.sock.setblocking(False)
        frame = client_frame(0x2, b"x" * 65536)
        sent, started = 0, time.monotonic()
        # With the app reading one message per 0.3 s and the server queueing at most 2, the socket
        # buffers fill and sending stalls long before 2000 messages (128 MiB) are out.
        while sent < 2000 and time.monotonic() - started < 3:
            try:
                sock.sock.send(frame)
                sent += 1
            except BlockingIOError:
                time.sleep(0.01)
        assert sent < 2000
        assert sent < 400, f"{sent} messages of 64 KiB were accepted: the server did not push back"
    finally:
        sock.close()


def test_invalid_upgrades_get_400_and_426(start_server):
    srv = start_server(APP)
    base = {"upgrade": "websocket", "connection": "upgrade", "sec-websocket-version": "13"}
    missing_key = httpx.get(f"{srv.url}/echo", headers=base)
    assert missing_key.status_code == 400
    assert "Sec-WebSocket-Key" in missing_key.text
    old = httpx.get(
        f"{srv.url}/echo",
        headers={**base, "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==", "sec-websocket-version": "8"},
    )
    assert old.status_code == 426 and old.headers["sec-websocket-version"] == "13"
    post = httpx.post(f"{srv.url}/echo", headers={**base, "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ=="})
    assert post.status_code == 400
    # A frame with reserved bits set is a protocol error: close 1002, server stays up.
    ws = RawWebSocket(srv.port, "/echo")
    ws.sock.sendall(bytes([0x81 | 0x20]) + client_frame(0x1, b"x")[1:])
    opcode, payload = ws.recv()
    assert opcode == 0x8 and close_code(payload) == 1002
    ws.close()
    assert httpx.get(f"{srv.url}/plain").status_code == 200


def test_ws_none_passes_upgrade_requests_to_the_app_as_http(start_server):
    srv = start_server(APP, "--ws", "none")
    headers = {
        "upgrade": "websocket",
        "connection": "upgrade",
        "sec-websocket-version": "13",
        "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
    }
    response = httpx.get(f"{srv.url}/echo", headers=headers)
    assert response.status_code == 200 and response.text == "plain HTTP: /echo"


@pytest.mark.parametrize("http", ["h1", "httptools"])
def test_websockets_with_http1_only(start_server, http):
    srv = start_server(APP, "--http", http)

    async def scenario():
        async with websockets.connect(ws_url(srv, "/echo")) as ws:
            await ws.send("over h1")
            return await ws.recv()

    assert run(scenario()) == "over h1"


def test_access_log_lines_like_uvicorn(start_server):
    srv = start_server(APP)

    async def scenario():
        async with websockets.connect(ws_url(srv, "/echo?q=1")) as ws:
            await ws.send("x")
            await ws.recv()

    run(scenario())
    srv.wait_for_line(r'INFO: +127\.0\.0\.1:\d+ - "WebSocket /echo\?q=1" \[accepted\]')
    srv.wait_for_line(r"INFO: +connection open")
    srv.wait_for_line(r"INFO: +connection closed")


class H2WebSocket:
    """RFC 8441: a WebSocket on an HTTP/2 stream opened with extended CONNECT, via the h2 library."""

    def __init__(
        self, port: int, path: str, sock: socket.socket | None = None, authority: str = "127.0.0.1"
    ) -> None:
        self.sock = sock or rawhttp.connect(port)
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.conn.initiate_connection()
        self.sock.sendall(self.conn.data_to_send())
        self.settings: dict = {}
        self.data = b""
        while h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL not in self.settings:
            self._pump()
        self.stream = self.conn.get_next_available_stream_id()
        self.conn.send_headers(
            self.stream,
            [
                (":method", "CONNECT"),
                (":protocol", "websocket"),
                (":scheme", "http"),
                (":path", path),
                (":authority", authority),
                ("sec-websocket-version", "13"),
            ],
        )
        self.sock.sendall(self.conn.data_to_send())
        self.status = None
        while self.status is None:
            self._pump()

    def _pump(self) -> bool:
        chunk = self.sock.recv(65536)
        if not chunk:
            return False
        for event in self.conn.receive_data(chunk):
            if isinstance(event, h2.events.RemoteSettingsChanged):
                self.settings.update({k: v.new_value for k, v in event.changed_settings.items()})
            elif isinstance(event, h2.events.ResponseReceived):
                self.status = int(dict(event.headers)[b":status"])
            elif isinstance(event, h2.events.DataReceived):
                self.data += event.data
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        self.sock.sendall(self.conn.data_to_send())
        return True

    def send(self, opcode: int, payload: bytes) -> None:
        self.conn.send_data(self.stream, client_frame(opcode, payload))
        self.sock.sendall(self.conn.data_to_send())

    def recv(self) -> tuple[int, bytes]:
        while (frame := parse_server_frame(self.data)) is None:
            if not self._pump():
                return -1, b""
        opcode, payload, self.data = frame
        return opcode, payload


def test_rfc8441_websocket_over_h2c(start_server):
    srv = start_server(APP)
    ws = H2WebSocket(srv.port, "/scope?over=h2")
    assert ws.status == 200
    opcode, payload = ws.recv()
    described = json.loads(payload)
    assert described["http_version"] == "2" and described["scheme"] == "ws"
    ws.send(0x1, "over h2 ✓".encode())
    assert ws.recv() == (0x1, "over h2 ✓".encode())
    ws.send(0x8, (1000).to_bytes(2, "big"))
    assert ws.recv()[0] == 0x8
    ws.sock.close()


def test_rfc8441_websocket_over_tls_h2(start_server, tmp_path):
    from tests.test_tls import Certs

    certs = Certs(tmp_path)
    srv = start_server(APP, *certs.args())
    context = ssl.create_default_context(cafile=str(certs.ca_file))
    context.set_alpn_protocols(["h2"])
    sock = context.wrap_socket(socket.create_connection(("127.0.0.1", srv.port)), server_hostname="127.0.0.1")
    assert sock.selected_alpn_protocol() == "h2"
    ws = H2WebSocket(srv.port, "/scope", sock=sock)
    described = json.loads(ws.recv()[1])
    assert described["http_version"] == "2" and described["scheme"] == "wss"

    async def over_http11():
        async with websockets.connect(
            f"wss://127.0.0.1:{srv.port}/scope", ssl=verify_context(certs)
        ) as client:
            return json.loads(await client.recv())

    described = run(over_http11())
    assert described["http_version"] == "1.1" and described["scheme"] == "wss"


def verify_context(certs) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certs.ca_file))


def test_fastapi_websocket_endpoint(start_server):
    srv = start_server("tests.apps.browser_app:app")

    async def scenario():
        async with websockets.connect(ws_url(srv, "/ws")) as ws:
            first = await ws.recv()
            await ws.send("hi")
            return first, await ws.recv()

    assert run(scenario()) == ("http_version=1.1 scheme=ws", "echo: hi")


@needs_chromium
@pytest.mark.parametrize("tls", [True, False])
def test_chromium_websocket_over_h2_with_tls_and_http11_without(start_server, tmp_path, tls):
    from tests.test_tls import Certs

    args = Certs(tmp_path).args() if tls else []
    srv = start_server("tests.apps.browser_app:app", *args)
    with chromium_page() as page:
        page.goto(f"{srv.url}/ws-page")
        page.wait_for_selector("text=done", timeout=15000)
        status = page.inner_text("#status")
    expected = "http_version=2 scheme=wss" if tls else "http_version=1.1 scheme=ws"
    assert status == f"done {expected} | echo: ping from the browser"


def test_chat_example_broadcasts_to_everyone(start_server):
    srv = start_server("examples.chat:app")

    async def scenario():
        async with websockets.connect(ws_url(srv, "/ws")) as alice:
            assert (await alice.recv()).startswith("* someone joined (1 here)")
            async with websockets.connect(ws_url(srv, "/ws")) as bob:
                assert (await alice.recv()).startswith("* someone joined (2 here)")
                assert (await bob.recv()).startswith("* someone joined (2 here)")
                await bob.send("bob: hi")
                return await alice.recv(), await bob.recv()

    assert run(scenario()) == ("bob: hi", "bob: hi")
