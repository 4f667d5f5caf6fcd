"""A Starlette app serving one file with FileResponse, wrapped in a middleware that records which
message types the app sent, so tests can tell pathsend from an ordinary body."""

import os
from typing import Any

from starlette.applications import Starlette
from starlette.responses import FileResponse, JSONResponse
from starlette.routing import Route

SENT: list[str] = []


async def file(request: Any) -> FileResponse:
    return FileResponse(os.environ["FASTERAPI_TEST_FILE"])


async def sent(request: Any) -> JSONResponse:
    return JSONResponse(SENT)


starlette_app = Starlette(routes=[Route("/file", file), Route("/sent", sent)])


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    async def recording_send(message: dict[str, Any]) -> None:
        if scope.get("path") == "/file":
            SENT.append(message["type"])
        await send(message)

    await starlette_app(scope, receive, recording_send)
