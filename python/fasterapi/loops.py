"""The event loops apps run on (`--loop`): uvloop's or asyncio's, with an `add_signal_handler`
that works on the loop's own thread; or, as under uvicorn, zuvloop's, the asyncio policy's
(`none`) or one a "module:attribute" factory makes, each as it comes.

The app loops run on threads of their own, and Python catches signals for the main thread only
(`signal.set_wakeup_fd`, which asyncio's and uvloop's `add_signal_handler` rely on, raises
ValueError anywhere else). Under uvicorn the app's loop is the main thread's, so an app that reloads
its configuration on SIGHUP, say, expects the call to work; here the core catches the signal instead
(`_fasterapi.LoopSignals`) and the loop runs the callback as asyncio would.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import importlib.util
import inspect
import signal
from collections.abc import Callable
from typing import Any

from fasterapi import _fasterapi
from fasterapi.importer import ImportFromStringError, import_from_string


class RelayedSignals:
    """Event-loop mixin: `add_signal_handler` and `remove_signal_handler` through the core's
    `LoopSignals`. As in asyncio, each callback runs on the loop (`call_soon`) in the context
    current when it was added, a later handler for a signal replaces the earlier one, and removing
    the last puts back the signal's earlier disposition. Unlike uvicorn, where the app's SIGINT or
    SIGTERM handler replaces the server's, the server still shuts down on those after the
    callback runs."""

    _loop_signals: Any = None
    _relayed: dict[int, tuple[Callable[..., object], tuple[Any, ...], contextvars.Context]]

    def add_signal_handler(self, sig: int, callback: Callable[..., object], *args: Any) -> None:
        if asyncio.iscoroutine(callback) or inspect.iscoroutinefunction(callback):
            raise TypeError("coroutines cannot be used with add_signal_handler()")
        _check_signal(sig)
        if self.is_closed():  # type: ignore[attr-defined]
            raise RuntimeError("Event loop is closed")
        if self._loop_signals is None:
            self._loop_signals = _fasterapi.LoopSignals()
            self._relayed = {}
            self.add_reader(self._loop_signals.fileno(), self._run_signal_handlers)  # type: ignore[attr-defined]
        self._loop_signals.watch(sig)
        self._relayed[sig] = (callback, args, contextvars.copy_context())

    def remove_signal_handler(self, sig: int) -> bool:
        _check_signal(sig)
        if self._loop_signals is None or self._relayed.pop(sig, None) is None:
            return False
        return bool(self._loop_signals.unwatch(sig))

    def close(self) -> None:
        super().close()  # type: ignore[misc]
        if self._loop_signals is not None:
            self._loop_signals.close()
            self._relayed.clear()

    def _run_signal_handlers(self) -> None:
        for sig in self._loop_signals.take():
            handler = self._relayed.get(sig)
            if handler is not None:
                callback, args, context = handler
                self.call_soon(callback, *args, context=context)  # type: ignore[attr-defined]


def _check_signal(sig: object) -> None:
    """asyncio's checks: an int, and one this platform has."""
    if not isinstance(sig, int):
        raise TypeError(f"sig must be an int, not {sig!r}")
    if sig not in signal.valid_signals():
        raise ValueError(f"invalid signal number {sig}")


class AsyncioLoop(RelayedSignals, asyncio.SelectorEventLoop):
    """asyncio's own event loop, its signal handlers working off the main thread."""


def loop_factory(loop: str) -> Callable[[], asyncio.AbstractEventLoop]:
    """What makes the app loops for `--loop` (one of `LOOP_CHOICES` or "module:attribute"): uvloop's
    loop (`auto` when uvloop is installed) or asyncio's, both relaying signals; the others as
    they are, so their `add_signal_handler` works off the main thread only if they make it.
    Raises ImportFromStringError for a factory that cannot be imported."""
    if loop == "uvloop" or loop == "auto" and importlib.util.find_spec("uvloop") is not None:
        return _uvloop_class()
    if loop in ("auto", "asyncio"):
        return AsyncioLoop
    if loop == "none":
        return asyncio.new_event_loop
    if loop == "zuvloop":
        import zuvloop  # type: ignore[import-not-found]

        return zuvloop.new_event_loop  # type: ignore[no-any-return]
    factory = import_from_string(loop)
    if not callable(factory):
        raise ImportFromStringError(f'Loop factory "{loop}" is not callable.')
    return factory  # type: ignore[no-any-return]


@functools.cache
def _uvloop_class() -> type[asyncio.AbstractEventLoop]:
    import uvloop

    class UvLoop(RelayedSignals, uvloop.Loop):  # type: ignore[misc]
        """uvloop's event loop, its signal handlers working off the main thread."""

    return UvLoop
