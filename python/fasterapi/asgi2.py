"""Adapter that serves ASGI 2 (double-callable) applications through the ASGI 3 interface."""

from __future__ import annotations

from typing import Any


class ASGI2Middleware:
    """Wrap `app(scope)` → `instance(receive, send)` as `app(scope, receive, send)`."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        instance = self.app(scope)
        await instance(receive, send)
