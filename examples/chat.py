"""A FastAPI WebSocket chat room: open http://127.0.0.1:8000/ in two browser windows.

    fasterapi examples.chat:app

Every message a browser sends is broadcast to everyone in the room. Over https (`--ssl-certfile`,
`--ssl-keyfile`) the page and its WebSocket share one HTTP/2 connection (RFC 8441).
"""

from __future__ import annotations

import asyncio

from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from fastapi.responses import HTMLResponse

app = FastAPI(title="fasterapi chat")

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>fasterapi chat</title>
<style>
body { font: 16px system-ui, sans-serif; max-width: 40em; margin: 2em auto; }
#log { border: 1px solid #ccc; height: 20em; overflow-y: auto; padding: .5em; }
#log p { margin: .2em 0; }
</style></head>
<body>
<h1>fasterapi chat</h1>
<div id="log"></div>
<form id="form"><input id="name" placeholder="name" size="10">
<input id="text" placeholder="message" size="40" autofocus> <button>send</button></form>
<script>
const log = document.getElementById("log");
const show = (line) => {
  const p = document.createElement("p");
  p.textContent = line;
  log.appendChild(p);
  log.scrollTop = log.scrollHeight;
};
const scheme = location.protocol === "https:" ? "wss://" : "ws://";
const ws = new WebSocket(scheme + location.host + "/ws");
ws.onopen = () => show("* connected");
ws.onmessage = (event) => show(event.data);
ws.onclose = (event) => show("* disconnected (" + event.code + ")");
document.getElementById("form").onsubmit = (event) => {
  event.preventDefault();
  const name = document.getElementById("name").value || "anonymous";
  const text = document.getElementById("text");
  if (text.value) ws.send(name + ": " + text.value);
  text.value = "";
};
</script></body></html>
"""


class Room:
    """The connected sockets; a message from one goes to all."""

    def __init__(self) -> None:
        self.members: set[WebSocket] = set()

    async def broadcast(self, message: str) -> None:
        members = list(self.members)
        results = await asyncio.gather(*(m.send_text(message) for m in members), return_exceptions=True)
        for member, result in zip(members, results, strict=True):
            if isinstance(result, Exception):
                self.members.discard(member)


room = Room()


@app.get("/", response_class=HTMLResponse)
async def page() -> str:
    return PAGE


@app.websocket("/ws")
async def chat(websocket: WebSocket) -> None:
    await websocket.accept()
    room.members.add(websocket)
    await room.broadcast(f"* someone joined ({len(room.members)} here)")
    try:
        while True:
            await room.broadcast(await websocket.receive_text())
    except WebSocketDisconnect:
        room.members.discard(websocket)
        await room.broadcast(f"* someone left ({len(room.members)} here)")
