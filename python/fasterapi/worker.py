"""One worker process under the supervisor: serves on the socket it inherited, tells the
supervisor when it is ready, and answers health checks from its event loop."""

from __future__ import annotations

import asyncio
import socket
import sys
import threading
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fasterapi.config import Config

READY = "ready"
PING = "ping"
PONG = "pong"


def run_worker(config: Config, listener: socket.socket, channel: Connection) -> None:
    """Process entry point (multiprocessing spawn target). Exits with the server's status."""
    from fasterapi.server import Server

    config.fd = listener.detach()  # the core owns the descriptor from here on
    config.uds = None
    server = Server(config)
    server.announce = False
    server.on_ready = lambda: channel.send(READY)
    server.on_loops = lambda loops: threading.Thread(
        target=_answer_pings, args=(channel, loops), name="fasterapi-health", daemon=True
    ).start()
    sys.exit(server.run())


def _answer_pings(channel: Connection, loops: list[asyncio.AbstractEventLoop]) -> None:
    """Reply to each ping once every event loop has run a callback: a blocked loop does not answer."""
    while True:
        try:
            message = channel.recv()
        except (EOFError, OSError):
            return
        if message != PING:
            continue
        alive = [threading.Event() for _ in loops]
        try:
            for loop, event in zip(loops, alive, strict=True):
                loop.call_soon_threadsafe(event.set)
        except RuntimeError:  # a loop is closed: we are exiting
            return
        if all(event.wait(timeout=60) for event in alive):
            try:
                channel.send(PONG)
            except OSError:
                return
