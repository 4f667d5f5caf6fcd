"""A FastAPI app whose endpoint is a plain `def`: FastAPI runs it in anyio's worker threads."""

from __future__ import annotations

import threading

from fastapi import FastAPI

app = FastAPI()


@app.get("/thread")
def thread() -> dict[str, int]:
    return {"thread": threading.get_native_id(), "threads": threading.active_count()}
