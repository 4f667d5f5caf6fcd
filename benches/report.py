"""Turn `benches/results.json` into `docs/benchmarks.md` and the ratio plot `docs/benchmarks.png`.

python benches/report.py [benches/results.json]     # re-render without re-measuring

Any other results file (a partial run's) renders beside itself: `x.json` → `x.md` and `x.png`.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PEERS = ("granian", "uvicorn", "hypercorn")
OPTIMISATIONS = Path(__file__).with_name("optimisations.md")
#: The published results: only a full run writes them, and they render into `docs/`.
PUBLISHED = ROOT / "benches" / "results.json"

#: Scenarios whose p99 must be ≤ granian's and uvicorn's: at 64 connections as fast as they can go,
#: and at a fixed rate that every one of them keeps up with.
LATENCY_TARGETS = ("hello-h1-64", "hello-h1-20k")

# (scenario keys, peer, minimum fasterapi / peer ratio) from the benchmark issue's targets.
TARGETS: list[tuple[tuple[str, ...], str, float]] = [
    (("hello-h1-64", "hello-h1-256"), "granian", 1.3),
    (("hello-h1-64", "hello-h1-256"), "uvicorn", 2.0),
    (("hello-h2c",), "granian", 1.5),
    (("hello-h2c",), "hypercorn", 20.0),
    (("starlette-plaintext", "starlette-json"), "granian", 1.25),
    (("echo-16k",), "granian", 1.3),
    (("fastapi-get", "fastapi-post"), "best", 1.1),
]


def medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    def med(key: str) -> float | None:
        values = [r[key] for r in runs if r[key] is not None]
        return statistics.median(values) if values else None

    return {
        "rps": med("rps"),
        "p50_ms": med("p50_ms"),
        "p99_ms": med("p99_ms"),
        "errors": sum(r["errors"] for r in runs),
        "non_2xx": sum(r["non_2xx"] for r in runs),
        "rss_mib": med("rss_mib"),
        "rps_range": (min(r["rps"] for r in runs), max(r["rps"] for r in runs)),
    }


def summarise(data: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    return {s["key"]: {name: medians(runs) for name, runs in s["runs"].items()} for s in data["scenarios"]}


def ratio(table: dict[str, dict[str, Any]], peer: str) -> float | None:
    ours = table.get("fasterapi", {}).get("rps")
    theirs = table.get(peer, {}).get("rps")
    return ours / theirs if ours and theirs else None


def _num(value: float | None, pattern: str) -> str:
    return "–" if value is None else format(value, pattern)


def target_rows(
    summary: dict[str, dict[str, dict[str, Any]]],
    ceiling: dict[str, float],
    shares: dict[str, float],
    ceiling_tasks: dict[str, float],
) -> list[str]:
    """The targets table's rows. `shares`: fasterapi's share of the ceiling, the median over the
    runs of each run's pair (results from before the pairs have none: the ratio of the medians).
    `ceiling_tasks`: the app in a task per request (results from before it was measured have none:
    the bound then starts from the ceiling itself)."""
    rows = []
    for keys, peer, minimum in TARGETS:
        for key in keys:
            table = summary.get(key)
            if not table:
                continue
            if peer == "best":
                peers = [p for p in ("granian", "uvicorn") if p in table]
                if not peers:
                    continue
                best = max(peers, key=lambda p: table[p]["rps"])
                got, label = ratio(table, best), f"≥ {minimum}× the better of granian/uvicorn ({best})"
            else:
                if peer not in table:
                    continue
                got, label = ratio(table, peer), f"≥ {minimum}× {peer}"
            rows.append(
                f"| {key} | {label} | {_num(got, '.2f')}× | {'met' if got and got >= minimum else 'missed'} |"
            )
        if peer == "best":
            hyper = summary.get("hello-h1-64", {}).get("hyper", {}).get("rps")
            for key in keys:
                if key in ceiling and key in summary and "fasterapi" in summary[key]:
                    share = shares.get(key) or summary[key]["fasterapi"]["rps"] / ceiling[key]
                    met = "met" if share >= 0.9 else "missed"
                    target = f"≥ 90% of the in-process ceiling ({ceiling[key]:,.0f}/s)"
                    measured = f"{share:.0%}"
                    if hyper:
                        bound = attainable(ceiling_tasks.get(key, ceiling[key]), hyper) / ceiling[key]
                        measured += f" (at most {bound:.0%}¹)"
                    rows.append(f"| {key} | {target} | {measured} | {met} |")
    for key, table in summary.items():
        if "fasterapi" in table and key in LATENCY_TARGETS:
            ours = table["fasterapi"]["p99_ms"]
            others = [table[p]["p99_ms"] for p in ("granian", "uvicorn") if p in table and table[p]["p99_ms"]]
            if ours is not None and others:
                met = "met" if ours <= min(others) else "missed"
                measured = f"{ours:.2f} ms vs {min(others):.2f} ms"
                rows.append(f"| {key} | p99 ≤ granian's and uvicorn's | {measured} | {met} |")
    fastapi = summary.get("fastapi-get", {})
    if "fasterapi" in fastapi and "uvicorn" in fastapi and fastapi["uvicorn"]["rss_mib"]:
        ours, theirs = fastapi["fasterapi"]["rss_mib"], fastapi["uvicorn"]["rss_mib"]
        met = "met" if ours <= theirs else "missed"
        rows.append(f"| fastapi-get | peak RSS ≤ uvicorn's | {ours:.1f} MiB vs {theirs:.1f} MiB | {met} |")
    return rows


def attainable(in_tasks: float, hyper: float) -> float:
    """The most a server on one core can serve of an app that runs at `in_tasks` req/s when each
    call is its own asyncio task: that cost plus the HTTP and TCP work alone, as a pure-hyper server
    pays it (`hyper`)."""
    return 1 / (1 / in_tasks + 1 / hyper)


ATTAINABLE_NOTE = (
    "¹ The server, the kernel's TCP work and the app share one core. A server with no ASGI cost of "
    "its own would still run each request as an asyncio task (what `asyncio.current_task()`, "
    "anyio's cancel scopes and per-request context variables rely on; `ceiling.py` measures the app "
    "so too, starting the tasks in batches as fasterapi does) and pay what the pure-hyper hello "
    "world pays per request (hello-h1-64), so it could reach at most 1 / (1/in-tasks + 1/hyper) of "
    "the app alone: that bound, in the same run. Where fasterapi's share of the time goes is "
    "measured below (*Where a FastAPI GET's time goes*)."
)


def split_section(split: dict[str, Any] | None, summary: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    """Where a FastAPI GET's time goes in fasterapi (`split.py`), when the run measured it."""
    if not split:
        return []
    hyper = summary.get("hello-h1-64", {}).get("hyper")
    rows = [("the app alone, called in a loop with no server (`ceiling.py`)", split["ceiling_us"])]
    if split.get("tasks_us") is not None:  # measured since 2026-12
        in_tasks = "the app alone, each call an asyncio task, started in batches as a server does"
        rows.append((in_tasks, split["tasks_us"]))
    rows += [
        ("the app inside fasterapi, its calls to `receive` and `send` included", split["app_us"]),
        ("fasterapi's loop thread around the app: scope, cycle, task, event loop", split["loop_us"]),
        ("fasterapi's I/O thread: HTTP in hyper, TCP in the kernel's system calls", split["io_us"]),
        ("fasterapi in all: 1 / (requests per second)", split["wall_us"]),
    ]
    if hyper:
        rows.append(("for comparison, the whole pure-hyper hello world (hello-h1-64)", 1e6 / hyper["rps"]))
    return [
        "## Where a FastAPI GET's time goes",
        "",
        "Per request, in the same run: fasterapi serves the app wrapped in a timer that reads the loop "
        "thread's CPU clock around each call (`benches/split.py`, `benches/timed_app.py`), each thread's "
        "CPU time is read from `/proc`, and the app alone is measured just before and after; as many "
        "rounds as the scenarios have runs, each figure the median of the rounds.",
        "",
        "| | µs per request |",
        "| --- | ---: |",
        *(f"| {label} | {_num(value, '.1f')} |" for label, value in rows),
        "",
    ]


