"""The HTTP scope, key by key, over HTTP/1.1, HTTP/1.0 and HTTP/2; ASGI 2 apps."""

from __future__ import annotations

import json

import httpx
import pytest

from tests import rawhttp


@pytest.fixture(scope="module")
def server():
    from tests.conftest import ServerProcess

    srv = ServerProcess(["tests.apps.core_app:app", "--port", "0"]).wait_ready()
    yield srv
    srv.stop()


def decode(value):
    """Undo tests.apps.core_app._jsonable."""
    if isinstance(value, dict):
        ((kind, inner),) = value.items()
        if kind == "bytes":
            return inner.encode("latin-1")
        if kind == "tuple":
            return tuple(decode(v) for v in inner)
        if kind == "list":
            return [decode(v) for v in inner]
        return {k: decode(v) for k, v in inner.items()}
    return value


def test_scope_keys_types_and_values_http11(server):
    with httpx.Client() as client:
        response = client.get(
            f"{server.url}/scope?x=1&y=%20",
            headers=[("X-Dup", "a"), ("X-Dup", "b"), ("X-Other", "c")],
        )
    scope = decode(response.json())
    assert scope["type"] == "http"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.4"}
    assert scope["http_version"] == "1.1"
    assert scope["method"] == "GET"
    assert scope["scheme"] == "http"
    assert scope["path"] == "/scope"
    assert scope["raw_path"] == b"/scope"
    assert scope["query_string"] == b"x=1&y=%20"
    assert scope["root_path"] == ""
    headers = scope["headers"]
    assert isinstance(headers, list)
    assert all(isinstance(h, tuple) and len(h) == 2 for h in headers)
    assert all(isinstance(n, bytes) and n == n.lower() for n, _ in headers)
    assert [v for n, v in headers if n == b"x-dup"] == [b"a", b"b"]
    assert (b"host", f"127.0.0.1:{server.port}".encode()) in headers
    client_host, client_port = scope["client"]
    assert client_host == "127.0.0.1" and isinstance(client_port, int) and client_port > 0
    assert scope["server"] == ("127.0.0.1", server.port)
    assert scope["state"] == {"started": True}
    assert scope["extensions"] == {"http.response.pathsend": {}}


def test_path_is_percent_decoded_and_raw_path_kept(server):
    sock = rawhttp.connect(server.port)
    sock.sendall(b"GET /scope/caf%C3%A9/a%20b%2Fc?q=%C3%A9 HTTP/1.1\r\nHost: x\r\n\r\n")
    _, _, body = rawhttp.read_response(sock)
    scope = decode(json.loads(body))
    assert scope["path"] == "/scope/café/a b/c"
    assert scope["raw_path"] == b"/scope/caf%C3%A9/a%20b%2Fc"
    assert scope["query_string"] == b"q=%C3%A9"


def test_http10_request_gets_version_10_and_connection_closes(server):
    sock = rawhttp.connect(server.port)
    sock.sendall(b"GET /scope HTTP/1.0\r\n\r\n")
    data = rawhttp.read_until_close(sock)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200")
    assert decode(json.loads(body))["http_version"] == "1.0"


def test_scope_over_http2_has_host_and_no_pseudo_headers(server):
    with httpx.Client(http1=False, http2=True) as client:
        response = client.post(f"{server.url}/scope?h2=1", content=b"x")
    assert response.http_version == "HTTP/2"
    scope = decode(response.json())
    assert scope["http_version"] == "2"
    assert scope["method"] == "POST"
    names = [n for n, _ in scope["headers"]]
    assert not any(n.startswith(b":") for n in names)
    assert (b"host", f"127.0.0.1:{server.port}".encode()) in scope["headers"]
    assert scope["query_string"] == b"h2=1"


def test_state_is_a_shallow_copy_per_request(server):
    assert httpx.get(f"{server.url}/mutate-state").text == "mutated"
    state = decode(httpx.get(f"{server.url}/scope").json())["state"]
    assert state == {"started": True}


def test_asgi_and_extensions_dicts_are_fresh_per_request(server):
    assert httpx.get(f"{server.url}/mutate-scope").text == "mutated"
    scope = decode(httpx.get(f"{server.url}/scope").json())
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.4"}
    assert "mutated" not in scope["extensions"]


def test_asgi2_app_is_served(start_server):
    srv = start_server("tests.apps.core_app:ASGI2App", "--lifespan", "off")
    response = httpx.get(f"{srv.url}/two")
    assert response.text == "asgi2 /two"
