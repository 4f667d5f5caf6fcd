"""fasterapi side by side with uvicorn, granian and hypercorn (and a pure-hyper ceiling).

    make bench                          # full run: installs peers, writes docs/benchmarks.{md,png}
    python benches/run.py --smoke       # one second per scenario, fasterapi only (what CI runs)
    python benches/run.py --only hello-h1-64,fastapi-get --runs 5   # report in benches/partial.{json,md,png}

Fairness: the server is pinned to core 0 and the load generator to core 1 (`taskset`), one worker
each, uvloop wherever a server supports it, access logs off, a warm-up before every measurement,
servers measured in an order that rotates between runs, and every figure the median of the runs.
The environment's shared objects are dropped from the page cache first (`page_cache.py`), so no
server is measured with files installed a moment before and another with files read back in.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from page_cache import drop_shared_objects

ROOT = Path(__file__).resolve().parent.parent
BENCHES = ROOT / "benches"
HYPER = BENCHES / "hyper_hello" / "target" / "release" / "hyper_hello"
WS_LOAD = BENCHES / "ws_load" / "target" / "release" / "ws_load"
SERVER_CPUS = "0"
LOAD_CPUS = "1"
PEERS = ("fasterapi", "granian", "uvicorn", "hypercorn")


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    app: str  # import string, relative to benches/
    path: str
    connections: int = 64
    #: wrk (HTTP/1.1), h2load (h2c, 16 streams per connection), ws (ws_load), oha (HTTP/1.1 at `rate`)
    tool: str = "wrk"
    body: bytes | None = None
    content_type: str = "application/octet-stream"
    workers: int = 1
    servers: tuple[str, ...] = PEERS
    tls: bool = False  # https with a self-signed certificate (h2 by ALPN for h2load)
    #: Requests per second, sent on schedule whether or not the server keeps up (oha): a latency
    #: scenario. The others are closed loops, each connection sending as soon as it has its answer.
    rate: int | None = None
    #: `ceiling.py` calls this scenario's app in process too (the FastAPI app's CPU-bound routes).
    has_ceiling: bool = False


sys.path.insert(0, str(BENCHES))
from apps import JSON_ITEM  # noqa: E402

if TYPE_CHECKING:
    from split import Split

SCENARIOS = [
    Scenario("hello-h1-64", "raw ASGI hello, HTTP/1.1, 64 conns", "apps:raw", "/", servers=(*PEERS, "hyper")),
    Scenario(
        "hello-h1-256", "raw ASGI hello, HTTP/1.1, 256 conns", "apps:raw", "/", 256, servers=(*PEERS, "hyper")
    ),
    Scenario(
        "hello-h2c",
        "raw ASGI hello, h2c, 16 conns x 16 streams",
        "apps:raw",
        "/",
        16,
        tool="h2load",
        servers=("fasterapi", "granian", "uvicorn", "hypercorn", "hyper"),
    ),
    Scenario(
        "hello-h2-tls",
        "raw ASGI hello, HTTP/2 over TLS, 16 conns x 16 streams",
        "apps:raw",
        "/",
        16,
        tool="h2load",
        servers=("fasterapi", "granian", "uvicorn", "hypercorn"),
        tls=True,
    ),
    Scenario(
        "hello-h1-20k",
        "raw ASGI hello, HTTP/1.1, a fixed 20,000 req/s on 64 conns (latency)",
        "apps:raw",
        "/",
        tool="oha",
        rate=20_000,
        servers=("fasterapi", "granian", "uvicorn", "hyper"),  # hypercorn serves ~6,000/s at most
    ),
    Scenario("starlette-plaintext", "Starlette plaintext", "framework_apps:starlette_app", "/plaintext"),
    Scenario("starlette-json", "Starlette JSON", "framework_apps:starlette_app", "/json"),
    Scenario(
        "fastapi-get",
        "FastAPI GET, small dict",
        "framework_apps:fastapi_app",
        "/items/42?q=x",
        has_ceiling=True,
    ),
    Scenario(
        "fastapi-def",
        "FastAPI GET, small dict, `def` endpoint (threadpool)",
        "framework_apps:fastapi_app",
        "/sync/42?q=x",
        has_ceiling=True,
    ),
    Scenario(
        "fastapi-post",
        "FastAPI POST, pydantic body",
        "framework_apps:fastapi_app",
        "/items",
        body=JSON_ITEM,
        content_type="application/json",
        has_ceiling=True,
    ),
    Scenario(
        "fastapi-io",
        "FastAPI GET awaiting 10 ms of I/O, 512 conns",
        "framework_apps:fastapi_app",
        "/io/42?q=x",
        512,
    ),
    Scenario("echo-16k", "POST echo, 16 KiB body", "apps:raw", "/echo", body=b"a" * 16384),
    Scenario("echo-1m", "POST echo, 1 MiB body", "apps:raw", "/echo", 16, body=b"a" * (1 << 20)),
    Scenario("stream-1m", "streaming 1 MiB in 64 KiB chunks", "apps:raw", "/stream", 16),
    Scenario("file-1m", "1 MiB FileResponse (Starlette)", "framework_apps:starlette_app", "/file", 16),
    Scenario("sleep-10ms", "10 ms I/O wait per request, 512 conns", "apps:raw", "/sleep", 512),
    Scenario(
        "ws-echo",
        "WebSocket echo, 64-byte text, 64 conns (messages/s)",
        "apps:raw",
        "/ws",
        tool="ws",
        body=b"x" * 64,
    ),
    Scenario(
        "workers-2", "raw ASGI hello, --workers 2, 256 conns (unpinned)", "apps:raw", "/", 256, workers=2
    ),
]


@dataclass
class Result:
    server: str
    rps: float
    p50_ms: float | None
    p99_ms: float | None
    errors: int
    non_2xx: int
    rss_mib: float | None


@dataclass
class ScenarioReport:
    scenario: str
    title: str
    runs: dict[str, list[Result]] = field(default_factory=dict)
    rate: int | None = None  # the scenario's fixed request rate, if it has one

    def median(self, server: str) -> Result:
        runs = self.runs[server]

        def med(values: list[float | None]) -> float | None:
            present = [v for v in values if v is not None]
            return statistics.median(present) if present else None

        return Result(
            server,
            statistics.median(r.rps for r in runs),
            med([r.p50_ms for r in runs]),
            med([r.p99_ms for r in runs]),
            sum(r.errors for r in runs),
            sum(r.non_2xx for r in runs),
            med([r.rss_mib for r in runs]),
        )


# ---- servers ------------------------------------------------------------------------------------


def server_command(
    name: str, python: str, app: str, port: int, workers: int, tls: bool = False, http2: bool = False
) -> list[str]:
    """The command line that starts server `name`; with `tls`, on the benchmark certificate; with
    `http2`, one that serves HTTP/2 (uvicorn only does on its zttp protocol)."""
    command = _plain_command(name, python, app, port, workers, http2)
    if not tls:
        return command
    cert, key = bench_certificate()
    flags = {
        "fasterapi": ["--ssl-certfile", cert, "--ssl-keyfile", key],
        "granian": ["--ssl-certificate", cert, "--ssl-keyfile", key],
        "hypercorn": ["--certfile", cert, "--keyfile", key],
        "uvicorn": ["--ssl-certfile", cert, "--ssl-keyfile", key],
    }[name]
    # Options go before the app argument for granian, which takes it last.
    return command[:-1] + flags + command[-1:] if name == "granian" else command + flags


def bench_certificate() -> tuple[str, str]:
    """A self-signed P-256 certificate for 127.0.0.1, made with openssl the first time and kept in
    the temp directory (long-lived, so a kept one never expires under a later run)."""
    directory = Path(tempfile.gettempdir()) / f"fasterapi-bench-tls-{os.getuid()}"
    cert, key = directory / "cert.pem", directory / "key.pem"
    if not cert.exists():
        directory.mkdir(exist_ok=True)
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
            + ["-keyout", str(key), "-out", str(cert), "-days", "3650", "-subj", "/CN=127.0.0.1"]
            + ["-addext", "subjectAltName=IP:127.0.0.1"],
            check=True,
            capture_output=True,
        )
    return str(cert), str(key)


def _plain_command(name: str, python: str, app: str, port: int, workers: int, http2: bool) -> list[str]:
    target = app
    if name == "fasterapi":
        return [
            python,
            "-m",
            "fasterapi",
            target,
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--no-access-log",
            "--log-level",
            "warning",
        ]
    if name == "uvicorn":
        return [
            python,
            "-m",
            "uvicorn",
            target,
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--loop",
            "uvloop",
            *(["--http", "zttp", "--http2"] if http2 else ["--http", "httptools"]),
            "--no-access-log",
            "--log-level",
            "warning",
        ]
    if name == "granian":
        return [
            python,
            "-m",
            "granian",
            "--interface",
            "asgi",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--loop",
            "uvloop",
            "--log-level",
            "warning",
            target,
        ]
    if name == "hypercorn":
        return [
            python,
            "-m",
            "hypercorn",
            target,
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--worker-class",
            "uvloop",
            "--log-level",
            "warning",
        ]
    if name == "hyper":
        return [str(HYPER), str(port)]
    raise ValueError(name)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_listening(port: int, proc: subprocess.Popen[bytes] | None = None, timeout: float = 30) -> None:
    """Wait until something accepts on `port`; fail early if `proc` (the server) exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with status {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not start listening")


def process_tree(pid: int) -> list[int]:
    pids = [pid]
    for current in pids:
        try:
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        pids.extend(int(child) for child in children)
    return pids


def peak_rss_mib(pid: int) -> float | None:
    """The largest peak resident set (VmHWM) in the server's process tree: the worker's."""
    peaks = []
    for member in process_tree(pid):
        try:
            status = Path(f"/proc/{member}/status").read_text()
        except OSError:
            continue
        match = re.search(r"VmHWM:\s+(\d+) kB", status)
        if match:
            peaks.append(int(match.group(1)) / 1024)
    return max(peaks) if peaks else None


def env_with_pythonpath(first: str) -> dict[str, str]:
    """This process's environment with `first` put ahead of whatever PYTHONPATH already holds."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [first, os.environ.get("PYTHONPATH")]))}


def bench_env(build: Path | None = None) -> dict[str, str]:
    """The environment servers and the ceiling run in: the benchmark's apps importable, and
    whatever PYTHONPATH already held after them (`pgo.py` puts its instrumented build there);
    `build`, a directory holding an unpacked fasterapi, ahead of both."""
    return env_with_pythonpath(os.pathsep.join([*([str(build)] if build else []), str(BENCHES)]))


def unpack_wheel(wheel: Path, into: Path) -> Path:
    """Unpack `wheel` into `into`; the directory to put on PYTHONPATH to import it."""
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(into)
    return into


class RunningServer:
    def __init__(self, name: str, python: str, scenario: Scenario, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        command = server_command(
            name, python, scenario.app, self.port, scenario.workers, scenario.tls, scenario.tool == "h2load"
        )
        pin = [] if scenario.workers > 1 else ["taskset", "-c", SERVER_CPUS]
        env = {**bench_env(), **(env or {})}
        self.proc = subprocess.Popen(
            pin + command,
            cwd=BENCHES,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            wait_listening(self.port, self.proc)
        except RuntimeError as exc:
            self.stop()
            raise RuntimeError(f"{name}: {exc}: {self.stderr()}") from None

    def stderr(self) -> str:
        try:
            return (self.proc.stderr.read() if self.proc.stderr else b"").decode(errors="replace")[-2000:]
        except ValueError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


# ---- load generators ----------------------------------------------------------------------------


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(url: str, scenario: Scenario, seconds: float, pin: bool) -> Result:
    command = [
        "wrk",
        "-t1",
        f"-c{scenario.connections}",
        f"-d{max(1, round(seconds))}s",
        "--latency",
        "--timeout",
        "10s",
    ]
    script = None
    if scenario.body is not None:
        script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
        script.write(
            'wrk.method = "POST"\n'
            f'wrk.headers["Content-Type"] = "{scenario.content_type}"\n'
            f"wrk.body = {lua_string(scenario.body)}\n"
        )
        script.close()
        command += ["-s", script.name]
    command.append(url)
    if pin:
        command = ["taskset", "-c", LOAD_CPUS, *command]
    try:
        out = subprocess.run(command, capture_output=True, text=True, check=True, timeout=seconds + 60).stdout
    finally:
        if script is not None:
            os.unlink(script.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    latency = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+(?:us|ms|s))", out, re.M))

    def percentile(key: str) -> float | None:
        if key not in latency:
            return None
        value, unit = re.match(r"([\d.]+)(us|ms|s)", latency[key]).groups()
        return _ms(value, unit)

    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non_2xx = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0
    return Result("", rps, percentile("50"), percentile("99"), errors, non_2xx, None)


def lua_string(data: bytes) -> str:
    if len(set(data)) == 1:
        return f'string.rep("{chr(data[0])}", {len(data)})'
    return '"' + data.decode().replace("\\", "\\\\").replace('"', '\\"') + '"'


def run_h2load(url: str, scenario: Scenario, seconds: float, pin: bool) -> Result:
    with tempfile.TemporaryDirectory() as work:
        log = Path(work) / "requests.tsv"
        command = ["h2load", "-t1", f"-c{scenario.connections}", "-m16", "-D", str(max(1, round(seconds)))]
        command += [f"--log-file={log}", url]
        if pin:
            command = ["taskset", "-c", LOAD_CPUS, *command]
        out = subprocess.run(command, capture_output=True, text=True, check=True, timeout=seconds + 60).stdout
        p50, p99 = h2load_percentiles(log)
    if url.startswith("https:") and "Application protocol: h2" not in out:
        raise RuntimeError(f"h2load did not negotiate h2 with ALPN:\n{out}")
    rps = float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out).group(1))
    counts = re.search(
        r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored", out
    )
    failed, errored = int(counts.group(5)), int(counts.group(6))
    status = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    non_2xx = sum(int(status.group(i)) for i in (2, 3, 4))
    return Result("", rps, p50, p99, failed + errored, non_2xx, None)


def h2load_percentiles(log: Path) -> tuple[float | None, float | None]:
    """p50 and p99 in ms from h2load's per-request log (`--log-file`: start µs, status, duration
    µs per row; status -1 for a failed stream, left out). h2load itself reports only a mean."""
    durations = sorted(
        int(columns[2])
        for line in log.read_text().splitlines()
        if len(columns := line.split("\t")) >= 3 and columns[1] != "-1"
    )
    if not durations:
        return None, None
    return tuple(durations[min(len(durations) - 1, int(q * len(durations)))] / 1000 for q in (0.5, 0.99))


def run_ws_load(url: str, scenario: Scenario, seconds: float, pin: bool) -> Result:
    """Round trips per second: each connection sends a message and waits for its echo."""
    size = len(scenario.body or b"x")
    ws_url = url.replace("http://", "ws://")
    command = [str(WS_LOAD), ws_url, str(scenario.connections), str(seconds), str(size)]
    if pin:
        command = ["taskset", "-c", LOAD_CPUS, *command]
    out = subprocess.run(command, capture_output=True, text=True, check=True, timeout=seconds + 60).stdout
    report = json.loads(out)
    return Result("", report["messages_per_s"], report["p50_ms"], report["p99_ms"], report["errors"], 0, None)


def run_oha(url: str, scenario: Scenario, seconds: float, pin: bool) -> Result:
    """`scenario.rate` requests per second on a schedule, with latencies corrected for coordinated
    omission: a stall counts against every request that was due during it, not only the one that
    met it. In-flight requests at the deadline are waited for, not counted as errors."""
    command = [
        "oha",
        "-z",
        f"{max(1, round(seconds))}s",
        f"-c{scenario.connections}",
        "-q",
        f"{scenario.rate}",
    ]
    command += ["--latency-correction", "-w", "--no-tui", "--output-format", "json", "--worker-threads", "1"]
    command.append(url)
    if pin:
        command = ["taskset", "-c", LOAD_CPUS, *command]
    out = subprocess.run(command, capture_output=True, text=True, check=True, timeout=seconds + 60).stdout
    report = json.loads(out)
    latency = report["latencyPercentiles"]

    def ms(key: str) -> float | None:
        return None if latency.get(key) is None else latency[key] * 1000

    non_2xx = sum(n for status, n in report["statusCodeDistribution"].items() if not status.startswith("2"))
    errors = sum(report["errorDistribution"].values())
    return Result("", report["summary"]["requestsPerSec"], ms("p50"), ms("p99"), errors, non_2xx, None)


LOADS = {"wrk": run_wrk, "h2load": run_h2load, "ws": run_ws_load, "oha": run_oha}


def measure(name: str, python: str, scenario: Scenario, seconds: float, warmup: float) -> Result:
    server = RunningServer(name, python, scenario)
    try:
        scheme = "https" if scenario.tls else "http"
        url = f"{scheme}://127.0.0.1:{server.port}{scenario.path}"
        load = LOADS[scenario.tool]
        pin = scenario.workers == 1
        if warmup:
            load(url, scenario, warmup, pin)
        result = load(url, scenario, seconds, pin)
        result.server = name
        result.rss_mib = peak_rss_mib(server.proc.pid)
        return result
    finally:
        server.stop()


# ---- the in-process ceiling ---------------------------------------------------------------------


#: The pseudo-server that stands for the in-process ceiling in a FastAPI scenario's rotation.
CEILING = "ceiling"


def with_ceiling_beside(order: list[str], run: int) -> list[str]:
    """`order` with the ceiling measured right beside fasterapi, after it in even runs and before
    it in odd ones: each run's share of the ceiling then compares two figures taken within
    seconds of each other, where this VM's speed drifts by 10-20% over the minutes a run takes."""
    if "fasterapi" not in order:
        return [*order, CEILING]
    at = order.index("fasterapi") + (1 if run % 2 == 0 else 0)
    return [*order[:at], CEILING, *order[at:]]


