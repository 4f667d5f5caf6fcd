"""Write `src/hot_symbols.txt`: the extension's functions that serve requests, costliest first.

    .venv/bin/python benches/hot_symbols.py     # after `make dev`; takes under a minute

The linker lays these functions out first and together (`src/build.rs` passes the file to lld's
`--symbol-ordering-file`), so the code a worker runs sits in a few hundred contiguous KiB of the
4 MiB of text instead of being spread over all of it. The kernel maps a shared library's text 64 KiB
at a time around each page touched, so this is what a worker keeps resident (and what the
instruction cache and TLB see). The profile is fasterapi under callgrind serving the benchmark
scenarios: raw hello over HTTP/1.1 and h2c, request and response streaming, FastAPI GET and POST,
and clients that hang up mid-request (as a load generator's do when its time is up).

Symbol names carry a hash of the crate's version and of the toolchain, so regenerate the file after
upgrading Rust or a dependency: `tests/test_layout.py` fails when most of its names have gone.
"""

from __future__ import annotations

import argparse
import re
import socket
import struct
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from apps import JSON_ITEM
from instructions import Load, run_under_callgrind
from run import BENCHES

ROOT = BENCHES.parent
OUTPUT = ROOT / "src" / "hot_symbols.txt"
EXTENSION = "/_fasterapi."


def hang_up(path: str) -> Callable[[int], None]:
    """Clients that leave mid-request, as a load generator's connections do when its time is up."""

    def run(port: int) -> None:
        for request in (f"GET {path} HTTP/1.1\r\nhost: x\r\n\r\n", f"GET {path} HTTP/1.1\r\nho"):
            for reset in (False, True):
                clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(16)]
                for client in clients:
                    client.sendall(request.encode())
                    if reset:
                        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    client.close()  # before the response
                time.sleep(1)

    return run


def profiles(work: Path) -> list[Path]:
    """Profile each benchmark app under its loads; return the callgrind files."""
    body16k, item = work / "16k.bin", work / "item.json"
    body16k.write_bytes(b"x" * 16384)
    item.write_bytes(JSON_ITEM)
    h1, h2c = ["--h1", "-c16"], ["-c4", "-m16"]
    runs: dict[str, list[Load]] = {
        "apps:raw": [
            ("/", 2000, h1),
            ("/", 2000, h2c),
            ("/echo", 500, [*h1, "-d", str(body16k)]),
            ("/stream", 100, h1),
            hang_up("/sleep"),
        ],
        "framework_apps:fastapi_app": [
            ("/items/42?q=x", 1000, h1),
            ("/items", 1000, [*h1, "-d", str(item), "-H", "content-type: application/json"]),
            hang_up("/items/42?q=x"),
        ],
    }
    for n, (app, loads) in enumerate(runs.items()):
        run_under_callgrind(sys.executable, app, loads, work / f"run{n}", "--demangle=no")
    return sorted(work.glob("run*.*"))


def self_cost(profile: Path) -> Counter[str]:
    """Instructions each function of the extension ran itself (callees excluded), by symbol."""
    names: dict[str, dict[str, str]] = {"ob": {}, "fn": {}}
    cost: Counter[str] = Counter()
    ours, function, call_follows = False, "", False
    for line in profile.read_text().splitlines():
        if match := re.match(r"(c?)(ob|fn)=\((\d+)\)(?: (.*))?$", line):
            called, kind, key, name = match.groups()
            if name:
                names[kind][key] = name
            if not called:  # cob= and cfn= name a callee; ob= and fn= the function costs go to
                if kind == "ob":
                    ours = EXTENSION in names["ob"][key]
                else:
                    function = names["fn"][key]
        elif line.startswith("calls="):
            call_follows = True  # the next cost line is the call's, not the function's own
        elif line[:1].isdigit() or line[:1] in "+-*":
            if call_follows:
                call_follows = False
            elif ours and len(fields := line.split()) > 1:
                cost[re.sub(r"'\d+$", "", function)] += int(fields[1])
    return cost


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        cost: Counter[str] = Counter()
        for profile in profiles(Path(work)):
            cost.update(self_cost(profile))
    symbols = [name for name, _ in cost.most_common() if not name.startswith("0x")]
    args.output.write_text("".join(f"{name}\n" for name in symbols))
    print(f"{len(symbols)} functions ran: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
