"""The extension's layout: the functions that serve requests come first and together, and what a
worker never reads sits after the code.

`src/build.rs` hands `src/hot_symbols.txt` and `src/layout.ld` to the linker, so a worker touches
(and the kernel maps) a few hundred KiB of the extension's text instead of most of its 4 MiB, and
the read-only data it reads sits right before that text. These tests read the symbol table and the
section headers of the extension the suite runs against.
"""

from __future__ import annotations

import re
import subprocess

import pytest
from fasterapi import _fasterapi

from tests.conftest import ROOT

ORDER = (ROOT / "src" / "hot_symbols.txt").read_text().split()


@pytest.fixture(scope="module")
def symbols() -> list[tuple[str, str, int, int]]:
    """Each sized symbol of the built extension: its name, `nm` kind, address and size."""
    listing = subprocess.run(
        ["nm", "--defined-only", "-S", _fasterapi.__file__], capture_output=True, text=True, check=True
    ).stdout
    return [
        (fields[3], fields[2], int(fields[0], 16), int(fields[1], 16))
        for fields in map(str.split, listing.splitlines())
        if len(fields) == 4
    ]


@pytest.fixture(scope="module")
def functions(symbols: list[tuple[str, str, int, int]]) -> dict[str, tuple[int, int]]:
    """Each function of the built extension: its address and size."""
    return {name: (address, size) for name, kind, address, size in symbols if kind in "tTwW"}


@pytest.fixture(scope="module")
def sections() -> dict[str, tuple[int, int]]:
    """Each section of the built extension: its address and size."""
    listing = subprocess.run(
        ["readelf", "-SW", _fasterapi.__file__], capture_output=True, text=True, check=True
    ).stdout
    found = re.findall(r"\]\s+(\S+)\s+\S+\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)", listing)
    return {name: (int(address, 16), int(size, 16)) for name, address, size in found}


def test_the_hot_symbol_list_names_functions_of_this_build(functions: dict[str, tuple[int, int]]) -> None:
    present = [name for name in ORDER if name in functions]
    assert len(present) >= 0.8 * len(ORDER), (
        f"only {len(present)} of the {len(ORDER)} names in src/hot_symbols.txt are in this build "
        "(a new toolchain or dependency renames them): regenerate it with benches/hot_symbols.py"
    )


def test_hot_functions_sit_together_at_the_start_of_the_text(functions: dict[str, tuple[int, int]]) -> None:
    hot = {functions[name] for name in ORDER if name in functions}
    start, end = min(address for address, _ in hot), max(address + size for address, size in hot)
    text_start = min(address for address, _ in functions.values())
    code = sum(size for _, size in hot)
    assert start - text_start < 4096, "the hot functions do not open the text"
    # Only alignment padding between them: without the ordering they spread over all 4 MiB.
    assert end - start < 1.1 * code, f"{code} bytes of hot code spread over {end - start}"


def test_what_a_worker_never_reads_sits_after_the_code(
    sections: dict[str, tuple[int, int]], symbols: list[tuple[str, str, int, int]]
) -> None:
    text_end = sum(sections[".text"])
    for cold in (".eh_frame_hdr", ".eh_frame", ".gcc_except_table"):
        assert sections[cold][0] >= text_end, f"{cold} sits before the code"
    # aws-lc's largest precomputed table (P-256), read only by TLS handshakes.
    [table] = [address for name, _, address, _ in symbols if name == "ecp_nistz256_precomputed"]
    assert table >= text_end, "aws-lc's curve tables sit before the code"
    assert sections[".plt"][0] < sections[".text"][0], "the PLT sits after the code"
