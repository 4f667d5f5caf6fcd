"""An app whose lifespan startup installs a task factory; each request says whether its own task
came from that factory, and whether it sees a context variable set at import."""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

IMPORTED = contextvars.ContextVar("imported")
IMPORTED.set("imported")


class FactoryTask(asyncio.Task):
    """The task type the factory makes."""


def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task:
    return FactoryTask(coro, loop=loop, **kwargs)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                asyncio.get_running_loop().set_task_factory(factory)
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = f"{type(asyncio.current_task()).__name__} {IMPORTED.get('-')}".encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})