@dataclass
class Ceiling:
    """The scenario's app called in process, no server (`ceiling.py`), in requests per second."""

    #: Each call awaited in turn: the most any server can reach.
    alone: float
    #: Each call its own asyncio task, started in batches: the least an asyncio server adds.
    tasks: float


def fastapi_ceiling(python: str, scenario: Scenario, seconds: float) -> Ceiling:
    """FastAPI called directly, no server, `seconds` alone and `seconds` in tasks. Measured in each
    run, beside fasterapi (`with_ceiling_beside`)."""
    command = [python, str(BENCHES / "ceiling.py"), "--seconds", str(seconds), "--scenario", scenario.key]
    out = subprocess.run(
        ["taskset", "-c", SERVER_CPUS, *command],
        capture_output=True,
        text=True,
        check=True,
        env=bench_env(),
    ).stdout
    return Ceiling(**json.loads(out)[scenario.key])


# ---- environment --------------------------------------------------------------------------------


def ensure_venv(venv: Path, wheel: Path | None) -> str:
    """A virtualenv with every peer and fasterapi: `wheel`, or else built from this checkout."""
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, "-U", "pip"], check=True)
    subprocess.run(
        [
            *pip,
            "uvicorn[standard]",
            "zttp",  # uvicorn's HTTP/2 (`--http zttp --http2`)
            "granian[uvloop]",
            "hypercorn",
            "uvloop",
            "fastapi",
            "starlette",
            "matplotlib",
        ],
        check=True,
    )
    subprocess.run([*pip, "--force-reinstall", "--no-deps", str(wheel or ROOT)], check=True)
    return str(python)


