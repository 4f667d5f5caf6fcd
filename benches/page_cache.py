"""Put the benchmark environment's shared objects in the page cache on equal terms for every server.

The page cache keeps a file in folios up to as large as the writes that made it, and pip writes a
wheel's files 1 MiB at a time; on Linux 6.18 a fault maps the whole folio around the touched page.
So a server whose package was installed a moment ago holds every MiB of its extension that its reads
touch, where one whose files the kernel has since read back in (readahead, after a reboot or memory
pressure) holds far less. `make bench` reinstalls fasterapi before every run and the peers only
once, which measured fasterapi alone with freshly written files (peak RSS serving FastAPI 0.9-1.0 MiB
higher). Dropping the environment's shared objects from the cache before measuring makes every
server map its extensions as the kernel reads them back in, whatever order they were installed in.
"""

from __future__ import annotations

import os
from pathlib import Path


def is_shared_object(name: str) -> bool:
    """`foo.so`, `foo.cpython-311-x86_64-linux-gnu.so`, `libfoo.so.1.2`."""
    return name.endswith(".so") or ".so." in name


def drop_shared_objects(root: Path) -> int:
    """Write back and drop from the page cache every shared object under `root` (pages a running
    process maps stay); return how many files were dropped."""
    dropped = 0
    for directory, _, files in os.walk(root):
        for name in filter(is_shared_object, files):
            path = Path(directory) / name
            if path.is_symlink():
                continue
            fd = os.open(path, os.O_RDONLY)
            try:
                # Dirty pages cannot be dropped: a file installed seconds ago is still being written.
                os.fsync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)
            dropped += 1
    return dropped
