"""Where a request's time goes inside fasterapi: the app's own call, the rest of the loop thread,
the I/O threads, in microseconds of CPU per request, beside the app alone (the in-process ceiling).

    python benches/split.py                          # FastAPI GET, 5 s
    python benches/split.py --scenario fastapi-post --seconds 10
    python benches/split.py --rounds 5                # each figure the median of 5 rounds

fasterapi serves the scenario's app wrapped in `timed_app`, which adds up the loop thread's CPU
time inside each app call; the load is the benchmark's (wrk on the other core, after a warm-up);
each server thread's CPU time comes from /proc/PID/task/TID/schedstat, read once the server
listens and again when the load is over. `make bench` runs this for FastAPI GET and reports it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from run import SCENARIOS, RunningServer, fastapi_ceiling, run_wrk


@dataclass
class Split:
    """Microseconds per request."""

    scenario: str
    #: 1 / (requests per second) under the load: the server's whole cost, whatever it is spent on.
    wall_us: float
    #: The loop thread's CPU inside the app's calls, its calls to `receive` and `send` included.
    app_us: float
    #: The rest of the loop thread: scopes, cycles and tasks made, tasks stepped, the event loop.
    loop_us: float
    #: Every other thread of the server: HTTP in hyper and the kernel's TCP work in its system calls.
    io_us: float
    #: The app called in a loop with no server (`ceiling.py`), before and after the server.
    ceiling_us: float
    #: The same calls each made an asyncio task, as a server must (`ceiling.py`).
    tasks_us: float

    def __str__(self) -> str:
        return (
            f"app {self.app_us:.1f}, loop {self.loop_us:.1f}, I/O {self.io_us:.1f}, wall {self.wall_us:.1f}, "
            f"app alone {self.ceiling_us:.1f}, in tasks {self.tasks_us:.1f}"
        )


def thread_cpu_ns(pid: int) -> dict[int, int]:
    """CPU time so far of each thread of process `pid`, in nanoseconds."""
    return {
        int(task.name): int((task / "schedstat").read_text().split()[0])
        for task in Path(f"/proc/{pid}/task").iterdir()
    }


def measure_split(python: str, key: str, seconds: float, warmup: float) -> Split:
    scenario = next(s for s in SCENARIOS if s.key == key)
    timed = replace(scenario, app="timed_app:app")
    # The ceiling is measured before and after the server and averaged: this VM's speed drifts.
    ceiling_before = fastapi_ceiling(python, scenario, seconds)
    with tempfile.TemporaryDirectory() as work:
        totals_file = Path(work) / "timed.json"
        env = {"TIMED_APP": scenario.app, "TIMED_OUT": str(totals_file)}
        server = RunningServer("fasterapi", python, timed, env)
        try:
            pid = server.proc.pid
            before = thread_cpu_ns(pid)
            url = f"http://127.0.0.1:{server.port}{scenario.path}"
            if warmup:
                run_wrk(url, timed, warmup, pin=True)
            result = run_wrk(url, timed, seconds, pin=True)
            after = thread_cpu_ns(pid)
        finally:
            server.stop()
        totals = json.loads(totals_file.read_text())
    if totals["overlapped"] or not totals["calls"]:
        raise RuntimeError(f"{key}: {totals['overlapped']} of {totals['calls']} app calls waited: not timed")
    calls = totals["calls"]
    spent = {tid: after[tid] - before.get(tid, 0) for tid in after}
    # The two clock reads around each call: about one inside the timed span, one outside it.
    clock_half = totals["clock_pair_ns"] / 2
    app_ns = totals["app_ns"] / calls - clock_half
    loop_ns = spent.pop(totals["thread"]) / calls - app_ns - 2 * clock_half
    ceiling_after = fastapi_ceiling(python, scenario, seconds)
    ceiling_us = 2e6 / (ceiling_before.alone + ceiling_after.alone)
    tasks_us = 2e6 / (ceiling_before.tasks + ceiling_after.tasks)
    return Split(
        scenario=key,
        wall_us=1e6 / result.rps,
        app_us=app_ns / 1e3,
        loop_us=loop_ns / 1e3,
        io_us=sum(spent.values()) / calls / 1e3,
        ceiling_us=ceiling_us,
        tasks_us=tasks_us,
    )


def measure_split_rounds(python: str, key: str, seconds: float, warmup: float, rounds: int) -> Split:
    """`measure_split` `rounds` times; each figure the median of the rounds' (one round's split is
    at the mercy of this VM's drift)."""
    splits = [measure_split(python, key, seconds, warmup) for _ in range(rounds)]

    def median(name: str) -> float:
        return statistics.median(getattr(split, name) for split in splits)

    figures = [field.name for field in fields(Split) if field.name != "scenario"]
    return Split(scenario=key, **{name: median(name) for name in figures})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    choices = [s.key for s in SCENARIOS if s.has_ceiling]
    parser.add_argument("--scenario", default="fastapi-get", choices=choices)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--warmup", type=float, default=1)
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--rounds", type=int, default=1, help="measure this many times; print the medians")
    args = parser.parse_args()
    split = measure_split_rounds(args.python, args.scenario, args.seconds, args.warmup, args.rounds)
    print(f"{split.scenario}, microseconds per request: {split}")
    print(json.dumps(asdict(split)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
