"""The in-process ceiling: the FastAPI benchmark app called directly in a loop, with no server.

Prints {"fastapi-get": {"alone": req/s, "tasks": req/s}, ...} for fastapi-get, fastapi-def and
fastapi-post (or only the scenario given with `--scenario`). `alone` awaits each call in turn: the
app's own cost, which no server can pass for a route that never waits (GET and POST; the `def`
route waits for a worker thread, and calls that overlap do better). `tasks` runs each call as its
own asyncio task, `BATCH` started at a time and then run: the least an asyncio server adds, since
`asyncio.current_task()`, anyio's cancel scopes and per-request context variables rely on a task
per request. Run pinned to one core, on uvloop, like the servers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Awaitable, Callable
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


#: Requests a round calls: in tasks, as many as fasterapi starts at once from a batch of requests
#: (its app loop's slice) before it lets them run.
BATCH = 32


async def rates(app: Any, make_scope: Any, body: bytes, seconds: float) -> dict[str, float]:
    """Requests per second alone and in tasks, `seconds` each. The two kinds of round alternate, so
    that this VM's drift in speed, which a run of seconds can see, weighs on both alike."""

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        pass

    async def alone() -> None:
        for _ in range(BATCH):
            await app(make_scope(), receive, send)

    async def tasks() -> None:
        loop = asyncio.get_running_loop()
        started = [asyncio.Task(app(make_scope(), receive, send), loop=loop) for _ in range(BATCH)]
        for task in started:
            await task

    rounds: dict[str, Callable[[], Awaitable[None]]] = {"alone": alone, "tasks": tasks}
    spent = dict.fromkeys(rounds, 0.0)
    for one_round in rounds.values():  # warm-up
        for _ in range(200 // BATCH):
            await one_round()
    done = 0
    while sum(spent.values()) < 2 * seconds:
        for mode, one_round in rounds.items():
            started = time.perf_counter()
            await one_round()
            spent[mode] += time.perf_counter() - started
        done += BATCH
    return {mode: done / elapsed for mode, elapsed in spent.items()}


JSON_HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(JSON_ITEM)).encode())]
#: Each scenario's request: its scope and body.
REQUESTS = {
    "fastapi-get": (lambda: scope("GET", "/items/42", b"q=x", []), b""),
    "fastapi-def": (lambda: scope("GET", "/sync/42", b"q=x", []), b""),
    "fastapi-post": (lambda: scope("POST", "/items", b"", JSON_HEADERS), JSON_ITEM),
}


async def main(seconds: float, scenarios: list[str]) -> dict[str, dict[str, float]]:
    return {key: await rates(fastapi_app, *REQUESTS[key], seconds) for key in scenarios}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5, help="for each figure: alone, in tasks")
    parser.add_argument("--scenario", choices=sorted(REQUESTS), help="measure only this one")
    args = parser.parse_args()
    print(json.dumps(uvloop.run(main(args.seconds, [args.scenario] if args.scenario else list(REQUESTS)))))
