"""Runs the app for one HTTP request and turns what it does wrong into server behaviour.

The Rust side creates the scope and the cycle and starts this coroutine as a task; the cycle
decides the response (500, cut stream) and this module does the logging.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fasterapi._fasterapi import ClientDisconnected

logger = logging.getLogger("fasterapi.error")


async def run_http(app: Any, scope: dict[str, Any], cycle: Any) -> None:
    """Await `app(scope, receive, send)`; report an exception or a missing response once."""
    try:
        await app(scope, cycle.receive, cycle.send)
    except (asyncio.CancelledError, ClientDisconnected):
        # Cancelled at shutdown, or the client left and `send` said so: nothing to report.
        cycle.app_failed()
    except BaseException as exc:  # noqa: BLE001 - an app error must never reach the loop
        cycle.app_failed()
        logger.error("Exception in ASGI application\n", exc_info=exc)
    else:
        problem = cycle.app_returned()
        if problem:
            logger.error(problem)