def environment_prefix(python: str) -> Path:
    """The environment `python` runs in (`sys.prefix`): where the servers' packages are."""
    code = "import sys; print(sys.prefix)"
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout
    return Path(out.strip())


def build_hyper() -> None:
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=HYPER.parents[2], check=True)


def build_ws_load() -> None:
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=WS_LOAD.parents[2], check=True)


def versions(python: str) -> dict[str, str]:
    code = (
        "import importlib.metadata as m, json, platform\n"
        "names = ['fasterapi', 'uvicorn', 'granian', 'hypercorn', 'uvloop', 'httptools', 'zttp', 'starlette',"
        " 'fastapi', 'pydantic']\n"
        "out = {'python': platform.python_version()}\n"
        "for n in names:\n"
        "    try: out[n] = m.version(n)\n"
        "    except m.PackageNotFoundError: pass\n"
        "print(json.dumps(out))"
    )
    found = json.loads(
        subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout
    )
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split(" [")[0].strip()
    h2load = subprocess.run(["h2load", "--version"], capture_output=True, text=True).stdout.strip()
    found["wrk"] = wrk.removeprefix("wrk ").split()[0] if wrk else "?"
    found["h2load"] = h2load.split()[-1] if h2load else "?"
    return found


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return f"{cpu}, {os.cpu_count()} cores, Linux {platform.release()}"


