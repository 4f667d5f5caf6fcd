"""uvicorn drop-in behaviour: proxy headers, limits, Unix sockets and inherited sockets, HTTP
modes, default headers, environment variables, log configs and the Python API."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests import rawhttp
from tests.conftest import ROOT, ServerProcess

SCOPE_APP = "tests.apps.core_app:app"


def scope_of(response: httpx.Response) -> dict:
    from tests.test_core_scope import decode

    return decode(response.json())


# ---- proxy headers ---------------------------------------------------------------------------


def test_proxy_headers_from_trusted_peer_rewrite_client_scheme_and_host(start_server):
    srv = start_server(SCOPE_APP)  # 127.0.0.1 is trusted by default, as in uvicorn
    scope = scope_of(
        httpx.get(
            f"{srv.url}/scope",
            headers={
                "x-forwarded-for": "203.0.113.7, 127.0.0.1",
                "x-forwarded-proto": "https",
                "x-forwarded-host": "app.example",
            },
        )
    )
    assert scope["client"] == ("203.0.113.7", 0)
    assert scope["scheme"] == "https"
    assert (b"host", b"app.example") in scope["headers"]


def test_rfc7239_forwarded_header(start_server):
    srv = start_server(SCOPE_APP)
    scope = scope_of(
        httpx.get(
            f"{srv.url}/scope", headers={"forwarded": 'for="[2001:db8::9]:1234";proto=https;host=h.example'}
        )
    )
    assert scope["client"] == ("2001:db8::9", 0)
    assert scope["scheme"] == "https"
    assert (b"host", b"h.example") in scope["headers"]


def test_spoofed_headers_from_untrusted_peer_change_nothing(start_server):
    srv = start_server(SCOPE_APP, "--forwarded-allow-ips", "10.0.0.0/8")
    scope = scope_of(
        httpx.get(
            f"{srv.url}/scope",
            headers={
                "x-forwarded-for": "203.0.113.7",
                "x-forwarded-proto": "https",
                "forwarded": "for=1.2.3.4",
            },
        )
    )
    assert scope["client"][0] == "127.0.0.1"
    assert scope["scheme"] == "http"


def test_no_proxy_headers_switch(start_server):
    srv = start_server(SCOPE_APP, "--no-proxy-headers")
    scope = scope_of(httpx.get(f"{srv.url}/scope", headers={"x-forwarded-for": "203.0.113.7"}))
    assert scope["client"][0] == "127.0.0.1"


def test_forwarded_allow_ips_from_environment(start_server):
    srv = start_server(SCOPE_APP, env={"FORWARDED_ALLOW_IPS": "192.0.2.1"})
    scope = scope_of(httpx.get(f"{srv.url}/scope", headers={"x-forwarded-for": "203.0.113.7"}))
    assert scope["client"][0] == "127.0.0.1"


def test_bad_forwarded_allow_ips_is_a_usage_error():
    result = subprocess.run(
        [sys.executable, "-m", "fasterapi", SCOPE_APP, "--forwarded-allow-ips", "300.1.2.3"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert result.returncode == 2
    assert "--forwarded-allow-ips" in result.stderr


# ---- limits ----------------------------------------------------------------------------------


def test_limit_concurrency_answers_503_with_uvicorns_body(start_server):
    srv = start_server(SCOPE_APP, "--limit-concurrency", "2")
    import threading

    slow = threading.Thread(
        target=httpx.get, args=(f"{srv.url}/sleep",), kwargs={"headers": {"x-sleep": "3"}, "timeout": 10}
    )
    slow.start()
    # One request sleeping plus this probe make two in flight: still allowed.
    deadline = time.monotonic() + 5
    while httpx.get(f"{srv.url}/sleeping").text != "1":
        assert time.monotonic() < deadline, "the slow request never started"
        time.sleep(0.01)
    # The probe's ticket is returned once its app finished; now a second and a third request.
    with httpx.Client() as client:
        second = threading.Thread(
            target=client.get, args=(f"{srv.url}/sleep",), kwargs={"headers": {"x-sleep": "1"}}
        )
        second.start()
        while httpx.get(f"{srv.url}/sleeping").status_code != 503:
            assert time.monotonic() < deadline, "the second request never started"
            time.sleep(0.01)
        response = httpx.get(f"{srv.url}/")
        second.join()
    slow.join()
    assert response.status_code == 503
    assert response.text == "Service Unavailable"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert httpx.get(f"{srv.url}/").status_code == 200


def test_limit_max_requests_stops_gracefully(start_server):
    srv = start_server(SCOPE_APP, "--limit-max-requests", "3")
    with httpx.Client() as client:
        for _ in range(3):
            assert client.get(f"{srv.url}/").status_code == 200
    assert srv.wait_exit() == 0
    assert "Maximum request limit of 3 exceeded. Terminating process." in srv.output
    assert "Application shutdown complete." in srv.output


# ---- where we listen -------------------------------------------------------------------------


def curl_over(path: Path, *options: str) -> str:
    """What curl prints for `GET /` over the Unix socket at `path`."""
    command = ["curl", "-sS", *options, "--unix-socket", str(path), "http://localhost/"]
    return subprocess.run(command, capture_output=True, text=True, timeout=10, check=True).stdout


def test_unix_domain_socket(tmp_path):
    path = tmp_path / "app.sock"
    srv = ServerProcess([SCOPE_APP, "--uds", str(path), "--h11-max-incomplete-event-size", "20000"])
    try:
        srv.wait_for_line(f"running on unix socket {path}")
        transport = httpx.HTTPTransport(uds=str(path))
        with httpx.Client(transport=transport) as client:
            scope = scope_of(client.get("http://localhost/scope"))
        assert scope["server"] == [str(path), None] or scope["server"] == (str(path), None)
        assert scope["client"] is None
        assert curl_over(path) == "Hello, world!"
        # HTTP/2 with prior knowledge is told apart by peeking at the socket, as on TCP.
        assert curl_over(path, "--http2-prior-knowledge", "-w", " %{http_version}") == "Hello, world! 2"
        # HTTP/1.1 gets hyper's exact head size limit there too, also when one read brings it all.
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(str(path))
            sock.sendall(rawhttp.get_with_big_header(25_000))
            assert rawhttp.read_response(sock)[0].startswith(b"HTTP/1.1 431")
    finally:
        srv.stop()
    assert not path.exists(), "the socket file is removed on shutdown"


def test_inherited_file_descriptor():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    fd = listener.fileno()
    proc = subprocess.Popen(
        [sys.executable, "-m", "fasterapi", SCOPE_APP, "--fd", str(fd)],
        cwd=ROOT,
        pass_fds=[fd],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    listener.close()
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if "running on" in line:
                assert f"127.0.0.1:{port}" in line
                break
        assert httpx.get(f"http://127.0.0.1:{port}/").text == "Hello, world!"
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0


def test_closed_fd_is_a_clear_error():
    result = subprocess.run(
        [sys.executable, "-m", "fasterapi", SCOPE_APP, "--fd", "987654"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert result.returncode == 1
    assert "fd 987654" in result.stderr


# ---- HTTP modes ------------------------------------------------------------------------------


def test_http_h1_refuses_http2_prior_knowledge(start_server):
    srv = start_server(SCOPE_APP, "--http", "h1")
    assert httpx.get(srv.url).status_code == 200
    with pytest.raises(httpx.HTTPError), httpx.Client(http1=False, http2=True) as client:
        client.get(srv.url)


def test_uvicorn_http_names_mean_http1(start_server):
    srv = start_server(SCOPE_APP, "--http", "httptools")
    assert httpx.get(srv.url).status_code == 200


def test_uvicorn_zttp_means_http1_and_with_http2_both(start_server):
    srv = start_server(SCOPE_APP, "--http", "zttp")
    assert httpx.get(srv.url).status_code == 200
    with pytest.raises(httpx.HTTPError), httpx.Client(http1=False, http2=True) as client:
        client.get(srv.url)
    srv = start_server(SCOPE_APP, "--http", "zttp", "--http2")  # uvicorn's way to turn HTTP/2 on
    assert httpx.get(srv.url).http_version == "HTTP/1.1"
    with httpx.Client(http1=False, http2=True) as client:
        assert client.get(srv.url).http_version == "HTTP/2"


def test_http_h2_only(start_server):
    srv = start_server(SCOPE_APP, "--http", "h2")
    with httpx.Client(http1=False, http2=True) as client:
        assert client.get(srv.url).http_version == "HTTP/2"
    with pytest.raises(httpx.HTTPError):
        httpx.get(srv.url)


# ---- event loops and contexts -----------------------------------------------------------------

CONTEXT_APP = "tests.apps.context_apps:app"


def test_loop_factory_import_string(start_server):
    srv = start_server(CONTEXT_APP, "--loop", "tests.apps.context_apps:new_loop", "--loops", "2")
    loops = {httpx.get(srv.url).json()["loop"] for _ in range(8)}
    assert loops == {"tests.apps.context_apps.MarkedLoop"}


def test_loop_none_is_the_asyncio_policys(start_server):
    srv = start_server(CONTEXT_APP, "--loop", "none")
    assert httpx.get(srv.url).json()["loop"] == "asyncio.unix_events._UnixSelectorEventLoop"


def test_loop_factory_that_cannot_be_imported_exits_3(start_server):
    srv = start_server(CONTEXT_APP, "--loop", "tests.apps.context_apps:missing", ready=False)
    assert srv.wait_exit() == 3
    assert any("Error loading custom loop setup function." in line for line in srv.lines)


@pytest.mark.parametrize(
    ("loop", "message"),
    [
        ("fastest", "--loop must be one of auto, asyncio, uvloop, zuvloop, none or a loop factory"),
        pytest.param(
            "zuvloop",
            "--loop zuvloop needs the zuvloop package: pip install zuvloop",
            marks=pytest.mark.skipif(bool(importlib.util.find_spec("zuvloop")), reason="zuvloop installed"),
        ),
    ],
)
def test_bad_loop_is_a_usage_error(loop, message):
    result = subprocess.run(
        [sys.executable, "-m", "fasterapi", CONTEXT_APP, "--loop", loop],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert result.returncode == 2
    assert message in result.stderr


def test_requests_copy_the_servers_context_as_under_uvicorn(start_server):
    srv = start_server(CONTEXT_APP)
    for _ in range(3):  # the lifespan's and an earlier request's variables stay their own
        assert httpx.get(srv.url).json()["context"] == {"imported": "at import"}


@pytest.mark.parametrize("http", ["h1", "h2"])
def test_reset_contextvars_gives_each_request_an_empty_context(start_server, http):
    srv = start_server(CONTEXT_APP, "--reset-contextvars", "--http", http)
    with httpx.Client(http1=http == "h1", http2=http == "h2") as client:
        for _ in range(3):
            assert client.get(srv.url).json()["context"] == {}


def test_reset_contextvars_covers_websockets(start_server):
    import websockets.sync.client

    srv = start_server(CONTEXT_APP, "--reset-contextvars")
    for _ in range(2):
        with websockets.sync.client.connect(f"ws://127.0.0.1:{srv.port}/") as ws:
            assert json.loads(ws.recv())["context"] == {}


def test_reset_contextvars_with_a_task_factory(start_server):
    srv = start_server("tests.apps.task_factory_app:app", "--reset-contextvars")
    assert httpx.get(srv.url).text == "FactoryTask -"  # the factory was handed the new context


# ---- headers, environment, logging ------------------------------------------------------------


def test_custom_default_headers(start_server):
    srv = start_server(SCOPE_APP, "--header", "X-Powered-By: rust", "--header", "x-team:core")
    response = httpx.get(srv.url)
    assert response.headers["x-powered-by"] == "rust"
    assert response.headers["x-team"] == "core"


def test_uvicorn_environment_variables_are_read(start_server):
    srv = start_server("tests.apps.cli_apps:paths", env={"UVICORN_ROOT_PATH": "/legacy"})
    assert httpx.get(f"{srv.url}/x").json()["root_path"] == "/legacy"


def test_fasterapi_environment_variables_win_over_uvicorns(start_server):
    srv = start_server(
        "tests.apps.cli_apps:paths", env={"UVICORN_ROOT_PATH": "/legacy", "FASTERAPI_ROOT_PATH": "/ours"}
    )
    assert httpx.get(f"{srv.url}/x").json()["root_path"] == "/ours"


def test_env_file_is_loaded_before_import(start_server, tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text('# settings\nexport GREETING="hi there"\nOTHER=1 # comment\n')
    srv = start_server("tests.apps.cli_apps:environ_app", "--env-file", str(env_file))
    assert httpx.get(srv.url).json() == {"GREETING": "hi there", "OTHER": "1"}


def test_workers_need_an_import_string():
    from fasterapi import Config

    from examples.hello import app

    with pytest.raises(ValueError, match="import string to enable 'reload' or 'workers'"):
        Config(app, workers=2)


def test_uvicorn_log_config_drives_our_loggers(start_server, tmp_path):
    log_config = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "access": {
                "()": "uvicorn.logging.AccessFormatter",
                "fmt": "ACCESS %(request_line)s %(status_code)s",
            },
            "plain": {"format": "PLAIN %(levelname)s %(message)s"},
        },
        "handlers": {
            "access": {"class": "logging.StreamHandler", "formatter": "access", "stream": "ext://sys.stdout"},
            "plain": {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stderr"},
        },
        "loggers": {
            "uvicorn": {"handlers": ["plain"], "level": "INFO", "propagate": False},
            "uvicorn.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
        },
    }
    path = tmp_path / "log.json"
    path.write_text(json.dumps(log_config))
    srv = start_server(SCOPE_APP, "--log-config", str(path), "--no-use-colors")
    assert "PLAIN INFO Started server process" in srv.output
    httpx.get(f"{srv.url}/logged")
    srv.wait_for_line(r"^ACCESS GET /logged HTTP/1\.1 200 OK$")


def test_python_api_run_and_serve(tmp_path):
    script = tmp_path / "serve.py"
    script.write_text(
        "import asyncio, sys\n"
        "import fasterapi\n"
        "from examples.hello import app\n"
        "mode = sys.argv[1]\n"
        "if mode == 'run':\n"
        "    fasterapi.run(app, port=0, lifespan='off')\n"
        "else:\n"
        "    server = fasterapi.Server(fasterapi.Config(app, port=0, lifespan='off'))\n"
        "    sys.exit(asyncio.run(server.serve()))\n"
    )
    for mode in ("run", "serve"):
        proc = subprocess.Popen(
            [sys.executable, str(script), mode],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert proc.stdout is not None
        port = None
        for line in proc.stdout:
            if "running on" in line:
                port = int(line.rsplit(":", 1)[1].split()[0])
                break
        assert port, mode
        assert httpx.get(f"http://127.0.0.1:{port}/").text == "Hello, world!"
        proc.terminate()
        assert proc.wait(timeout=10) == 0, mode
