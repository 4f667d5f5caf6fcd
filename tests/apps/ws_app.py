"""Raw ASGI WebSocket apps for the WebSocket tests; `app` routes by path.

What an app observes after its client is gone (disconnect codes, exceptions from `send`) is kept in
`EVENTS` under the `id` query parameter and read back over HTTP at `/events/<id>`.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import parse_qs

EVENTS: dict[str, list[Any]] = {}


def _query(scope: dict[str, Any]) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}


def _record(scope: dict[str, Any], event: Any) -> None:
    EVENTS.setdefault(_query(scope).get("id", "-"), []).append(event)


async def _http(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["path"].startswith("/events/"):
        body = json.dumps(EVENTS.get(scope["path"].removeprefix("/events/"), [])).encode()
    else:
        body = b"plain HTTP: " + scope["path"].encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})


async def _accept(receive: Any, send: Any, **extra: Any) -> None:
    message = await receive()
    assert message["type"] == "websocket.connect", message
    await send({"type": "websocket.accept", **extra})


async def _echo_until_disconnect(scope: dict[str, Any], receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            _record(scope, {"code": message["code"], "reason": message.get("reason", "")})
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})


async def websocket(scope: dict[str, Any], receive: Any, send: Any) -> None:
    path, query = scope["path"].removeprefix(scope["root_path"]), _query(scope)
    if path == "/echo":
        await _accept(receive, send)
        await _echo_until_disconnect(scope, receive, send)
    elif path == "/scope":
        offered = scope["subprotocols"]
        await _accept(
            receive,
            send,
            subprotocol=offered[-1] if offered else None,
            headers=[(b"x-extra", b"yes")],
        )
        described = {
            key: scope[key] for key in ("type", "scheme", "http_version", "path", "root_path", "subprotocols")
        }
        described["raw_path"] = scope["raw_path"].decode()
        described["query_string"] = scope["query_string"].decode()
        described["headers"] = {k.decode(): v.decode() for k, v in scope["headers"]}
        described["client"] = list(scope["client"]) if scope["client"] else None
        described["extensions"] = sorted(scope.get("extensions", {}))
        described["spec_version"] = scope["asgi"].get("spec_version")
        await send({"type": "websocket.send", "text": json.dumps(described)})
        await _echo_until_disconnect(scope, receive, send)
    elif path == "/close":
        await _accept(receive, send)
        await send(
            {
                "type": "websocket.close",
                "code": int(query.get("code", 1000)),
                "reason": query.get("reason", ""),
            }
        )
        message = await receive()
        _record(scope, {"after_close": message["type"]})
        try:
            await send({"type": "websocket.send", "text": "too late"})
        except OSError as exc:
            _record(scope, {"send_after_close": type(exc).__name__, "is_oserror": True})
    elif path == "/reject":
        await receive()
        await send({"type": "websocket.close"})
        message = await receive()
        _record(scope, {"after_reject": message["type"], "code": message.get("code")})
    elif path == "/deny":
        await receive()
        await send(
            {
                "type": "websocket.http.response.start",
                "status": 418,
                "headers": [(b"content-type", b"text/plain"), (b"x-denied", b"yes")],
            }
        )
        await send({"type": "websocket.http.response.body", "body": b"no ", "more_body": True})
        await send({"type": "websocket.http.response.body", "body": b"tea"})
    elif path == "/error-before":
        await receive()
        raise RuntimeError("boom before accept")
    elif path == "/error-after":
        await _accept(receive, send)
        raise RuntimeError("boom after accept")
    elif path == "/no-handshake":
        await receive()
    elif path == "/send-before-accept":
        await receive()
        try:
            await send({"type": "websocket.send", "text": "premature"})
        except RuntimeError as exc:
            _record(scope, {"error": str(exc)})
            await send({"type": "websocket.close"})
    elif path == "/flood":
        # Many large messages as fast as `send` allows: backpressure must hold them, not drop them.
        await _accept(receive, send)
        count, size = int(query.get("count", 64)), int(query.get("size", 65536))
        for i in range(count):
            await send({"type": "websocket.send", "bytes": bytes([i % 256]) * size})
        await send({"type": "websocket.close", "code": 1000})
    elif path == "/idle":
        # Accepts, then only waits for the disconnect (shutdown and ping-timeout tests).
        await _accept(receive, send)
        message = await receive()
        _record(scope, {"code": message["code"], "reason": message.get("reason", "")})
    elif path == "/slow":
        # Reads one message per `delay`: the server must stop reading the socket, not buffer it all.
        await _accept(receive, send)
        delay = float(query.get("delay", 0.2))
        received = 0
        while True:
            await asyncio.sleep(delay)
            message = await receive()
            if message["type"] == "websocket.disconnect":
                _record(scope, {"received": received, "code": message["code"]})
                return
            received += 1
            await send({"type": "websocket.send", "text": str(received)})
    else:
        await receive()
        await send({"type": "websocket.close", "code": 4404})


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    elif scope["type"] == "http":
        await _http(scope, receive, send)
    else:
        await websocket(scope, receive, send)
