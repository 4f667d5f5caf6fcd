"""The in-process ceiling: the FastAPI benchmark app called directly in a loop, with no server.

Prints {"fastapi-get": req/s, "fastapi-post": req/s}. No server can pass these figures: they are
the app's own cost. Run pinned to one core, on uvloop, like the servers.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import uvloop
from apps import JSON_ITEM
from framework_apps import fastapi_app


def scope(method: str, path: str, query: bytes, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8000"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
        "extensions": {},
    }


async def rate(app: Any, make_scope: Any, body: bytes, seconds: float) -> float:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        pass

    for _ in range(200):  # warm-up
        await app(make_scope(), receive, send)
    done = 0
    started = time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        for _ in range(100):
            await app(make_scope(), receive, send)
        done += 100
    return done / (time.perf_counter() - started)


async def main(seconds: float) -> dict[str, float]:
    app = fastapi_app
    json_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(JSON_ITEM)).encode())]
    return {
        "fastapi-get": await rate(app, lambda: scope("GET", "/items/42", b"q=x", []), b"", seconds),
        "fastapi-post": await rate(
            app, lambda: scope("POST", "/items", b"", json_headers), JSON_ITEM, seconds
        ),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5)
    args = parser.parse_args()
    print(json.dumps(uvloop.run(main(args.seconds))))
