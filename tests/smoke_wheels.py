"""Build the wheel for every supported CPython found under pyenv and check that it serves.

For each version: a fresh virtualenv, `pip install` of the built wheel, `python -m fasterapi
examples.hello:app --port 0`, one HTTP/1.1 request, SIGTERM, exit status 0. Run by `make wheels`.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VERSIONS = ("3.11", "3.12", "3.13")


def pyenv_python(version: str) -> Path | None:
    root = Path(subprocess.run(["pyenv", "root"], capture_output=True, text=True).stdout.strip())
    found = sorted(root.glob(f"versions/{version}.*/bin/python{version}"))
    return found[-1] if found else None


def check(version: str, python: Path, work: Path) -> None:
    venv = work / f"venv{version}"
    subprocess.run([str(python), "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin/python"), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, "-U", "pip", "maturin"], check=True)
    out = work / f"wheel{version}"
    subprocess.run(
        [
            str(venv / "bin/maturin"),
            "build",
            "--release",
            "-q",
            "-i",
            str(venv / "bin/python"),
            "-o",
            str(out),
        ],
        cwd=ROOT,
        check=True,
    )
    wheel = next(out.glob("*.whl"))
    subprocess.run([*pip, str(wheel)], check=True)
    proc = subprocess.Popen(
        [str(venv / "bin/python"), "-m", "fasterapi", "examples.hello:app", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    port = None
    for line in proc.stdout:
        match = re.search(r"running on http://127\.0\.0\.1:(\d+)", line)
        if match:
            port = int(match[1])
            break
    assert port, f"{version}: server did not start"
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10).read()
    assert body == b"Hello, world!", body
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0, f"{version}: exit status {proc.returncode}"
    print(f"{version}: wheel {wheel.name} builds, installs and serves")


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        for version in VERSIONS:
            python = pyenv_python(version)
            if python is None:
                print(f"{version}: not installed, skipped")
                continue
            check(version, python, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
