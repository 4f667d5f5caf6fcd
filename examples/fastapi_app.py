"""A FastAPI app using the features people rely on: `fasterapi examples.fastapi_app:app`.

JSON routes, path and query parameters, a pydantic body, form and file upload, streaming,
Server-Sent Events, a file download, background tasks, exception handlers and lifespan state.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import BackgroundTasks, FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from pydantic import BaseModel

STATIC = Path(__file__).parent / "static"
DONE_TASKS: list[str] = []


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    app.state.greeting = "hello"
    yield {"started": True}


app = FastAPI(lifespan=lifespan)


class Item(BaseModel):
    name: str
    price: float
    tags: list[str] = []


class TeapotError(Exception):
    pass


@app.exception_handler(TeapotError)
async def teapot_handler(request: Request, exc: TeapotError) -> JSONResponse:
    return JSONResponse({"detail": "I am a teapot", "path": request.url.path}, status_code=418)


@app.get("/")
async def root() -> dict[str, str]:
    return {"message": "Hello, world!"}


@app.get("/items/{item_id}")
async def read_item(item_id: int, q: str | None = None, limit: int = 10) -> dict[str, Any]:
    return {"item_id": item_id, "q": q, "limit": limit}


@app.post("/items")
async def create_item(item: Item) -> dict[str, Any]:
    return {"name": item.name, "price_with_tax": round(item.price * 1.2, 2), "tags": item.tags}


@app.post("/upload")
async def upload(title: Annotated[str, Form()], file: Annotated[UploadFile, File()]) -> dict[str, Any]:
    content = await file.read()
    return {"title": title, "filename": file.filename, "size": len(content), "head": content[:16].hex()}


@app.get("/stream")
async def stream() -> StreamingResponse:
    async def numbers() -> AsyncIterator[bytes]:
        for i in range(10):
            yield f"{i}\n".encode()
            await asyncio.sleep(0)

    return StreamingResponse(numbers(), media_type="text/plain")


@app.get("/events")
async def events(count: int = 3, delay: float = 0.05) -> StreamingResponse:
    async def sse() -> AsyncIterator[str]:
        for i in range(count):
            yield f'id: {i}\nevent: tick\ndata: {{"n": {i}}}\n\n'
            await asyncio.sleep(delay)

    return StreamingResponse(sse(), media_type="text/event-stream")


@app.get("/file")
async def file() -> FileResponse:
    return FileResponse(STATIC / "hello.txt", media_type="text/plain")


@app.post("/background/{name}")
async def background(name: str, tasks: BackgroundTasks) -> dict[str, str]:
    async def record() -> None:
        await asyncio.sleep(0.01)
        DONE_TASKS.append(name)

    tasks.add_task(record)
    return {"scheduled": name}


@app.get("/background")
async def background_done() -> dict[str, list[str]]:
    return {"done": DONE_TASKS}


@app.get("/teapot")
async def teapot() -> None:
    raise TeapotError()


@app.get("/missing")
async def missing() -> None:
    raise HTTPException(status_code=404, detail="nothing here")


@app.get("/state")
async def state(request: Request) -> dict[str, Any]:
    return {"greeting": request.app.state.greeting, "started": request.state.started}


@app.get("/version")
async def version(request: Request) -> dict[str, str]:
    return {"http_version": request.scope["http_version"]}
