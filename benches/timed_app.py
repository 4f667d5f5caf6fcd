"""The benchmark app named by $TIMED_APP (`module:attr`), timed for `split.py`: the CPU time the
loop thread spends inside each HTTP call (CLOCK_THREAD_CPUTIME_ID), added up and written as JSON
to $TIMED_OUT when the server exits.

A thread's CPU clock only measures a call that never waits: while a call waits, the thread runs
other calls. The benchmark's FastAPI and Starlette routes never wait; calls that overlap are
counted (`overlapped`) so that `split.py` can refuse to report them.
"""

from __future__ import annotations

import atexit
import importlib
import json
import os
import threading
import time
from typing import Any

_module, _, _attr = os.environ["TIMED_APP"].partition(":")
_inner = getattr(importlib.import_module(_module), _attr)
_clock = time.thread_time_ns
_totals = {"calls": 0, "app_ns": 0, "overlapped": 0, "thread": 0}
_running = 0


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    global _running
    if scope["type"] != "http":
        return await _inner(scope, receive, send)
    if _running:
        _totals["overlapped"] += 1
    _running += 1
    start = _clock()
    try:
        await _inner(scope, receive, send)
    finally:
        _totals["app_ns"] += _clock() - start
        _running -= 1
        _totals["calls"] += 1
        _totals["thread"] = threading.get_native_id()


def clock_pair_ns(samples: int = 20_000) -> float:
    """What the two clock reads around each call cost together, in nanoseconds."""
    start = _clock()
    for _ in range(samples):
        _clock()
        _clock()
    return (_clock() - start) / samples


@atexit.register
def _write() -> None:
    with open(os.environ["TIMED_OUT"], "w") as out:
        json.dump({**_totals, "clock_pair_ns": clock_pair_ns()}, out)
