"""Raw WebSocket frames over a plain socket, for tests that must misbehave on purpose (never answer
a ping, send invalid frames) or speak RFC 8441 over an h2 stream."""

from __future__ import annotations

import base64
import os
import struct

from tests import rawhttp


def client_frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    """A masked client frame."""
    mask = os.urandom(4)
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def parse_server_frame(data: bytes) -> tuple[int, bytes, bytes] | None:
    """(opcode, payload, rest) for the first complete unmasked server frame in `data`, or None."""
    if len(data) < 2:
        return None
    opcode, n, offset = data[0] & 0x0F, data[1] & 0x7F, 2
    if n == 126:
        if len(data) < 4:
            return None
        n, offset = struct.unpack("!H", data[2:4])[0], 4
    elif n == 127:
        if len(data) < 10:
            return None
        n, offset = struct.unpack("!Q", data[2:10])[0], 10
    if len(data) < offset + n:
        return None
    return opcode, data[offset : offset + n], data[offset + n :]


class RawWebSocket:
    """An HTTP/1.1 WebSocket client that does only what the test tells it to."""

    def __init__(self, port: int, path: str) -> None:
        self.sock = rawhttp.connect(port)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self.sock.recv(65536)
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        self.status = int(head.split(b" ")[1])

    def send(self, opcode: int, payload: bytes, fin: bool = True) -> None:
        self.sock.sendall(client_frame(opcode, payload, fin))

    def recv(self, timeout: float = 5.0) -> tuple[int, bytes]:
        """The next frame; (-1, b"") when the server closed the connection."""
        self.sock.settimeout(timeout)
        while (frame := parse_server_frame(self.buffer)) is None:
            chunk = self.sock.recv(65536)
            if not chunk:
                return -1, b""
            self.buffer += chunk
        opcode, payload, self.buffer = frame
        return opcode, payload

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def close_code(payload: bytes) -> int:
    return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
