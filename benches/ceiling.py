"""The in-process ceiling: the FastAPI benchmark app called directly in a loop, with no server.

Prints {"fastapi-get": req/s, "fastapi-def": req/s, "fastapi-post": req/s} (or only the scenario
given with `--scenario`). No server can pass these figures: they are the app's own cost. Run
pinned to one core, on uvloop, like the servers.
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


JSON_HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(JSON_ITEM)).encode())]
#: Each scenario's request: its scope and body.
REQUESTS = {
    "fastapi-get": (lambda: scope("GET", "/items/42", b"q=x", []), b""),
    "fastapi-def": (lambda: scope("GET", "/sync/42", b"q=x", []), b""),
    "fastapi-post": (lambda: scope("POST", "/items", b"", JSON_HEADERS), JSON_ITEM),
}


async def main(seconds: float, scenarios: list[str]) -> dict[str, float]:
    return {key: await rate(fastapi_app, *REQUESTS[key], seconds) for key in scenarios}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--scenario", choices=sorted(REQUESTS), help="measure only this one")
    args = parser.parse_args()
    print(json.dumps(uvloop.run(main(args.seconds, [args.scenario] if args.scenario else list(REQUESTS)))))
