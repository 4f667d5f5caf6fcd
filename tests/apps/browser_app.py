"""A FastAPI page for the browser tests: `/` is HTML whose script calls `/api/info`, which reports
the HTTP version the server saw."""

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse

app = FastAPI()

PAGE = """<!doctype html>
<html><head><title>fasterapi browser test</title></head>
<body><p id="status">loading</p>
<script>
fetch("/api/info").then(r => r.json()).then(info => {
  document.getElementById("status").textContent = "http_version=" + info.http_version;
});
</script></body></html>
"""


@app.get("/", response_class=HTMLResponse)
async def page() -> str:
    return PAGE


@app.get("/api/info")
async def info(request: Request) -> dict[str, str]:
    return {"http_version": request.scope["http_version"], "scheme": request.url.scheme}
