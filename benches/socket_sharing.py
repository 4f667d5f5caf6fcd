"""Which way of sharing a port spreads load better across worker processes?

Starts N single-process `fasterapi --fd` servers either on one inherited listening socket (what
`--workers` does) or on N sockets bound with SO_REUSEPORT, drives them with wrk, and reports
requests/s and each process's share of the CPU time it used.

    python benches/socket_sharing.py [--workers 2] [--connections 64] [--seconds 5]
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

from run import wait_listening

ROOT = Path(__file__).resolve().parent.parent
TICKS = os.sysconf("SC_CLK_TCK")


def listening_socket(port: int, reuseport: bool) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuseport:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def measure(mode: str, workers: int, connections: int, seconds: int) -> tuple[float, list[float]]:
    first = listening_socket(0, reuseport=mode == "reuseport")
    port = first.getsockname()[1]
    sockets = (
        [first] if mode == "shared" else [first] + [listening_socket(port, True) for _ in range(workers - 1)]
    )
    procs = []
    for index in range(workers):
        fd = sockets[index % len(sockets)].fileno()
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "fasterapi",
                    "examples.hello:app",
                    "--fd",
                    str(fd),
                    "--no-access-log",
                    "--log-level",
                    "warning",
                ],
                cwd=ROOT,
                pass_fds=[fd],
            )
        )
    try:
        wait_listening(port)
        subprocess.run(["wrk", "-t2", "-c64", "-d1s", f"http://127.0.0.1:{port}/"], capture_output=True)
        before = [cpu_seconds(p.pid) for p in procs]
        out = subprocess.run(
            ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", f"http://127.0.0.1:{port}/"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        used = [cpu_seconds(p.pid) - b for p, b in zip(procs, before, strict=True)]
        rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
        total = sum(used) or 1.0
        return rate, [u / total for u in used]
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait()
        for sock in sockets:
            sock.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    for run in range(args.runs):
        for mode in ("shared", "reuseport"):
            rate, shares = measure(mode, args.workers, args.connections, args.seconds)
            spread = " ".join(f"{share:.0%}" for share in shares)
            print(f"run {run + 1} {mode:9} {rate:>10,.0f} req/s   CPU share per worker: {spread}", flush=True)


if __name__ == "__main__":
    main()
