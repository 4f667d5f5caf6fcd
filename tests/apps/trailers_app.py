"""`http.response.trailers`: when the server offers the extension (the client sent `TE: trailers`),
send a body in two parts and then two trailer fields in two messages; otherwise a plain body."""

from __future__ import annotations

from typing import Any


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    if "http.response.trailers" not in scope.get("extensions", {}):
        plain = [(b"content-type", b"text/plain")]
        await send({"type": "http.response.start", "status": 200, "headers": plain})
        await send({"type": "http.response.body", "body": b"no trailers"})
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            # HTTP/1.1 sends only the trailer fields declared up front (RFC 9110 section 6.6.2).
            "headers": [(b"content-type", b"text/plain"), (b"trailer", b"x-checksum, x-count")],
            "trailers": True,
        }
    )
    await send({"type": "http.response.body", "body": b"part one, ", "more_body": True})
    await send({"type": "http.response.body", "body": b"part two"})
    checksum = [(b"x-checksum", b"abc123")]
    await send({"type": "http.response.trailers", "headers": checksum, "more_trailers": True})
    await send({"type": "http.response.trailers", "headers": [(b"x-count", b"2")]})
