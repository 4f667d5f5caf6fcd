"""The framework apps every server runs in the benchmarks, the same code for each.

- `starlette_app`: `/plaintext`, `/json`, `/file` (a 1 MiB FileResponse).
- `fastapi_app`: `GET /items/{id}` returns a small dict; `GET /sync/{id}` the same from a plain
  `def` endpoint, which FastAPI runs in anyio's worker threads; `GET /io/{id}` the same after a
  10 ms wait; `POST /items` validates a pydantic body.
"""

import asyncio
import os
import tempfile
from pathlib import Path
from typing import Any


def _bench_file() -> str:
    path = Path(tempfile.gettempdir()) / f"fasterapi-bench-{os.getuid()}.bin"
    if not path.exists() or path.stat().st_size != 1 << 20:
        path.write_bytes(os.urandom(1 << 20))
    return str(path)


def _starlette() -> Any:
    from starlette.applications import Starlette
    from starlette.responses import FileResponse, JSONResponse, PlainTextResponse
    from starlette.routing import Route

    file_path = _bench_file()

    async def plaintext(request: Any) -> Any:
        return PlainTextResponse("Hello, world!")

    async def json(request: Any) -> Any:
        return JSONResponse({"message": "Hello, world!"})

    async def file(request: Any) -> Any:
        return FileResponse(file_path)

    return Starlette(routes=[Route("/plaintext", plaintext), Route("/json", json), Route("/file", file)])


def _fastapi() -> Any:
    from fastapi import FastAPI
    from pydantic import BaseModel

    class Item(BaseModel):
        name: str
        price: float
        tags: list[str] = []

    api = FastAPI()

    def item(item_id: int, q: str | None) -> dict[str, Any]:
        return {"item_id": item_id, "q": q, "name": "widget", "price": 9.5}

    @api.get("/items/{item_id}")
    async def read_item(item_id: int, q: str | None = None) -> dict[str, Any]:
        return item(item_id, q)

    @api.get("/sync/{item_id}")
    def read_item_sync(item_id: int, q: str | None = None) -> dict[str, Any]:  # run in anyio's threads
        return item(item_id, q)

    @api.get("/io/{item_id}")
    async def read_item_io(item_id: int, q: str | None = None) -> dict[str, Any]:
        await asyncio.sleep(0.01)  # a database query's wait
        return item(item_id, q)

    @api.post("/items")
    async def create_item(item: Item) -> dict[str, Any]:
        return {"name": item.name, "price": item.price, "tags": item.tags, "ok": True}

    return api


starlette_app = _starlette()
fastapi_app = _fastapi()
