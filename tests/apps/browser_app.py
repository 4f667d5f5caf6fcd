"""A FastAPI page for the browser tests: `/` is HTML whose script calls `/api/info`, which reports
the HTTP version the server saw; `/ws-page` opens a WebSocket to `/ws`, which reports the HTTP
version that carried it and echoes a message."""

from fastapi import FastAPI, Request, WebSocket
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

WS_PAGE = """<!doctype html>
<html><head><title>fasterapi WebSocket test</title></head>
<body><p id="status">connecting</p>
<script>
const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
const seen = [];
ws.onopen = () => ws.send("ping from the browser");
ws.onmessage = (event) => {
  seen.push(event.data);
  if (seen.length === 2) {
    document.getElementById("status").textContent = "done " + seen.join(" | ");
    ws.close(1000);
  }
};
ws.onerror = () => { document.getElementById("status").textContent = "error"; };
</script></body></html>
"""


@app.get("/", response_class=HTMLResponse)
async def page() -> str:
    return PAGE


@app.get("/ws-page", response_class=HTMLResponse)
async def ws_page() -> str:
    return WS_PAGE


@app.get("/api/info")
async def info(request: Request) -> dict[str, str]:
    return {"http_version": request.scope["http_version"], "scheme": request.url.scheme}


@app.websocket("/ws")
async def ws(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text(f"http_version={websocket.scope['http_version']} scheme={websocket.url.scheme}")
    await websocket.send_text("echo: " + await websocket.receive_text())
    await websocket.receive()  # the browser's close
