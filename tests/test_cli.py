"""The command line: options, environment variables, import errors and exit statuses."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time

import httpx
import pytest

from tests.conftest import ROOT


def run_cli(*args: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fasterapi", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_version():
    result = run_cli("--version")
    assert result.returncode == 0
    assert re.fullmatch(r"Running fasterapi \S+ with CPython 3\.\d+\.\d+ on Linux\n", result.stdout)


def test_the_version_is_looked_up_only_when_asked_for():
    # importlib.metadata took a sixth of the command line's start-up (~20 ms).
    code = (
        "import sys, fasterapi.cli; assert 'importlib.metadata' not in sys.modules;"
        "import fasterapi; print(fasterapi.__version__)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=20
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == run_cli("--version").stdout.split()[2]


def test_help_lists_the_options():
    result = run_cli("--help")
    assert result.returncode == 0
    for option in (
        "--host",
        "--port",
        "--app-dir",
        "--factory",
        "--lifespan",
        "--log-level",
        "--access-log / --no-access-log",
        "--root-path",
        "--timeout-keep-alive",
        "--timeout-graceful-shutdown",
        "--version",
    ):
        assert option in result.stdout


@pytest.mark.parametrize(
    ("app", "message"),
    [
        ("no_such_module:app", 'Error loading ASGI app. Could not import module "no_such_module".'),
        (
            "tests.apps.cli_apps:missing",
            'Error loading ASGI app. Attribute "missing" not found in module "tests.apps.cli_apps".',
        ),
        (
            "tests.apps.cli_apps",
            'Error loading ASGI app. Import string "tests.apps.cli_apps" must be in format '
            '"<module>:<attribute>".',
        ),
        (
            "tests.apps.cli_apps:not_callable",
            'Error loading ASGI app. "tests.apps.cli_apps:not_callable" is not callable.',
        ),
    ],
)
def test_import_errors_print_one_line_and_exit_3(app, message):
    result = run_cli(app, "--port", "0")
    assert result.returncode == 3
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR")]
    assert errors == [f"ERROR:    {message}"]
    assert "Traceback" not in result.stderr


def test_error_inside_the_app_module_shows_its_traceback():
    result = run_cli("tests.apps.broken_import:app", "--port", "0")
    assert result.returncode == 3
    assert "Traceback" in result.stderr
    assert "a_dependency_that_is_not_installed" in result.stderr


def test_bad_option_value_is_a_usage_error():
    result = run_cli("examples.hello:app", "--lifespan", "sometimes")
    assert result.returncode == 2
    assert "--lifespan" in result.stderr


def test_port_in_use_exits_1(start_server):
    first = start_server("examples.hello:app")
    result = run_cli("examples.hello:app", "--port", str(first.port))
    assert result.returncode == 1
    assert f"error while attempting to bind on address ('127.0.0.1', {first.port})" in result.stderr


def test_port_zero_logs_the_chosen_port(start_server):
    srv = start_server("examples.hello:app")
    assert srv.port and srv.port != 0
    assert httpx.get(srv.url).text == "Hello, world!"


def test_dotted_attribute_path(start_server):
    srv = start_server("tests.apps.cli_apps:nested.app")
    assert httpx.get(srv.url).json() == {"nested": True}


def test_factory(start_server):
    srv = start_server("tests.apps.cli_apps:create_app", "--factory")
    assert httpx.get(srv.url).json() == {"factory": True}


def test_app_dir(start_server):
    srv = start_server("standalone:app", "--app-dir", "tests/apps/elsewhere")
    assert httpx.get(srv.url).text == "from app-dir"


def test_app_from_environment(start_server):
    from tests.conftest import ServerProcess

    srv = ServerProcess(["--port", "0"], env={"FASTERAPI_APP": "examples.hello:app"}).wait_ready()
    try:
        assert httpx.get(srv.url).text == "Hello, world!"
    finally:
        srv.stop()


def test_option_from_environment(start_server):
    srv = start_server("tests.apps.cli_apps:paths", env={"FASTERAPI_ROOT_PATH": "/env"})
    assert httpx.get(f"{srv.url}/x").json()["root_path"] == "/env"


def test_root_path_prefixes_path(start_server):
    srv = start_server("tests.apps.cli_apps:paths", "--root-path", "/api")
    assert httpx.get(f"{srv.url}/items").json() == {
        "root_path": "/api",
        "path": "/api/items",
        "raw_path": "/api/items",
    }


def test_default_headers_can_be_switched_off(start_server):
    default = httpx.get(start_server("examples.hello:app").url)
    assert default.headers["server"] == "fasterapi"
    assert "date" in default.headers
    bare = httpx.get(start_server("examples.hello:app", "--no-server-header", "--no-date-header").url)
    assert "server" not in bare.headers
    assert "date" not in bare.headers


def test_access_log_on_and_off(start_server):
    logged = start_server("examples.hello:app")
    httpx.get(f"{logged.url}/a%20b?x=1")
    logged.wait_for_line(r'^INFO:     127\.0\.0\.1:\d+ - "GET /a%20b\?x=1 HTTP/1\.1" 200 OK$')
    quiet = start_server("examples.hello:app", "--no-access-log")
    httpx.get(f"{quiet.url}/quiet")
    quiet.signal(15)
    quiet.wait_exit()
    assert "/quiet" not in quiet.output


def test_log_level_warning_hides_info_lines():
    from tests.conftest import ServerProcess

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    srv = ServerProcess(["examples.hello:app", "--port", str(port), "--log-level", "warning"])
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/")
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline, srv.output
                time.sleep(0.05)
        assert response.text == "Hello, world!"
    finally:
        srv.stop()
    assert "Started server process" not in srv.output
    assert "running on" not in srv.output
    assert '"GET / HTTP/1.1"' not in srv.output
