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
    server.on_loop = lambda loop: threading.Thread(
        target=_answer_pings, args=(channel, loop), name="fasterapi-health", daemon=True
    ).start()
    sys.exit(server.run())


def _answer_pings(channel: Connection, loop: asyncio.AbstractEventLoop) -> None:
    """Reply to each ping once the event loop has run a callback: a blocked loop does not answer."""
    while True:
        try:
            message = channel.recv()
        except (EOFError, OSError):
            return
        if message != PING:
            continue
        alive = threading.Event()
        try:
            loop.call_soon_threadsafe(alive.set)
        except RuntimeError:  # the loop is closed: we are exiting
            return
        if alive.wait(timeout=60):
            try:
                channel.send(PONG)
            except OSError:
                return
