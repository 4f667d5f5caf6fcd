"""Apps for the supervisor tests: report the worker's pid, sleep, block the loop, crash."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

if os.environ.get("FASTERAPI_TEST_CRASH_AT_IMPORT"):
    os._exit(1)


async def _text(send: Any, body: bytes) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/sleep":
        await asyncio.sleep(1.0)
        await _text(send, b"slept")
    elif path == "/block":
        time.sleep(30)  # blocks the event loop: the health check must notice
        await _text(send, b"unblocked")
    else:
        await _text(send, str(os.getpid()).encode())