#: The load generators and helpers the suite runs, and how to install each.
TOOLS = {
    "wrk": "Debian: apt install wrk",
    "h2load": "Debian: apt install nghttp2-client",
    "oha": "cargo install oha --locked",
    "taskset": "Debian: apt install util-linux",
    "openssl": "Debian: apt install openssl",
}


def tools_needed(scenarios: list[Scenario]) -> list[str]:
    """The tools of `TOOLS` that these scenarios run (ws_load is built here, not installed)."""
    needed = (
        {"taskset"} | {s.tool for s in scenarios} | ({"openssl"} if any(s.tls for s in scenarios) else set())
    )
    return [tool for tool in TOOLS if tool in needed]


# ---- main ---------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="1 s per scenario, fasterapi only, no reports")
    parser.add_argument("--only", help="comma-separated scenario keys")
    parser.add_argument("--servers", help="comma-separated servers (default: all for each scenario)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--warmup", type=float, default=1)
    parser.add_argument("--python", help="use this interpreter instead of making benches/.venv")
    parser.add_argument(
        "--pgo-wheel",
        type=Path,
        help="install this wheel, a PGO build by `benches/pgo.py`, in benches/.venv (make bench)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        help="results file, its report rendered beside it (default: benches/results.json and docs/ "
        "for a full run, benches/partial.json for one narrowed by --only or --servers)",
    )
    args = parser.parse_args()

    scenarios = SCENARIOS
    if args.only:
        wanted = args.only.split(",")
        unknown = set(wanted) - {s.key for s in SCENARIOS}
        if unknown:
            print(f"benches: unknown scenario(s): {', '.join(sorted(unknown))}", file=sys.stderr)
            return 2
        scenarios = [s for s in SCENARIOS if s.key in wanted]
    for tool in tools_needed(scenarios):
        if shutil.which(tool) is None:
            print(f"benches: {tool} is not installed ({TOOLS[tool]})", file=sys.stderr)
            return 2
    if args.pgo_wheel and (args.python or args.smoke):
        # Only benches/.venv gets the wheel; the results would call another build the PGO one.
        print(
            "benches: --pgo-wheel installs into benches/.venv, so not with --python or --smoke",
            file=sys.stderr,
        )
        return 2
    if args.smoke:
        args.runs, args.seconds, args.warmup, servers = 1, 1, 0, ["fasterapi"]
    else:
        servers = args.servers.split(",") if args.servers else None
    python = os.path.abspath(args.python) if args.python else None
    python = python or (sys.executable if args.smoke else ensure_venv(BENCHES / ".venv", args.pgo_wheel))
    prefix = environment_prefix(python)
    print(f"benches: {drop_shared_objects(prefix)} shared objects under {prefix} dropped from the page cache")
    if not args.smoke and (servers is None or "hyper" in servers):
        build_hyper()
    if any(s.tool == "ws" for s in scenarios):
        build_ws_load()

    reports = []
    ceilings: dict[str, list[Ceiling]] = {}
    shares: dict[str, list[float]] = {}
    for scenario in scenarios:
        names = [s for s in scenario.servers if servers is None or s in servers]
        report = ScenarioReport(scenario.key, scenario.title, {name: [] for name in names}, scenario.rate)
        with_ceiling = scenario.has_ceiling  # in the smoke run too: so that ceiling.py never rots
        for run in range(args.runs):
            order = names[run % len(names) :] + names[: run % len(names)] if names else []
            if with_ceiling:
                order = with_ceiling_beside(order, run)
            for name in order:
                if name == CEILING:
                    rate = fastapi_ceiling(python, scenario, args.seconds)
                    ceilings.setdefault(scenario.key, []).append(rate)
                    print(
                        f"{scenario.key:20} {name:10} run {run + 1}: {rate.alone:>10,.0f} req/s  "
                        f"in tasks {rate.tasks:,.0f}",
                        flush=True,
                    )
                    continue
                result = measure(name, python, scenario, args.seconds, args.warmup)
                report.runs[name].append(result)
                print(
                    f"{scenario.key:20} {name:10} run {run + 1}: {result.rps:>10,.0f} req/s  "
                    f"p50 {fmt_ms(result.p50_ms)}  p99 {fmt_ms(result.p99_ms)}  "
                    f"errors {result.errors}  non-2xx {result.non_2xx}  rss {fmt_mib(result.rss_mib)}",
                    flush=True,
                )
        if with_ceiling and "fasterapi" in names:
            pairs = zip(report.runs["fasterapi"], ceilings[scenario.key], strict=True)
            shares[scenario.key] = [ours.rps / ceiling.alone for ours, ceiling in pairs]
        reports.append(report)
    split = time_split(python, [s.key for s in scenarios], servers, args)

    failures = [
        f"{r.scenario} {name}"
        for r in reports
        for name in r.runs
        if (m := r.median(name)).rps <= 0
        or (name == "fasterapi" and (m.errors or m.non_2xx or m.p99_ms is None))
    ]
    failed = "benches: errors, no responses or no latencies in: " + ", ".join(failures)
    if args.smoke:
        if failures:
            print(failed, file=sys.stderr)
            return 1
        if split:
            print(f"benches: where a {split.scenario} request's time goes, in µs: {split}")
        print("benches: smoke run clean")
        return 0

    ceiling = {key: statistics.median(rate.alone for rate in rates) for key, rates in ceilings.items()}
    ceiling_tasks = {key: statistics.median(rate.tasks for rate in rates) for key, rates in ceilings.items()}
    data = {
        "machine": machine(),
        "versions": versions(python),
        "settings": {
            "runs": args.runs,
            "seconds": args.seconds,
            "warmup": args.warmup,
            "build": "pgo" if args.pgo_wheel else "checkout",
            "page_cache": "dropped",
        },
        "ceiling": ceiling,
        "ceiling_tasks": ceiling_tasks,
        "ceiling_share": {key: statistics.median(ratios) for key, ratios in shares.items()},
        "split": asdict(split) if split else None,
        "scenarios": [
            {
                "key": r.scenario,
                "title": r.title,
                "rate": r.rate,
                "runs": {n: [asdict(x) for x in rs] for n, rs in r.runs.items()},
            }
            for r in reports
        ],
    }
    from report import PUBLISHED, report_paths, write_report

    output = args.output or (BENCHES / "partial.json" if args.only or args.servers else PUBLISHED)
    output.write_text(json.dumps(data, indent=1) + "\n")
    markdown, png = report_paths(output)
    write_report(data, markdown, png, python)
    print(f"benches: results in {output}, report in {markdown}")
    if failures:
        print(failed, file=sys.stderr)
    return 0


def time_split(
    python: str, keys: list[str], servers: list[str] | None, args: argparse.Namespace
) -> Split | None:
    """Where a FastAPI GET's time goes in fasterapi (`split.py`), when that scenario ran for it:
    the medians of as many rounds as the scenarios had runs."""
    if "fastapi-get" not in keys or (servers is not None and "fasterapi" not in servers):
        return None
    from split import measure_split_rounds

    return measure_split_rounds(python, "fastapi-get", args.seconds, args.warmup, args.runs)


def fmt_ms(value: float | None) -> str:
    return "   -    " if value is None else f"{value:6.2f}ms"


def fmt_mib(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} MiB"


if __name__ == "__main__":
    sys.exit(main())
