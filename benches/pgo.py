"""Build fasterapi with profile-guided optimisation (PGO), trained on the benchmark's smoke run.

    python benches/pgo.py develop             # install the optimised build into this virtualenv
    python benches/pgo.py wheel --out DIR     # or build its wheel into DIR

Three steps, built in `target/pgo` so that the usual builds in `target/` are left alone:
1. a release build instrumented to count which functions and branches run;
2. that build serving `run.py --smoke` (every scenario for a second: HTTP/1.1, h2c, TLS,
   WebSockets, request and response bodies, files, workers), each server process writing its
   counts on exit;
3. a release build steered by the merged counts: hot code laid out together and cold paths moved
   out of its way, so a request runs through fewer instruction-cache lines.

Run it with the interpreter of a virtualenv that has maturin and the test extras (`make dev`).
Needs `llvm-profdata`, which rustup installs with `rustup component add llvm-tools`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from run import BENCHES, ROOT, env_with_pythonpath, unpack_wheel

TARGET = ROOT / "target" / "pgo"


class PgoError(Exception):
    """A step of the build could not run; the message says which and why."""


def llvm_profdata() -> Path:
    """The `llvm-profdata` of the Rust toolchain that builds fasterapi (its LLVM must match)."""
    libdir = subprocess.run(["rustc", "--print", "target-libdir"], capture_output=True, text=True, check=True)
    tool = Path(libdir.stdout.strip()).parent / "bin" / "llvm-profdata"
    if not tool.exists():
        raise PgoError(f"{tool} is missing: install it with `rustup component add llvm-tools`")
    return tool


def maturin(work: Path, arguments: list[str], rustflags: str) -> None:
    """Run `maturin ARGUMENTS --release` on the checkout with `rustflags` added.

    Cargo applies RUSTFLAGS to build scripts and proc-macros too, so under `-Cprofile-generate`
    they count as well, proc-macros inside every compiler process that loads them, several at once:
    their counts go to files of their own in `work`, apart from the servers'. (Naming the host as
    `--target` would spare them, but it also changes every symbol's hash, and with it the names
    `src/hot_symbols.txt` lays out first.)
    """
    env = {
        **os.environ,
        "CARGO_TARGET_DIR": str(TARGET),
        "RUSTFLAGS": f"{os.environ.get('RUSTFLAGS', '')} {rustflags}".strip(),
        "LLVM_PROFILE_FILE": str(work / "build-tools" / "%p.profraw"),
        # `maturin develop` installs into the virtualenv it is told of, or else into ./.venv.
        "VIRTUAL_ENV": sys.prefix,
    }
    command = [str(Path(sys.executable).parent / "maturin"), *arguments, "--release"]
    subprocess.run(command, cwd=ROOT, env=env, check=True)


def record_profile(work: Path, profdata: Path) -> Path:
    """Build the instrumented wheel, serve the smoke run with it, and merge what it counted."""
    counts = work / "counts"
    instrumented = work / "instrumented"
    build = ["build", "-q", "-i", sys.executable, "-o", str(instrumented)]
    maturin(work, build, f"-Cprofile-generate={counts}")
    package = unpack_wheel(next(instrumented.glob("*.whl")), work / "package")
    # The servers run.py starts find the instrumented package first on PYTHONPATH, and each
    # writes a file of its own rather than merging into a shared one under a lock (the build's
    # default, `%m`), which concurrent writers have been seen to corrupt.
    env = {**env_with_pythonpath(str(package)), "LLVM_PROFILE_FILE": str(counts / "fasterapi-%p.profraw")}
    subprocess.run([sys.executable, str(BENCHES / "run.py"), "--smoke"], env=env, check=True)
    if not any(counts.glob("*.profraw")):
        raise PgoError(f"the smoke run left no counts in {counts}: its servers never loaded the build")
    profile = work / "merged.profdata"
    # A server killed before it wrote all its counts leaves a file that cannot be read: merge the
    # rest (llvm-profdata warns which it skipped, and fails if it could read none).
    merge = [str(profdata), "merge", "--failure-mode=all", "-o", str(profile), str(counts)]
    subprocess.run(merge, check=True)
    return profile


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("develop", help="install the optimised build into this virtualenv")
    wheel = commands.add_parser("wheel", help="build the optimised wheel")
    wheel.add_argument("--out", type=Path, required=True, help="directory for the wheel")
    args = parser.parse_args()
    try:
        profdata = llvm_profdata()
        TARGET.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=TARGET) as temporary:
            work = Path(temporary)
            profile = f"-Cprofile-use={record_profile(work, profdata)}"
            if args.command == "develop":
                maturin(work, ["develop", "--extras", "test,standard"], profile)
            else:
                maturin(work, ["build", "-i", sys.executable, "-o", str(args.out.resolve())], profile)
    except (PgoError, subprocess.CalledProcessError) as err:
        print(f"pgo: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
