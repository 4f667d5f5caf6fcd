"""Timeouts (idle keep-alive, slowloris), request head limits, and log configuration files in
all three formats."""

from __future__ import annotations

import json
import socket
import time

import httpx
import pytest

from tests import rawhttp

APP = "tests.apps.core_app:app"


def closed_within(sock: socket.socket, seconds: float) -> float:
    """Seconds until the server closed `sock` (fails if it stays open longer than `seconds`)."""
    start = time.monotonic()
    sock.settimeout(seconds)
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        pass
    except TimeoutError:
        pytest.fail(f"connection still open after {seconds} s")
    return time.monotonic() - start


def test_idle_keep_alive_connection_is_closed_after_timeout(start_server):
    srv = start_server(APP, "--timeout-keep-alive", "1")
    sock = rawhttp.connect(srv.port)
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert rawhttp.read_response(sock)[2] == b"Hello, world!"
    elapsed = closed_within(sock, 5)
    assert 0.8 <= elapsed < 3


@pytest.mark.parametrize("http", ["auto", "h1"])
def test_keep_alive_timeout_counts_from_the_last_response(start_server, http):
    # A request that takes longer than the timeout is answered, and the connection then gets the
    # whole timeout again before it is closed; a second request within it is served.
    srv = start_server(APP, "--timeout-keep-alive", "1", "--http", http)
    sock = rawhttp.connect(srv.port)
    sock.sendall(b"GET /sleep HTTP/1.1\r\nHost: x\r\nX-Sleep: 1.5\r\n\r\n")
    assert rawhttp.read_response(sock)[2] == b"slept"
    time.sleep(0.6)
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert rawhttp.read_response(sock)[2] == b"Hello, world!"
    elapsed = closed_within(sock, 5)
    assert 0.8 <= elapsed < 3


@pytest.mark.parametrize("http", ["auto", "h1"])
def test_silent_connection_is_closed_after_timeout(start_server, http):
    # A client that connects and never sends a byte holds a connection (and a descriptor) for
    # no request: it gets the keep-alive timeout too, whichever way the protocol is chosen.
    srv = start_server(APP, "--timeout-keep-alive", "1", "--http", http)
    sock = rawhttp.connect(srv.port)
    elapsed = closed_within(sock, 5)
    assert 0.8 <= elapsed < 3


def test_slowloris_request_head_is_cut_off(start_server):
    srv = start_server(APP, "--timeout-keep-alive", "1")
    sock = rawhttp.connect(srv.port)
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    start = time.monotonic()
    for _ in range(10):  # dribble a byte every 0.3 s: never completes the head
        try:
            sock.sendall(b"a")
        except (BrokenPipeError, ConnectionResetError):
            break
        time.sleep(0.3)
    closed_within(sock, 5)
    assert time.monotonic() - start < 4
    assert httpx.get(srv.url).status_code == 200, "other clients are still served"


def test_too_many_headers_get_431(start_server):
    srv = start_server(APP)
    sock = rawhttp.connect(srv.port)
    headers = b"".join(b"X-H%d: v\r\n" % i for i in range(150))
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
    assert rawhttp.read_until_close(sock).startswith(b"HTTP/1.1 431")


def test_browser_sized_heads_pass(start_server):
    srv = start_server(APP)
    cookie = "session=" + "c" * 8000
    headers = {f"x-trace-{i}": "t" * 100 for i in range(40)} | {"cookie": cookie}
    assert httpx.get(srv.url, headers=headers).status_code == 200


def test_head_size_limit_follows_h11_max_incomplete_event_size(start_server):
    srv = start_server(APP, "--h11-max-incomplete-event-size", "16384")
    assert httpx.get(srv.url, headers={"x-big": "b" * 10_000}).status_code == 200
    sock = rawhttp.connect(srv.port)
    sock.sendall(rawhttp.get_with_big_header(20_000))
    assert rawhttp.read_until_close(sock).startswith(b"HTTP/1.1 431")


ACCESS_LINE = r"^ACCESS GET /logged HTTP/1\.1 200 OK$"


def dict_config() -> dict:
    return {
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


def check_log_config(start_server, path) -> None:
    srv = start_server(APP, "--log-config", str(path), "--no-use-colors")
    assert "PLAIN INFO Started server process" in srv.output
    httpx.get(f"{srv.url}/logged")
    srv.wait_for_line(ACCESS_LINE)


def test_log_config_yaml(start_server, tmp_path):
    import yaml

    path = tmp_path / "log.yaml"
    path.write_text(yaml.safe_dump(dict_config()))
    check_log_config(start_server, path)


def test_log_config_json(start_server, tmp_path):
    path = tmp_path / "log.json"
    path.write_text(json.dumps(dict_config()))
    check_log_config(start_server, path)


def test_log_config_ini_with_uvicorn_logger_names(start_server, tmp_path):
    path = tmp_path / "log.ini"
    path.write_text(
        "[loggers]\nkeys=root,uvicorn,access\n\n"
        "[handlers]\nkeys=plain,access\n\n"
        "[formatters]\nkeys=plain,access\n\n"
        "[logger_root]\nlevel=WARNING\nhandlers=\n\n"
        "[logger_uvicorn]\nlevel=INFO\nhandlers=plain\nqualname=uvicorn\npropagate=0\n\n"
        "[logger_access]\nlevel=INFO\nhandlers=access\nqualname=uvicorn.access\npropagate=0\n\n"
        "[handler_plain]\nclass=StreamHandler\nformatter=plain\nargs=(sys.stderr,)\n\n"
        "[handler_access]\nclass=StreamHandler\nformatter=access\nargs=(sys.stdout,)\n\n"
        "[formatter_plain]\nformat=PLAIN %(levelname)s %(message)s\n\n"
        "[formatter_access]\nformat=ACCESS %(request_line)s %(status_code)s\n"
        "class=fasterapi.logging.AccessFormatter\n"
    )
    check_log_config(start_server, path)


def test_log_level_trace_and_debug_are_accepted(start_server):
    srv = start_server(APP, "--log-level", "trace")
    assert "TRACE:    Logging configured at level trace" in srv.output


def test_access_log_colours_can_be_forced(start_server):
    srv = start_server(APP, "--use-colors")
    httpx.get(f"{srv.url}/coloured")
    line = srv.wait_for_line(r"/coloured").string
    assert "\x1b[" in line, "colour escape codes expected with --use-colors"
