"""The benchmark drops its environment's shared objects from the page cache before measuring
(`benches/page_cache.py`): checked with mincore(2) on files written a moment ago, as pip leaves them."""

from __future__ import annotations

import ctypes
import importlib.util
import mmap
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT

spec = importlib.util.spec_from_file_location("page_cache", ROOT / "benches" / "page_cache.py")
assert spec and spec.loader
page_cache = importlib.util.module_from_spec(spec)
spec.loader.exec_module(page_cache)

libc = ctypes.CDLL(None, use_errno=True)


def resident_pages(path: Path) -> int:
    """How many of `path`'s pages are in the page cache (mincore on a mapping that touches none)."""
    size = path.stat().st_size
    pages = -(-size // mmap.PAGESIZE)
    vector = (ctypes.c_ubyte * pages)()
    with path.open("rb") as file, mmap.mmap(file.fileno(), size, access=mmap.ACCESS_COPY) as mapped:
        start = ctypes.c_char.from_buffer(mapped)
        status = libc.mincore(ctypes.c_void_p(ctypes.addressof(start)), ctypes.c_size_t(size), vector)
        del start  # the mapping cannot close while ctypes holds a pointer into it
    assert status == 0, os.strerror(ctypes.get_errno())
    return sum(byte & 1 for byte in vector)


@pytest.fixture
def environment() -> Iterator[Path]:
    """A directory on the repository's file system (where benches/.venv lives; /tmp may be a tmpfs,
    whose pages cannot be dropped), holding files just written, 1 MiB at a time as pip writes."""
    (ROOT / "target").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=ROOT / "target") as directory:
        root = Path(directory)
        (root / "site-packages" / "pkg").mkdir(parents=True)
        for name in ("pkg/_ext.cpython-311-x86_64-linux-gnu.so", "libdep.so.1.2", "pkg/data.bin"):
            with (root / "site-packages" / name).open("wb") as file:
                for _ in range(2):
                    file.write(os.urandom(1 << 20))
        (root / "site-packages" / "libdep.so").symlink_to("libdep.so.1.2")
        yield root / "site-packages"


def test_shared_objects_leave_the_page_cache(environment: Path) -> None:
    extension, library, data = (
        environment / "pkg" / "_ext.cpython-311-x86_64-linux-gnu.so",
        environment / "libdep.so.1.2",
        environment / "pkg" / "data.bin",
    )
    whole = (2 << 20) // mmap.PAGESIZE
    assert [resident_pages(path) for path in (extension, library, data)] == [whole] * 3

    assert page_cache.drop_shared_objects(environment) == 2  # the symlink's target counted once

    assert resident_pages(extension) == 0
    assert resident_pages(library) == 0
    assert resident_pages(data) == whole  # not a shared object: left alone
