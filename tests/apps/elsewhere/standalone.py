"""Importable only through `--app-dir tests/apps/elsewhere`."""


async def app(scope, receive, send):
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"from app-dir"})
