"""The Autobahn WebSocket testsuite (`wstest -m fuzzingclient`) against a fasterapi echo server.

`wstest` is Python 2.7 only: it is installed once into a virtualenv made from pyenv's 2.7.18 (with
`virtualenv<20.22`, the last that creates 2.7 environments) under `~/.cache/fasterapi/`.
`python -m tests.autobahn` runs the suite and rewrites the summary table in docs/websockets.md.
"""

from __future__ import annotations

import collections
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "fasterapi"
#: RFC 6455 framing, pings, reserved bits, opcodes, fragmentation, UTF-8, close handling, large
#: messages, auto-fragmentation; then permessage-deflate (RFC 7692).
CASES = ["1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "9.*", "10.*", "12.1.*", "13.1.*"]
#: Outcomes that pass: NON-STRICT and INFORMATIONAL are Autobahn's names for allowed behaviour.
PASSING = {"OK", "NON-STRICT", "INFORMATIONAL"}
DOC = ROOT / "docs" / "websockets.md"
MARKERS = ("<!-- autobahn:start -->", "<!-- autobahn:end -->")


def python27() -> Path | None:
    """pyenv's CPython 2.7.18, if this machine has it."""
    roots = []
    if shutil.which("pyenv"):
        roots.append(subprocess.run(["pyenv", "root"], capture_output=True, text=True).stdout.strip())
    roots.append(str(Path.home() / ".pyenv"))
    for root in roots:
        candidate = Path(root) / "versions" / "2.7.18" / "bin" / "python"
        if candidate.exists():
            return candidate
    return None


def ensure_wstest() -> Path:
    """The `wstest` executable, installing it on first use."""
    venv = CACHE / "autobahn-py27"
    wstest = venv / "bin" / "wstest"
    if wstest.exists():
        return wstest
    py27 = python27()
    if py27 is None:
        raise RuntimeError("pyenv's Python 2.7.18 is needed for the Autobahn testsuite")
    tool = CACHE / "virtualenv-tool"
    subprocess.run([sys.executable, "-m", "venv", str(tool)], check=True)
    subprocess.run([tool / "bin" / "pip", "install", "-q", "virtualenv<20.22"], check=True)
    subprocess.run([tool / "bin" / "virtualenv", "-q", "-p", str(py27), str(venv)], check=True)
    subprocess.run([venv / "bin" / "pip", "install", "-q", "autobahntestsuite"], check=True)
    return wstest


def run_fuzzingclient(url: str, outdir: Path, cases: list[str] = CASES) -> dict[str, dict]:
    """Run the cases against `url`; returns Autobahn's per-case results."""
    spec = {
        "outdir": str(outdir),
        "servers": [{"agent": "fasterapi", "url": url}],
        "cases": cases,
        "exclude-cases": [],
        "exclude-agent-cases": {},
    }
    spec_file = outdir / "fuzzingclient.json"
    outdir.mkdir(parents=True, exist_ok=True)
    spec_file.write_text(json.dumps(spec))
    subprocess.run(
        [ensure_wstest(), "-m", "fuzzingclient", "-s", spec_file],
        cwd=outdir,
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=1200,
    )
    return json.loads((outdir / "index.json").read_text())["fasterapi"]


def failures(results: dict[str, dict]) -> list[str]:
    """Cases whose behaviour or closing behaviour is not a pass."""
    return sorted(
        f"{case}: {r['behavior']} / close {r['behaviorClose']}"
        for case, r in results.items()
        if r["behavior"] not in PASSING or r["behaviorClose"] not in PASSING
    )


def summary(results: dict[str, dict]) -> str:
    """A markdown table of outcomes per case group."""
    groups: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for case, r in results.items():
        parts = case.split(".")
        group = ".".join(parts[:2]) if parts[0] in ("12", "13") else parts[0]
        outcome = r["behavior"] if r["behaviorClose"] in PASSING else f"close {r['behaviorClose']}"
        groups[group][outcome] += 1
    names = ["OK", "NON-STRICT", "INFORMATIONAL"]
    lines = ["| cases | " + " | ".join(names) + " | FAILED |", "| --- " * (len(names) + 2) + "|"]
    key = lambda g: [int(p) for p in g.split(".")]  # noqa: E731
    for group in sorted(groups, key=key):
        counts = groups[group]
        failed = sum(n for outcome, n in counts.items() if outcome not in PASSING)
        cells = [str(counts.get(name, 0)) for name in names] + [str(failed)]
        lines.append(f"| {group}.* | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_doc(table: str) -> None:
    start, end = MARKERS
    text = DOC.read_text()
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    DOC.write_text(pattern.sub(f"{start}\n{table}\n{end}", text))


def main() -> None:
    from tests.conftest import ServerProcess

    server = ServerProcess(["tests.apps.ws_app:app", "--port", "0", "--no-access-log"])
    try:
        server.wait_ready()
        results = run_fuzzingclient(f"ws://127.0.0.1:{server.port}/echo", CACHE / "autobahn-reports")
    finally:
        server.stop()
    table = summary(results)
    print(table)
    write_doc(table)
    bad = failures(results)
    if bad:
        sys.exit("failed cases:\n" + "\n".join(bad))


if __name__ == "__main__":
    main()
