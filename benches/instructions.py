"""User-space instructions per request, counted by callgrind: a repeatable figure on a noisy machine.

    python benches/instructions.py                                  # raw hello, 64 connections
    python benches/instructions.py --app framework_apps:starlette_app --path /plaintext --top 25
    python benches/instructions.py --h2 --connections 16            # h2c, 16 x 16 streams
    python benches/instructions.py --app framework_apps:fastapi_app --path '/items/42?q=x' --cache-sim

Runs fasterapi under `valgrind --tool=callgrind` twice, once serving no request and once serving N
(`h2load`, HTTP/1.1 or h2c), and divides the difference by N, so startup and imports cancel out.
The same build, app and load give the same count to within about 0.5% whatever else the machine is
doing, where wall-clock A/B runs on a shared VM vary by 10%. Kernel time (the TCP stack) is not
counted: use it to compare builds, not to predict requests per second. `--top K` lists the
functions whose instructions per request changed the most between the two runs, i.e. where a
request's go. `--cache-sim` also counts the misses of callgrind's simulated first-level caches
(instruction and data): code that runs among a big app's finds its lines evicted, and pays for it
in misses that an instruction count does not show.
"""

from __future__ import annotations

import argparse
import re
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from run import BENCHES, bench_certificate, bench_env, free_port, wait_listening

#: One load: the path, how many requests and h2load's options (`--h1`, `-c64`, `-d body`...), or a
#: client of its own, called with the server's port.
Load = tuple[str, int, list[str]] | Callable[[int], None]


def run_under_callgrind(
    python: str,
    app: str,
    loads: list[Load],
    out: Path,
    *valgrind_options: str,
    tls: bool = False,
    build: Path | None = None,
) -> Counter[str]:
    """Serve each load in turn under callgrind (over TLS, on the benchmark certificate, with `tls`);
    return the events counted in all threads (`Ir`, instructions; with `--cache-sim=yes` the cache
    misses too: `I1mr`, `D1mr`, `D1mw`...). `build` is a directory holding an unpacked fasterapi for
    the server to load instead of the installed one."""
    port = free_port()
    cert, key = bench_certificate() if tls else ("", "")
    server = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}.%p", *valgrind_options]
        + [python, "-m", "fasterapi", app, "--port", str(port), "--no-access-log", "--log-level", "warning"]
        + (["--ssl-certfile", cert, "--ssl-keyfile", key] if tls else []),
        cwd=BENCHES,
        env=bench_env(build),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_listening(port, server, timeout=180)
        for load in loads:
            if callable(load):
                load(port)
                continue
            path, requests, options = load
            command = [
                "h2load",
                "-t1",
                f"-n{requests}",
                *options,
                f"{'https' if tls else 'http'}://127.0.0.1:{port}{path}",
            ]
            report = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            if f"{requests} succeeded" not in report:
                raise RuntimeError(f"not every request succeeded:\n{report}")
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=180)
    events: Counter[str] = Counter()
    for profile in out.parent.glob(out.name + ".*"):
        text = profile.read_text()
        names = re.search(r"^events: (.+)$", text, re.M)
        for totals in re.finditer(r"^totals: (.+)$", text, re.M):
            assert names, f"{profile} has totals but names no events"
            events.update(dict(zip(names.group(1).split(), map(int, totals.group(1).split()), strict=True)))
    return events


def per_function(prefix: Path) -> Counter[str]:
    """Instructions per function (exclusive), summed over the profile files of one run."""
    counts: Counter[str] = Counter()
    for profile in prefix.parent.glob(prefix.name + ".*"):
        command = ["callgrind_annotate", "--threshold=100", str(profile)]
        report = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        for line in report.splitlines():
            match = re.match(r"\s*([\d,]+) \([^)]*\)\s+(\S.*?)(?: \[[^\]]*\])?$", line)
            if match and "PROGRAM TOTALS" not in line:
                name = re.sub(r"^/tmp/python-build[^:]*/", "", match.group(2))
                counts[name] += int(match.group(1).replace(",", ""))
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--app", default="apps:raw")
    parser.add_argument("--path", default="/")
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--h2", action="store_true", help="h2c with 16 streams per connection")
    parser.add_argument("--top", type=int, default=0, help="also list the K costliest functions per request")
    parser.add_argument("--cache-sim", action="store_true", help="also count first-level cache misses")
    parser.add_argument("--python", default=sys.executable)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        idle, busy = Path(work) / "idle", Path(work) / "busy"
        load = [f"-c{args.connections}", *(["-m16"] if args.h2 else ["--h1"])]
        options = ["--cache-sim=yes"] if args.cache_sim else []
        base = run_under_callgrind(args.python, args.app, [], idle, *options)
        total = run_under_callgrind(args.python, args.app, [(args.path, args.requests, load)], busy, *options)
        per_request = {event: (total[event] - base[event]) / args.requests for event in total}
        print(f"{args.app} {args.path}: {per_request['Ir']:,.0f} instructions per request")
        if args.cache_sim:
            misses = ", ".join(f"{event} {per_request[event]:,.0f}" for event in ("I1mr", "D1mr", "D1mw"))
            print(f"first-level cache misses per request: {misses}")
        if args.top:
            before, after = per_function(idle), per_function(busy)
            changed = {name: (after[name] - before.get(name, 0)) / args.requests for name in after}
            for name, cost in sorted(changed.items(), key=lambda item: -item[1])[: args.top]:
                print(f"{cost:>9,.0f}  {name[:140]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
