"""An app that hooks signals with `loop.add_signal_handler` in its lifespan, as apps under uvicorn
do (to reload their configuration on SIGHUP, say), and reports what its handlers saw."""

from __future__ import annotations

import asyncio
import contextvars
import json
import signal
import threading
from typing import Any

#: (tag, loop thread, context variable) for each SIGUSR1 a handler saw, across all loops.
RECEIVED: list[tuple[str, str, str]] = []
ADDED_IN = contextvars.ContextVar("added_in", default="no context")


def on_usr1(tag: str) -> None:
    RECEIVED.append((tag, threading.current_thread().name, ADDED_IN.get()))


def on_term() -> None:
    print(f"app: SIGTERM handler ran on {threading.current_thread().name}", flush=True)


async def coroutine_handler() -> None:
    pass


def refusals(loop: asyncio.AbstractEventLoop) -> list[str]:
    """The error each bad call raises, as asyncio raises them."""
    calls = [
        lambda: loop.add_signal_handler(signal.SIGKILL, on_term),
        lambda: loop.add_signal_handler(0, on_term),
        lambda: loop.add_signal_handler(signal.SIGUSR2, coroutine_handler),
        lambda: loop.remove_signal_handler(1000),
    ]
    names = []
    for call in calls:
        try:
            call()
            names.append("no error")
        except Exception as exc:  # noqa: BLE001 - reported to the test
            names.append(type(exc).__name__)
    return names


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    loop = asyncio.get_running_loop()
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                ADDED_IN.set("lifespan")
                loop.add_signal_handler(signal.SIGUSR1, on_usr1, "usr1")
                loop.add_signal_handler(signal.SIGTERM, on_term)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["path"] == "/received":
        body: object = RECEIVED
    elif scope["path"] == "/remove":
        body = [loop.remove_signal_handler(signal.SIGUSR1), loop.remove_signal_handler(signal.SIGUSR1)]
    elif scope["path"] == "/refusals":
        body = refusals(loop)
    else:
        body = threading.current_thread().name
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": json.dumps(body).encode()})
