"""Raw ASGI apps for the core protocol tests; `app` routes by path.

Apps record what they observed in `EVENTS` (keyed by the request's `x-id` header) so that tests
can read it back through `/events/<id>` after the fact.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import os
import time
from typing import Any

EVENTS: dict[str, Any] = {}
SLEEPING = 0  # requests currently inside /sleep
#: Set by /task-context in each request; a request must never see another's value.
REQUEST_VAR: contextvars.ContextVar[str] = contextvars.ContextVar("request_var", default="unset")


def _id(scope: dict[str, Any]) -> str:
    return dict(scope["headers"]).get(b"x-id", b"-").decode()


async def _text(send: Any, body: bytes, status: int = 200, headers: list | None = None) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain"), *(headers or [])],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"bytes": value.decode("latin-1")}
    if isinstance(value, (list, tuple)):
        return {type(value).__name__: [_jsonable(v) for v in value]}
    if isinstance(value, dict):
        return {"dict": {k: _jsonable(v) for k, v in value.items()}}
    return value


async def read_body(receive: Any) -> tuple[bytes, int]:
    body, events = b"", 0
    while True:
        message = await receive()
        assert message["type"] == "http.request", message
        body += message.get("body", b"")
        events += 1
        if not message.get("more_body", False):
            return body, events


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                scope["state"]["started"] = True
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    path = scope["path"]
    rid = _id(scope)

    if path.startswith("/scope"):
        await _text(send, json.dumps(_jsonable(scope)).encode())
    elif path == "/mutate-state":
        scope["state"]["mutated"] = True
        await _text(send, b"mutated")
    elif path == "/mutate-scope":
        scope["asgi"]["version"] = "mutated"
        scope["extensions"]["mutated"] = {}
        await _text(send, b"mutated")
    elif path.startswith("/events/"):
        await _text(send, json.dumps(EVENTS.get(path.removeprefix("/events/"))).encode())
    elif path == "/echo":
        body, events = await read_body(receive)
        await _text(send, body, headers=[(b"x-events", str(events).encode())])
    elif path == "/echo-paced":
        # Reads the body 20 ms at a time: what arrives in between reaches the app as one event.
        sizes = []
        while True:
            message = await receive()
            sizes.append(len(message.get("body", b"")))
            if not message.get("more_body", False):
                break
            await asyncio.sleep(0.02)
        await _text(send, json.dumps(sizes).encode())
    elif path == "/echo-stream":
        # Echo each request chunk as a response chunk, without content-length.
        await send({"type": "http.response.start", "status": 200, "headers": []})
        while True:
            message = await receive()
            await send({"type": "http.response.body", "body": message.get("body", b""), "more_body": True})
            if not message.get("more_body"):
                break
        await send({"type": "http.response.body", "body": b""})
    elif path == "/slow-reader":
        # Reads one body event, then stalls: the server must stop reading the socket.
        await receive()
        await asyncio.sleep(1.0)
        await _text(send, b"stalled")
    elif path == "/firehose":
        # Sends 1 MiB chunks as fast as `send` allows, counting how many were accepted.
        EVENTS[rid] = {"sent": 0}
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            for _ in range(200):
                await send({"type": "http.response.body", "body": b"z" * (1 << 20), "more_body": True})
                EVENTS[rid]["sent"] += 1
            await send({"type": "http.response.body", "body": b""})
        except OSError:
            EVENTS[rid]["disconnected"] = True
    elif path == "/ignore-body":
        await _text(send, b"did not read")
    elif path == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for i in range(5):
            await send({"type": "http.response.body", "body": b"chunk%d\n" % i, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/sized":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"10")]})
        await send({"type": "http.response.body", "body": b"01234", "more_body": True})
        await send({"type": "http.response.body", "body": b"56789"})
    elif path.startswith("/status/"):
        await _text(send, b"should not be sent", status=int(path.removeprefix("/status/")))
    elif path == "/slow-stream":
        # 40 chunks, 25 ms apart; records whether it completed or what send raised.
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            for _ in range(40):
                await send({"type": "http.response.body", "body": b"x" * 100, "more_body": True})
                await asyncio.sleep(0.025)
            await send({"type": "http.response.body", "body": b""})
            EVENTS[rid] = {"outcome": "completed"}
        except OSError as exc:
            EVENTS[rid] = {"outcome": "send raised", "class": type(exc).__name__, "oserror": True}
    elif path == "/wait-disconnect":
        # Read the body, then wait for the next event: the client leaving.
        await read_body(receive)
        message = await receive()
        EVENTS[rid] = {"event": message["type"]}
    elif path == "/after-response":
        await read_body(receive)
        await _text(send, b"done")
        message = await receive()
        EVENTS[rid] = {"event": message["type"]}
    elif path == "/sleep":
        global SLEEPING
        SLEEPING += 1
        try:
            await asyncio.sleep(float(dict(scope["headers"]).get(b"x-sleep", b"0.1")))
        finally:
            SLEEPING -= 1
        await _text(send, b"slept")
    elif path == "/sched":
        # Scheduling policies: this loop thread, a thread the app starts, every thread of the process.
        policies = {
            "loop": os.sched_getscheduler(0),
            "app_thread": await asyncio.to_thread(os.sched_getscheduler, 0),
            "process": sorted(os.sched_getscheduler(int(tid)) for tid in os.listdir("/proc/self/task")),
        }
        await _text(send, json.dumps(policies).encode())
    elif path == "/sleeping":
        await _text(send, str(SLEEPING).encode())
    elif path == "/task":
        task = asyncio.current_task()
        await _text(send, f"{type(task).__name__} {task.get_name()}".encode())
    elif path == "/task-context":
        # The task and the context before and after the request's first wait.
        task = asyncio.current_task()
        seen = REQUEST_VAR.get()
        REQUEST_VAR.set(rid)
        await asyncio.sleep(0.01)
        same = asyncio.current_task() is task
        await _text(send, f"{seen} {REQUEST_VAR.get()} {same} {task.get_name()}".encode())
    elif path == "/block-loop":
        time.sleep(float(dict(scope["headers"]).get(b"x-sleep", b"0.5")))  # blocks the loop thread
        await _text(send, b"unblocked")
    elif path == "/tasks-alive":
        # How many tasks exist when this one runs: the requests started before it and not
        # finished yet.
        await _text(send, str(len(asyncio.all_tasks())).encode())
    elif path == "/error-before-start":
        raise RuntimeError("boom before start")
    elif path == "/error-after-start":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise RuntimeError("boom after start")
    elif path == "/no-response":
        return
    elif path == "/bad-order":
        try:
            await send({"type": "http.response.body", "body": b"too early"})
        except RuntimeError as exc:
            EVENTS[rid] = {"error": str(exc)}
            raise
    elif path == "/start-twice":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            await send({"type": "http.response.start", "status": 200, "headers": []})
        except RuntimeError as exc:
            EVENTS[rid] = {"error": str(exc)}
        await send({"type": "http.response.body", "body": b"ok"})
    elif path == "/pathsend":
        # Send the file named by the x-path header; the server must announce the extension.
        assert "http.response.pathsend" in scope["extensions"]
        headers = dict(scope["headers"])
        start_headers = [(b"content-type", b"application/octet-stream")]
        if b"x-length" in headers:
            start_headers.append((b"content-length", headers[b"x-length"]))
        await send({"type": "http.response.start", "status": 200, "headers": start_headers})
        try:
            await send({"type": "http.response.pathsend", "path": headers[b"x-path"].decode()})
        except OSError as exc:
            EVENTS[rid] = {"error": type(exc).__name__}
            await send({"type": "http.response.body", "body": b""})
    elif path == "/bad-header":
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"x-ok", b"fine\r\nx-injected: yes")],
                }
            )
        except ValueError as exc:
            EVENTS[rid] = {"error": str(exc)}
            raise
    else:
        await _text(send, b"Hello, world!")


class ASGI2App:
    """A double-callable (ASGI 2) app."""

    def __init__(self, scope: dict[str, Any]) -> None:
        self.scope = scope

    async def __call__(self, receive: Any, send: Any) -> None:
        await _text(send, b"asgi2 " + self.scope["path"].encode())
