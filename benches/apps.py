"""The raw ASGI app every server runs in the benchmarks (the framework apps are in
`framework_apps.py`): the same code for each, so only the server differs.

`raw` is routed by path: `/` hello, `/echo` request body back, `/stream` 1 MiB in 64 KiB chunks,
`/sleep` 10 ms of simulated I/O; a WebSocket on any path echoes every message.
"""

import asyncio
from typing import Any

HELLO = b"Hello, world!"
CHUNK = b"x" * 65536
PLAIN = [(b"content-type", b"text/plain")]
JSON_ITEM = b'{"name": "widget", "price": 9.5, "tags": ["a", "b"]}'


async def echo_websocket(receive: Any, send: Any) -> None:
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})


async def raw(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "websocket":
        await echo_websocket(receive, send)
        return
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/echo":
        body = bytearray()
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        await send({"type": "http.response.start", "status": 200, "headers": PLAIN})
        await send({"type": "http.response.body", "body": bytes(body)})
    elif path == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": PLAIN})
        for _ in range(15):
            await send({"type": "http.response.body", "body": CHUNK, "more_body": True})
        await send({"type": "http.response.body", "body": CHUNK})
    else:
        if path == "/sleep":
            await asyncio.sleep(0.01)
        await send({"type": "http.response.start", "status": 200, "headers": PLAIN})
        await send({"type": "http.response.body", "body": HELLO})
