"""The same features as `examples/fastapi_app.py`, written with plain Starlette:
`fasterapi examples.starlette_app:app`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Mount, Route

STATIC = Path(__file__).parent / "static"
DONE_TASKS: list[str] = []


class TeapotError(Exception):
    pass


async def root(request: Request) -> PlainTextResponse:
    return PlainTextResponse("Hello, world!")


async def read_item(request: Request) -> JSONResponse:
    item_id = int(request.path_params["item_id"])
    return JSONResponse({"item_id": item_id, "q": request.query_params.get("q")})


async def create_item(request: Request) -> JSONResponse:
    data = await request.json()
    if not isinstance(data.get("price"), (int, float)):
        return JSONResponse({"detail": "price must be a number"}, status_code=422)
    return JSONResponse({"name": data["name"], "price_with_tax": round(data["price"] * 1.2, 2)})


async def upload(request: Request) -> JSONResponse:
    async with request.form() as form:
        upload_file = form["file"]
        content = await upload_file.read()
        return JSONResponse({"title": form["title"], "filename": upload_file.filename, "size": len(content)})


async def stream(request: Request) -> StreamingResponse:
    async def numbers() -> AsyncIterator[bytes]:
        for i in range(10):
            yield f"{i}\n".encode()
            await asyncio.sleep(0)

    return StreamingResponse(numbers(), media_type="text/plain")


async def events(request: Request) -> StreamingResponse:
    count = int(request.query_params.get("count", "3"))
    delay = float(request.query_params.get("delay", "0.05"))

    async def sse() -> AsyncIterator[str]:
        for i in range(count):
            yield f'id: {i}\nevent: tick\ndata: {{"n": {i}}}\n\n'
            await asyncio.sleep(delay)

    return StreamingResponse(sse(), media_type="text/event-stream")


async def file(request: Request) -> FileResponse:
    return FileResponse(STATIC / "hello.txt", media_type="text/plain")


async def background(request: Request) -> JSONResponse:
    name = request.path_params["name"]

    async def record() -> None:
        await asyncio.sleep(0.01)
        DONE_TASKS.append(name)

    return JSONResponse({"scheduled": name}, background=BackgroundTask(record))


async def background_done(request: Request) -> JSONResponse:
    return JSONResponse({"done": DONE_TASKS})


async def teapot(request: Request) -> None:
    raise TeapotError()


async def missing(request: Request) -> None:
    raise HTTPException(status_code=404, detail="nothing here")


async def state(request: Request) -> JSONResponse:
    return JSONResponse({"greeting": request.app.state.greeting, "started": request.state.started})


async def version(request: Request) -> JSONResponse:
    return JSONResponse({"http_version": request.scope["http_version"]})


async def teapot_handler(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": "I am a teapot", "path": request.url.path}, status_code=418)


async def http_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
    app.state.greeting = "hello"
    yield {"started": True}


app = Starlette(
    routes=[
        Route("/", root),
        Route("/items/{item_id:int}", read_item),
        Route("/items", create_item, methods=["POST"]),
        Route("/upload", upload, methods=["POST"]),
        Route("/stream", stream),
        Route("/events", events),
        Route("/file", file),
        Route("/background/{name}", background, methods=["POST"]),
        Route("/background", background_done),
        Route("/teapot", teapot),
        Route("/missing", missing),
        Route("/state", state),
        Mount("/api", routes=[Route("/version", version)]),
    ],
    exception_handlers={TeapotError: teapot_handler, HTTPException: http_error_handler},
    lifespan=lifespan,
)
