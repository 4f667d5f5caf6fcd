"""An app for `--loops N`: reports which loop thread serves it and the loop its lifespan ran on."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

STARTUPS: list[str] = []


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                STARTUPS.append(threading.current_thread().name)
                # A loop-bound resource, as a connection pool would be.
                scope["state"]["lock"] = asyncio.Lock()
                scope["state"]["loop_thread"] = threading.current_thread().name
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    path = scope["path"]
    if path == "/block":
        time.sleep(float(dict(scope["headers"]).get(b"x-seconds", b"2")))  # a handler that hogs its loop
    async with scope["state"]["lock"]:  # fails if the lock belongs to another loop
        body = f"{threading.current_thread().name} {scope['state']['loop_thread']} {len(STARTUPS)}"
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body.encode()})
