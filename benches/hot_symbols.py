"""Write `src/hot_symbols.txt`: the extension's functions that serve requests, in the order to lay
them out.

    .venv/bin/python benches/hot_symbols.py     # after `make dev`; takes about a minute
    .venv/bin/python benches/pgo.py wheel --out target/pgo/wheels
    .venv/bin/python benches/hot_symbols.py --pgo-wheel target/pgo/wheels/*.whl   # both builds

The linker lays these functions out first and together (`src/build.rs` passes the file to lld's
`--symbol-ordering-file`), so the code a worker runs sits in a few hundred contiguous KiB of the
4 MiB of text instead of being spread over all of it. The kernel maps a shared library's text 64 KiB
at a time around each page touched, so this is what a worker keeps resident (and what the
instruction cache and TLB see). The profile is fasterapi under callgrind serving the benchmark
scenarios in three tiers, each listed costliest first after the functions of the tiers before it:
plain HTTP (raw hello over HTTP/1.1 and h2c, request and response streaming, FastAPI GET and POST,
clients that hang up mid-request as a load generator's do when its time is up), then WebSocket
echo, then HTTP/2 and HTTP/1.1 over TLS. A worker serving plain HTTP keeps only the first tier's
code resident.

The PGO build (`benches/pgo.py`, what `make bench` measures) inlines differently and so has some
functions the release build lacks (about 130 of its hot ones); `--pgo-wheel` profiles it too and
lists, tier by tier, the functions both builds ran, then those only one did: each build finds its
own functions in order and passes over the other's names.

Symbol names carry a hash of the crate's version and of the toolchain, so regenerate the file after
upgrading Rust or a dependency: `tests/test_layout.py` fails when most of its names have gone.
"""

from __future__ import annotations

import argparse
import bisect
import re
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from apps import JSON_ITEM
from fasterapi import _fasterapi
from instructions import Load, run_under_callgrind
from run import BENCHES, unpack_wheel
from websockets.sync.client import connect

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


def websocket_echo(port: int) -> None:
    """Text and binary messages echoed over one WebSocket."""
    with connect(f"ws://127.0.0.1:{port}/") as websocket:
        for n in range(200):
            websocket.send(f"message {n}" if n % 2 else b"x" * n)
            websocket.recv()


def profiles(work: Path, build: Path | None) -> list[list[Path]]:
    """Profile the benchmark apps under their loads, in tiers: plain HTTP, WebSocket, TLS, served
    by `build` (an unpacked fasterapi) or else the installed one. Return each tier's callgrind
    files."""
    body16k, item = work / "16k.bin", work / "item.json"
    body16k.write_bytes(b"x" * 16384)
    item.write_bytes(JSON_ITEM)
    h1, h2c = ["--h1", "-c16"], ["-c4", "-m16"]
    post_item = [*h1, "-d", str(item), "-H", "content-type: application/json"]
    tiers: list[list[tuple[str, bool, list[Load]]]] = [
        [
            (
                "apps:raw",
                False,
                [
                    ("/", 2000, h1),
                    ("/", 2000, h2c),
                    ("/echo", 500, [*h1, "-d", str(body16k)]),
                    ("/stream", 100, h1),
                    hang_up("/sleep"),
                ],
            ),
            (
                "framework_apps:fastapi_app",
                False,
                [("/items/42?q=x", 1000, h1), ("/items", 1000, post_item), hang_up("/items/42?q=x")],
            ),
        ],
        [("apps:raw", False, [websocket_echo])],
        [("apps:raw", True, [("/", 1000, h2c), ("/", 500, h1)])],  # h2 by ALPN, and HTTP/1.1
    ]
    files = []
    for n, tier in enumerate(tiers):
        for m, (app, tls, loads) in enumerate(tier):
            out = work / f"tier{n}-{m}"
            run_under_callgrind(sys.executable, app, loads, out, "--demangle=no", tls=tls, build=build)
        files.append(sorted(work.glob(f"tier{n}-*.*")))
    return files


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


def function_at(library: str) -> Callable[[str], str]:
    """Names an address callgrind gave no symbol (C runtime start-up code, such as `frame_dummy`)
    by the function of `library` it falls in; passes names through."""
    listing = subprocess.run(
        ["nm", "-n", "--defined-only", library], capture_output=True, text=True, check=True
    )
    functions = [(int(f[0], 16), f[2]) for f in map(str.split, listing.stdout.splitlines()) if f[1] in "tTwW"]
    starts = [address for address, _ in functions]

    def symbol_of(function: str) -> str:
        if not function.startswith("0x"):
            return function
        return functions[max(bisect.bisect_right(starts, int(function, 16)) - 1, 0)][1]

    return symbol_of


def tiers_of_functions(work: Path, build: Path | None) -> list[list[str]]:
    """Profile `build` (an unpacked fasterapi) or else the installed one; each tier's functions,
    costliest first."""
    work.mkdir(parents=True, exist_ok=True)
    library = next(build.glob("fasterapi/_fasterapi.*.so")) if build else _fasterapi.__file__
    symbol_of = function_at(str(library))
    tiers = []
    for tier in profiles(work, build):
        cost: Counter[str] = Counter()
        for profile in tier:
            cost.update(self_cost(profile))
        tiers.append([symbol_of(function) for function, _ in cost.most_common()])
    return tiers


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--pgo-wheel", type=Path, help="a PGO build's wheel to profile too")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        builds = [tiers_of_functions(Path(work) / "release", None)]  # the installed build
        if args.pgo_wheel:
            pgo = unpack_wheel(args.pgo_wheel, Path(work) / "pgo" / "package")
            builds.append(tiers_of_functions(Path(work) / "pgo", pgo))
    symbols: dict[str, None] = {}  # in order: each tier's functions the tiers before did not run
    for tier in zip(*builds, strict=True):
        # What every build ran comes first, so that neither build's hot code has functions of the
        # other's (that it has too, but does not run) in its midst; then what each build ran alone.
        everywhere = set.intersection(*map(set, tier))
        symbols.update(dict.fromkeys(name for name in tier[0] if name in everywhere))
        for functions in tier:
            symbols.update(dict.fromkeys(functions))
    args.output.write_text("".join(f"{name}\n" for name in symbols))
    print(f"{len(symbols)} functions ran: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
