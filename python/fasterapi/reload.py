"""`--reload`: watch the source tree with watchfiles and report relevant changes to the supervisor.

The watcher runs on its own thread and wakes the supervisor through a socket it can wait on."""

from __future__ import annotations

import fnmatch
import logging
import socket
import threading
from collections.abc import Sequence
from pathlib import Path

logger = logging.getLogger("fasterapi.error")

DEFAULT_INCLUDES = ("*.py",)
DEFAULT_EXCLUDES = (".*", ".py[cod]", ".sw.*", "~*", "__pycache__")


class FileFilter:
    """uvicorn's rules: a change counts if the file name matches an include pattern and neither the
    name nor any directory above it (below the watched root) matches an exclude pattern."""

    def __init__(self, includes: Sequence[str], excludes: Sequence[str]) -> None:
        self.includes = list(includes) or list(DEFAULT_INCLUDES)
        self.excludes = [e for e in (list(excludes) or list(DEFAULT_EXCLUDES)) if e not in self.includes]

    def __call__(self, path: Path) -> bool:
        if not any(fnmatch.fnmatch(path.name, pattern) for pattern in self.includes):
            return False
        return not any(fnmatch.fnmatch(part, pattern) for part in path.parts for pattern in self.excludes)


class ChangeWatcher:
    """Collects relevant file changes under `dirs`; `fileno()` becomes readable when there are some."""

    def __init__(
        self, dirs: Sequence[str], includes: Sequence[str], excludes: Sequence[str], delay: float
    ) -> None:
        import watchfiles

        self.dirs = [str(Path(d).resolve()) for d in (dirs or ["."])]
        self.filter = FileFilter(includes, excludes)
        self._watchfiles = watchfiles
        self._delay_ms = max(1, int(delay * 1000))
        self._stop = threading.Event()
        self._wake_read, self._wake_write = socket.socketpair()
        self._changes: list[str] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._watch, name="fasterapi-reload", daemon=True)
        self._thread.start()
        logger.info("Will watch for changes in these directories: %s", self.dirs)

    def _watch(self) -> None:
        for changes in self._watchfiles.watch(
            *self.dirs, debounce=self._delay_ms, stop_event=self._stop, raise_interrupt=False
        ):
            relevant = sorted({path for _, path in changes if self.filter(Path(path))})
            if relevant:
                with self._lock:
                    self._changes.extend(relevant)
                self._wake_write.send(b"!")

    def fileno(self) -> int:
        return self._wake_read.fileno()

    def take(self) -> list[str]:
        """The changed paths since the last call (empty if none)."""
        with self._lock:
            changes, self._changes = self._changes, []
        if changes:
            try:
                self._wake_read.setblocking(False)
                while self._wake_read.recv(4096):
                    pass
            except BlockingIOError:
                pass
        return changes

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._wake_read.close()
        self._wake_write.close()
