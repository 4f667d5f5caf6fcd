"""Apps for `--loop` and `--reset-contextvars`: each request reports its event loop's class and the
context variables it sees, then sets one of its own, as a leaky middleware would.

- `app`: answers `{"loop": "<module>.<class>", "context": {name: value}}`, to a WebSocket as one
  text message.
- `new_loop`: a loop factory for `--loop tests.apps.context_apps:new_loop`.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
from typing import Any

IMPORTED = contextvars.ContextVar("imported")
IMPORTED.set("at import")
LIFESPAN = contextvars.ContextVar("lifespan")
REQUEST = contextvars.ContextVar("request")


class MarkedLoop(asyncio.SelectorEventLoop):
    """The loop `new_loop` makes, known by its class."""


def new_loop() -> asyncio.AbstractEventLoop:
    return MarkedLoop()


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                LIFESPAN.set("in lifespan")
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    loop = type(asyncio.get_running_loop())
    seen = {var.name: value for var, value in contextvars.copy_context().items()}
    REQUEST.set("set by an earlier request")
    body = json.dumps({"loop": f"{loop.__module__}.{loop.__qualname__}", "context": seen})
    if scope["type"] == "websocket":  # the same answer as one text message
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": body})
        await send({"type": "websocket.close"})
        return
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body.encode()})
