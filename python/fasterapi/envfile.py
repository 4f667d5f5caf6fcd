"""`--env-file`: load `KEY=VALUE` lines into the environment before the app is imported.

Uses python-dotenv when it is installed (as uvicorn does); otherwise a small parser that handles
comments, `export`, and single or double quotes."""

from __future__ import annotations

import os
from pathlib import Path


def load_env_file(path: str | os.PathLike[str]) -> None:
    """Set each variable of the file that is not already set in the environment."""
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"--env-file: no such file {str(file)!r}")
    try:
        from dotenv import load_dotenv
    except ImportError:
        for key, value in parse_env(file.read_text()).items():
            os.environ.setdefault(key, value)
    else:
        load_dotenv(dotenv_path=file)


def parse_env(text: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not key.replace("_", "").isalnum():
            raise ValueError(f"--env-file: line {number} is not KEY=VALUE: {raw!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
            if raw.strip().split("=", 1)[1].strip().startswith('"'):
                value = value.encode().decode("unicode_escape")
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        values[key] = value
    return values
