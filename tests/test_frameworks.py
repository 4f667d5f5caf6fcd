"""The FastAPI and Starlette examples, unmodified, over HTTP/1.1 and HTTP/2 prior knowledge."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import ServerProcess

STATIC_FILE = Path(__file__).resolve().parent.parent / "examples" / "static" / "hello.txt"


@pytest.fixture(scope="module", params=["fastapi_app", "starlette_app"])
def server(request):
    srv = ServerProcess([f"examples.{request.param}:app", "--port", "0"]).wait_ready()
    srv.flavour = request.param
    yield srv
    srv.stop()


@pytest.fixture(params=["http1", "http2"])
def client(request, server):
    http2 = request.param == "http2"
    with httpx.Client(base_url=server.url, http1=not http2, http2=http2, timeout=10) as c:
        yield c


def test_json_route(client):
    response = client.get("/")
    assert response.status_code == 200
    if "json" in response.headers["content-type"]:
        assert response.json() == {"message": "Hello, world!"}
    else:
        assert response.text == "Hello, world!"


def test_path_and_query_params(client):
    response = client.get("/items/42", params={"q": "café"})
    assert response.status_code == 200
    assert response.json()["item_id"] == 42
    assert response.json()["q"] == "café"


def test_post_json_body(client):
    response = client.post("/items", json={"name": "tea", "price": 10})
    assert response.status_code == 200
    assert response.json()["price_with_tax"] == 12.0


def test_invalid_body_is_422(client):
    response = client.post("/items", json={"name": "tea", "price": "free"})
    assert response.status_code == 422


def test_form_and_file_upload(client):
    payload = bytes(range(256)) * 400
    response = client.post(
        "/upload",
        data={"title": "bytes"},
        files={"file": ("data.bin", payload, "application/octet-stream")},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["title"] == "bytes"
    assert body["filename"] == "data.bin"
    assert body["size"] == len(payload)


def test_streaming_response(client):
    with client.stream("GET", "/stream") as response:
        chunks = b"".join(response.iter_bytes())
    assert chunks == b"".join(f"{i}\n".encode() for i in range(10))


def test_server_sent_events_arrive_incrementally(client):
    arrivals = []
    with client.stream("GET", "/events", params={"count": 3, "delay": 0.3}) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data:"):
                arrivals.append((time.monotonic(), line))
    assert [line for _, line in arrivals] == [f'data: {{"n": {i}}}' for i in range(3)]
    # The first event is seen well before the stream ends: events are not buffered to the end.
    assert arrivals[-1][0] - arrivals[0][0] >= 0.5


def test_file_response(client):
    response = client.get("/file")
    assert response.status_code == 200
    assert response.content == STATIC_FILE.read_bytes()
    assert int(response.headers["content-length"]) == STATIC_FILE.stat().st_size


def test_background_task_runs_after_response(client):
    name = f"task-{time.monotonic_ns()}"
    assert client.post(f"/background/{name}").json() == {"scheduled": name}
    deadline = time.monotonic() + 5
    while name not in client.get("/background").json()["done"]:
        assert time.monotonic() < deadline, "background task never ran"
        time.sleep(0.01)


def test_custom_exception_handler(client):
    response = client.get("/teapot")
    assert response.status_code == 418
    assert response.json() == {"detail": "I am a teapot", "path": "/teapot"}


def test_http_exception_and_not_found(client):
    assert client.get("/missing").json() == {"detail": "nothing here"}
    assert client.get("/missing").status_code == 404
    assert client.get("/no/such/route").status_code == 404


def test_lifespan_state(client):
    assert client.get("/state").json() == {"greeting": "hello", "started": True}


def test_http_version_in_scope(client, server):
    path = "/version" if server.flavour == "fastapi_app" else "/api/version"
    response = client.get(path)
    expected = "2" if response.http_version == "HTTP/2" else "1.1"
    assert response.json() == {"http_version": expected}


def test_curl_http2_prior_knowledge_and_http1(server):
    for flag, version in (("--http2-prior-knowledge", "2"), ("--http1.1", "1.1")):
        out = subprocess.run(
            ["curl", "-sS", flag, "-w", "\n%{http_version}", f"{server.url}/items/7?q=x"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
        body, got = out.rsplit("\n", 1)
        assert '"item_id":7' in body.replace(" ", "")
        assert got == version


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_sync_endpoints_reuse_worker_threads(start_server, loop):
    # anyio keeps its worker threads for the life of the loop's root task; with no root task to
    # find, it tied each new thread to the request's own task and ended it with the request.
    srv = start_server("tests.apps.threadpool_app:app", "--loop", loop)
    with httpx.Client(base_url=srv.url, timeout=10) as c:
        replies = [c.get("/thread").json() for _ in range(20)]
    assert len({r["thread"] for r in replies}) == 1, replies
    assert replies[-1]["threads"] == replies[0]["threads"]