def write_report(data: dict[str, Any], markdown: Path, png: Path, python: str) -> None:
    summary = summarise(data)
    settings = data["settings"]
    versions = ", ".join(f"{k} {v}" for k, v in data["versions"].items())
    lines = [
        "# Benchmarks",
        "",
        "Generated by `make bench` (`benches/run.py`); do not edit by hand. Re-render from",
        "`benches/results.json` with `python benches/report.py`.",
        "",
        f"- Machine: {data['machine']}",
        f"- Versions: {versions}",
        "- Method: server pinned to core 0, load generator to core 1 (`taskset`), one worker, uvloop, "
        f"access logs off; {settings['warmup']:g} s warm-up then {settings['seconds']:g} s measured; "
        f"median of {settings['runs']} runs with the server order rotated between runs (the spread of "
        "the runs is shown: this shared VM's speed drifts by 10-20% within minutes). `workers-2` runs "
        "unpinned."
        + (
            " The shared objects of the benchmark's virtualenv are dropped from the page cache before "
            "measuring (`benches/page_cache.py`), so every server maps its extensions as the kernel "
            "reads them back in, not in the 1 MiB folios pip's writes leave in a package installed a "
            "moment ago (fasterapi is reinstalled every run, the peers once)."
            if settings.get("page_cache") == "dropped"
            else ""
        ),
        "- HTTP/1.1: `wrk -t1 -cN -dDs --latency` (POST bodies from a Lua script). h2c: "
        "`h2load -t1 -c16 -m16 -D D`, p50 and p99 from its per-request log (`--log-file`). HTTP/2 over "
        "TLS: the same h2load on `https://`, h2 negotiated by "
        "ALPN (checked), a self-signed P-256 certificate made with openssl. uvicorn serves HTTP/1.1 "
        "with httptools and HTTP/2 (since 0.55) with zttp: `--http zttp --http2`.",
        "- fasterapi: "
        + (
            "the release build steered by a profile of the smoke run (`benches/pgo.py`, PGO)."
            if settings.get("build") == "pgo"
            else "the release build of the checkout, without PGO."
        ),
        "- `hyper` is a pure-Rust hyper hello world on one thread (`benches/hyper_hello`): the ceiling no "
        "ASGI server can pass. The FastAPI ceiling is the app called in a loop without a server "
        "(`benches/ceiling.py`), measured in each run right beside fasterapi (after it in one run, "
        "before it in the next); fasterapi's share of it is the median of the runs' shares.",
        "- Latency at a fixed rate (`hello-h1-20k`): `oha -z Ds -c64 -q 20000 --latency-correction -w`, "
        "an open loop: requests go out on schedule whether or not the server has answered, and each "
        "latency counts from when its request was due, so a stall is not hidden (coordinated "
        "omission). Every server there keeps up (hypercorn cannot and sits it out), so the table "
        "ranks by p99 and has no ratio.",
        "- WebSocket: `benches/ws_load` (Rust, tungstenite) keeps N connections each sending a message "
        "and waiting for its echo; the req/s column counts those round trips per second.",
        "",
        f"![fasterapi throughput as a multiple of each peer's]({png.name})",
        "",
        "## Targets",
        "",
        "| scenario | target | measured | |",
        "| --- | --- | --- | --- |",
        *target_rows(
            summary, data.get("ceiling", {}), data.get("ceiling_share", {}), data.get("ceiling_tasks", {})
        ),
        "",
        ATTAINABLE_NOTE,
        "",
        *split_section(data.get("split"), summary),
        "## Results",
        "",
    ]
    # Scenarios at a fixed request rate: every server that keeps up serves the same req/s.
    fixed_rate = {s["key"] for s in data["scenarios"] if s.get("rate") is not None}
    for scenario in data["scenarios"]:
        table = summary[scenario["key"]]
        at_rate = scenario["key"] in fixed_rate
        lines += [
            f"### {scenario['key']}: {scenario['title']}",
            "",
            "| server | req/s | runs (min–max) | fasterapi ÷ server | p50 ms | p99 ms | errors | non-2xx "
            "| peak RSS MiB |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        # There the ranking is by p99 and a throughput ratio says nothing.
        rank = (lambda m: m["p99_ms"] or float("inf")) if at_rate else (lambda m: -(m["rps"] or 0))
        for name, m in sorted(table.items(), key=lambda item: rank(item[1])):
            r = None if at_rate else ratio(table, name)
            low, high = m["rps_range"]
            lines.append(
                f"| {name} | {m['rps']:,.0f} | {low:,.0f}–{high:,.0f} | {_num(r, '.2f')} | "
                f"{_num(m['p50_ms'], '.2f')} | {_num(m['p99_ms'], '.2f')} | {m['errors']} | {m['non_2xx']} | "
                f"{_num(m['rss_mib'], '.0f')} |"
            )
        ceiling = data.get("ceiling", {}).get(scenario["key"])
        if ceiling:
            lines.append(f"| *in-process ceiling* | {ceiling:,.0f} | | | | | | | |")
        lines.append("")
    # The hand-kept record of what each optimisation measured, kept across regenerations.
    lines.append(OPTIMISATIONS.read_text().rstrip())
    lines.append("")
    markdown.write_text("\n".join(lines))
    ratios = {
        key: {peer: ratio(table, peer) for peer in (*PEERS, "hyper") if ratio(table, peer)}
        for key, table in summary.items()
        if key not in fixed_rate
    }
    subprocess.run(
        [python, str(Path(__file__).with_name("plot.py")), str(png)],
        input=json.dumps(ratios),
        text=True,
        check=True,
    )


def report_paths(results: Path) -> tuple[Path, Path]:
    """Where the report of this results file goes: `docs/` for the published one, else beside it."""
    if results.resolve() == PUBLISHED:
        return ROOT / "docs" / "benchmarks.md", ROOT / "docs" / "benchmarks.png"
    return results.with_suffix(".md"), results.with_suffix(".png")


if __name__ == "__main__":
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else PUBLISHED
    venv_python = ROOT / "benches" / ".venv" / "bin" / "python"
    write_report(
        json.loads(source.read_text()),
        *report_paths(source),
        str(venv_python) if venv_python.exists() else sys.executable,
    )
