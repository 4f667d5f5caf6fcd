"""An app that installs its own SIGTERM handler with `signal.signal` when imported, as apps that
flush or clean up on termination do; under uvicorn it runs once the server has shut down."""

from __future__ import annotations

import os
import signal
from typing import Any


def on_term(sig: int, frame: object) -> None:
    print(f"app: import-time handler ran for {signal.Signals(sig).name}", flush=True)
    if code := os.environ.get("APP_EXIT_CODE"):
        raise SystemExit(int(code))


signal.signal(signal.SIGTERM, on_term)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})
