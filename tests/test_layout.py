"""The extension's code layout: the functions that serve requests come first and together.

`src/build.rs` hands `src/hot_symbols.txt` to the linker, so a worker touches (and the kernel maps)
a few hundred KiB of the extension's text instead of most of its 4 MiB. These tests read the symbol
table of the extension the suite runs against.
"""

from __future__ import annotations

import subprocess

import pytest
from fasterapi import _fasterapi

from tests.conftest import ROOT

ORDER = (ROOT / "src" / "hot_symbols.txt").read_text().split()


@pytest.fixture(scope="module")
def functions() -> dict[str, tuple[int, int]]:
    """Each function of the built extension: its address and size."""
    listing = subprocess.run(
        ["nm", "--defined-only", "-S", _fasterapi.__file__], capture_output=True, text=True, check=True
    ).stdout
    return {
        fields[3]: (int(fields[0], 16), int(fields[1], 16))
        for fields in map(str.split, listing.splitlines())
        if len(fields) == 4 and fields[2] in "tTwW"
    }


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
