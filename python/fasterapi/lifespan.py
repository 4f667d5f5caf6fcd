"""The ASGI lifespan protocol (spec 2.0): startup and shutdown events run on the app loop.

`Lifespan` mirrors uvicorn's behaviour for `--lifespan auto|on|off`, including its log lines.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

logger = logging.getLogger("fasterapi.error")


class Lifespan:
    """Drive one app's lifespan; `state` is the dict shared (shallow-copied) into every scope."""

    def __init__(self, app: Any, mode: str) -> None:
        self.app = app
        self.mode = mode
        self.state: dict[str, Any] = {}
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._startup_done = asyncio.Event()
        self._shutdown_done = asyncio.Event()
        self._startup_failed = False
        self._shutdown_failed = False
        self._error = False
        self._task: asyncio.Task[None] | None = None

    async def startup(self) -> bool:
        """Run the startup phase; False means the server must exit (status 3)."""
        if self.mode == "off":
            return True
        logger.info("Waiting for application startup.")
        self._task = asyncio.get_running_loop().create_task(self._main())
        await self._queue.put({"type": "lifespan.startup"})
        await self._startup_done.wait()
        if self._startup_failed or (self._error and self.mode == "on"):
            logger.error("Application startup failed. Exiting.")
            return False
        logger.info("Application startup complete.")
        return True

    async def shutdown(self) -> bool:
        """Run the shutdown phase; False if the app reported a failure."""
        if self.mode == "off" or self._error:
            return True
        logger.info("Waiting for application shutdown.")
        await self._queue.put({"type": "lifespan.shutdown"})
        await self._shutdown_done.wait()
        if self._shutdown_failed or (self._error and self.mode == "on"):
            logger.error("Application shutdown failed. Exiting.")
            return False
        logger.info("Application shutdown complete.")
        return True

    async def _main(self) -> None:
        scope = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": "2.0"},
            "state": self.state,
        }
        try:
            await self.app(scope, self._receive, self._send)
        except BaseException as exc:  # noqa: BLE001 - reported, never propagated
            self._error = True
            if self._startup_failed or self._shutdown_failed:
                return
            if self.mode == "auto":
                logger.info("ASGI 'lifespan' protocol appears unsupported.")
            else:
                logger.error("Exception in 'lifespan' protocol\n", exc_info=exc)
        finally:
            self._startup_done.set()
            self._shutdown_done.set()

    async def _receive(self) -> dict[str, Any]:
        return await self._queue.get()

    async def _send(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "lifespan.startup.complete":
            self._expect(not self._startup_done.is_set(), kind)
            self._startup_done.set()
        elif kind == "lifespan.startup.failed":
            self._expect(not self._startup_done.is_set(), kind)
            self._startup_failed = True
            self._startup_done.set()
            if message.get("message"):
                logger.error(message["message"])
        elif kind == "lifespan.shutdown.complete":
            self._expect(self._startup_done.is_set() and not self._shutdown_done.is_set(), kind)
            self._shutdown_done.set()
        elif kind == "lifespan.shutdown.failed":
            self._expect(self._startup_done.is_set() and not self._shutdown_done.is_set(), kind)
            self._shutdown_failed = True
            self._shutdown_done.set()
            if message.get("message"):
                logger.error(message["message"])
        else:
            raise RuntimeError(f"Unexpected ASGI lifespan message type {kind!r}.")

    @staticmethod
    def _expect(ok: bool, kind: str) -> None:
        if not ok:
            raise RuntimeError(f"Unexpected ASGI lifespan message {kind!r} at this point.")
