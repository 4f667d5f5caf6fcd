"""The supervisor's listening sockets, bound once and handed to worker processes.

For TCP each worker slot gets its own `SO_REUSEPORT` socket on the same port, so the kernel spreads
new connections evenly over the workers; with one shared socket, whichever worker wakes first may
accept a whole burst (measured with `benches/socket_sharing.py`, see docs/deployment.md). A slot's
socket outlives its worker: while a replacement starts, connections wait in that socket's queue
instead of being refused. A Unix socket or an inherited `--fd` is a single socket that every worker
shares.
"""

from __future__ import annotations

import os
import socket
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fasterapi.config import Config


def _bind_error(exc: OSError, host: str, port: int) -> OSError:
    return OSError(
        exc.errno,
        f"[Errno {exc.errno}] error while attempting to bind on address "
        f"('{host}', {port}): {(exc.strerror or '').lower()}",
    )


def _tcp_socket(host: str, port: int, backlog: int, reuse_port: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        raise _bind_error(exc, host, port) from None
    sock.set_inheritable(True)
    return sock


def _port_is_free(host: str, port: int) -> None:
    """Raise uvicorn's bind error if something already listens on the port. Without this check a
    second server using SO_REUSEPORT on the same port would silently share its traffic."""
    probe = _tcp_socket(host, port, 1, reuse_port=False)
    probe.close()


class Listeners:
    """Listening sockets for the workers: `take` one for a new worker, `prune` the ones no worker
    needs any more (after SIGTTOU)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.per_worker = config.uds is None and config.fd is None and hasattr(socket, "SO_REUSEPORT")
        self.sockets = [self._bind_first()]

    def _bind_first(self) -> socket.socket:
        config = self.config
        if config.fd is not None:
            sock = socket.socket(fileno=config.fd)
        elif config.uds is not None:
            if os.path.exists(config.uds):
                os.remove(config.uds)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.bind(config.uds)
            os.chmod(config.uds, 0o666)
        else:
            if config.port:
                _port_is_free(config.host, config.port)
            return _tcp_socket(config.host, config.port, config.backlog, reuse_port=self.per_worker)
        sock.listen(config.backlog)
        sock.set_inheritable(True)
        return sock

    @property
    def primary(self) -> socket.socket:
        return self.sockets[0]

    def take(self, in_use: list[socket.socket]) -> socket.socket:
        """A socket for a new worker: one that no worker uses, else a new one on the same port."""
        if not self.per_worker:
            return self.primary
        for sock in self.sockets:
            if all(sock is not used for used in in_use):
                return sock
        host, port = self.primary.getsockname()[:2]
        sock = _tcp_socket(host, port, self.config.backlog, reuse_port=True)
        self.sockets.append(sock)
        return sock

    def prune(self, in_use: list[socket.socket], keep: int) -> None:
        """Close sockets no worker uses while more than `keep` are open. Connections still queued
        on a closed socket are reset by the kernel unless `net.ipv4.tcp_migrate_req` is 1."""
        for sock in list(self.sockets[1:]):
            if len(self.sockets) <= keep:
                return
            if all(sock is not used for used in in_use):
                self.sockets.remove(sock)
                sock.close()

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()
        self.sockets.clear()
