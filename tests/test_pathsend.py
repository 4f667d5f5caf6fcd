"""The ASGI `http.response.pathsend` extension: the server streams the named file itself (Starlette's
FileResponse uses it when the server offers it), with the right length, over HTTP/1.1 and HTTP/2."""

from __future__ import annotations

import os

import httpx
import pytest

APP = "tests.apps.core_app:app"
FILE_APP = "tests.apps.file_app:app"


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("pathsend") / "big.bin"
    path.write_bytes(os.urandom(3 * 1024 * 1024 + 123))  # several read chunks, odd tail
    return path


@pytest.mark.parametrize("http2", [False, True])
def test_raw_app_pathsend_streams_the_whole_file(start_server, big_file, http2):
    srv = start_server(APP)
    with httpx.Client(http1=not http2, http2=http2) as client:
        response = client.get(f"{srv.url}/pathsend", headers={"x-path": str(big_file)})
    assert response.status_code == 200
    assert response.http_version == ("HTTP/2" if http2 else "HTTP/1.1")
    assert response.content == big_file.read_bytes()
    # No length from the app: the server knows it from the file, so HTTP/1.1 is not chunked.
    assert response.headers["content-length"] == str(big_file.stat().st_size)
    assert "transfer-encoding" not in response.headers


def test_pathsend_keeps_the_apps_content_length_and_head_gets_no_body(start_server, big_file):
    srv = start_server(APP)
    size = str(big_file.stat().st_size)
    headers = {"x-path": str(big_file), "x-length": size}
    response = httpx.get(f"{srv.url}/pathsend", headers=headers)
    assert response.headers["content-length"] == size and len(response.content) == int(size)
    head = httpx.head(f"{srv.url}/pathsend", headers=headers)
    assert head.headers["content-length"] == size and head.content == b""


def test_pathsend_of_a_missing_file_raises_oserror_in_the_app(start_server, tmp_path):
    srv = start_server(APP)
    response = httpx.get(
        f"{srv.url}/pathsend", headers={"x-path": str(tmp_path / "nope"), "x-id": "ps-missing"}
    )
    assert response.status_code == 200 and response.content == b""
    assert httpx.get(f"{srv.url}/events/ps-missing").json() == {"error": "FileNotFoundError"}


@pytest.mark.parametrize("http2", [False, True])
def test_starlette_file_response_goes_through_pathsend(start_server, big_file, http2):
    srv = start_server(FILE_APP, env={"FASTERAPI_TEST_FILE": str(big_file)})
    with httpx.Client(http1=not http2, http2=http2) as client:
        response = client.get(f"{srv.url}/file")
        sent = client.get(f"{srv.url}/sent").json()
    assert response.status_code == 200
    assert response.content == big_file.read_bytes()
    assert response.headers["content-length"] == str(big_file.stat().st_size)
    assert sent == ["http.response.start", "http.response.pathsend"]
