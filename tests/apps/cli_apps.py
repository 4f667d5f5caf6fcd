"""Apps for command-line tests: a factory, a non-callable attribute, a scope reporter."""

from __future__ import annotations

import json
from typing import Any

not_callable = {"this": "is a dict"}


class nested:  # noqa: N801 - mirrors a dotted attribute path
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:  # noqa: N805
        await _json(send, {"nested": True})


async def _json(send: Any, data: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": json.dumps(data).encode()})


async def paths(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await _json(
        send,
        {"root_path": scope["root_path"], "path": scope["path"], "raw_path": scope["raw_path"].decode()},
    )


def create_app() -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await _json(send, {"factory": True})

    return app


async def environ_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    import os

    if scope["type"] == "http":
        await _json(send, {key: os.environ.get(key) for key in ("GREETING", "OTHER")})
