"""Apps that exercise the lifespan protocol in its various outcomes."""

from __future__ import annotations

import asyncio
import gc
import json
from typing import Any


async def _respond(scope: dict[str, Any], send: Any) -> None:
    body = repr(sorted(scope.get("state", {}).items())).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


async def complete(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        assert (await receive())["type"] == "lifespan.startup"
        print("app: startup", flush=True)
        scope["state"]["db"] = "connected"
        await send({"type": "lifespan.startup.complete"})
        assert (await receive())["type"] == "lifespan.shutdown"
        print("app: shutdown", flush=True)
        await send({"type": "lifespan.shutdown.complete"})
        return
    await _respond(scope, send)


async def startup_failed(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "database unreachable"})
        return
    await _respond(scope, send)


async def shutdown_failed(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await send({"type": "lifespan.shutdown.failed", "message": "could not flush"})
        return
    await _respond(scope, send)


async def no_lifespan(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        raise RuntimeError(f"unsupported scope type {scope['type']}")
    await _respond(scope, send)


async def counts_lifespan(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        print("app: lifespan called", flush=True)
        await receive()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await send({"type": "lifespan.shutdown.complete"})
        return
    await _respond(scope, send)


#: Made by the lifespan startup of `gc_report`, so it is alive when the server freezes the heap.
STARTUP_OBJECTS: list[Any] = []


async def gc_report(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Lifespan startup makes objects; each request reports whether they are frozen and how many
    objects are frozen in all."""
    if scope["type"] == "lifespan":
        await receive()
        STARTUP_OBJECTS.extend([i] for i in range(1000))  # lists: always tracked by the GC
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await send({"type": "lifespan.shutdown.complete"})
        return
    tracked = {id(o) for o in gc.get_objects()}  # frozen objects are left out of this
    report = {
        "frozen": gc.get_freeze_count(),
        "startup_objects_tracked": sum(id(o) in tracked for o in STARTUP_OBJECTS),
    }
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": json.dumps(report).encode()})


#: What `leaves_work_behind` started and still holds, as an app's module-level state would.
_left_behind: list[Any] = []


async def _background_job() -> None:
    try:
        await asyncio.sleep(3600)
    finally:
        print(f"app: background task cleaned up on loop {id(asyncio.get_running_loop())}", flush=True)


async def _numbers() -> Any:
    try:
        while True:
            yield 1
    finally:
        print("app: async generator closed", flush=True)


async def leaves_work_behind(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Each request starts a background task and an async generator and leaves both running: at
    shutdown the server should end them as `asyncio.run` (so uvicorn) does, running their cleanup.
    Served with `--lifespan off`."""
    _left_behind.append(asyncio.get_running_loop().create_task(_background_job()))
    numbers = _numbers()
    await numbers.__anext__()
    _left_behind.append(numbers)
    await _respond(scope, send)


async def _stubborn_job() -> None:
    while True:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            print("app: stubborn task ignored its cancellation", flush=True)


async def leaves_a_stubborn_task(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Each request starts a background task that swallows every cancellation. Served with
    `--lifespan off`."""
    _left_behind.append(asyncio.get_running_loop().create_task(_stubborn_job(), name="stubborn"))
    await _respond(scope, send)


async def slow_startup(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A startup that takes a second, for a signal to arrive meanwhile."""
    if scope["type"] == "lifespan":
        assert (await receive())["type"] == "lifespan.startup"
        print("app: slow startup begins", flush=True)
        await asyncio.sleep(1)
        await send({"type": "lifespan.startup.complete"})
        assert (await receive())["type"] == "lifespan.shutdown"
        await send({"type": "lifespan.shutdown.complete"})
        return
    await _respond(scope, send)
