"""Small raw-socket HTTP/1.1 helpers for tests that need byte-level control."""

from __future__ import annotations

import socket
import weakref

#: Bytes read past the end of a response, kept for the next `read_response` on that socket: a
#: server may send pipelined responses in one segment.
_leftover: weakref.WeakKeyDictionary[socket.socket, bytes] = weakref.WeakKeyDictionary()


def get_with_big_header(size: int) -> bytes:
    """A `GET /` whose head carries one `X-Big` header of `size` bytes, for head size limits."""
    return b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * size + b"\r\n\r\n"


def connect(port: int, timeout: float = 5.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    return sock


def read_until_close(sock: socket.socket, timeout: float = 5.0) -> bytes:
    """Everything the server sends until it closes the connection (or `timeout` of silence)."""
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except TimeoutError:
        pass
    return data


def read_response(sock: socket.socket, timeout: float = 5.0) -> tuple[bytes, dict[bytes, bytes], bytes]:
    """Read one response with a content-length or chunked body: (status line, headers, body)."""
    sock.settimeout(timeout)
    buf = _leftover.pop(sock, b"")
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before the head was complete: {buf!r}")
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    status, *lines = head.split(b"\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    if status.split(b" ")[1] in (b"100",):
        return status, headers, rest
    if b"content-length" in headers:
        need = int(headers[b"content-length"])
        while len(rest) < need:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
        _leftover[sock] = rest[need:]
        return status, headers, rest[:need]
    if headers.get(b"transfer-encoding") == b"chunked":
        body = b""
        while True:
            while b"\r\n" not in rest:
                rest += sock.recv(65536)
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line, 16)
            while len(rest) < size + 2:
                rest += sock.recv(65536)
            body += rest[:size]
            rest = rest[size + 2 :]
            if size == 0:
                _leftover[sock] = rest
                return status, headers, body
    return status, headers, rest
