"""An open segment file whose descriptor closes on :meth:`LogFile.close` or when the
last reference goes (slices of a deleted segment keep it readable until then).

Its own module, kept out of the optional mypyc build (setup.py): the finalizer needs
a weak reference to the object, which mypyc's compiled classes do not support.
"""

from __future__ import annotations

import contextlib
import os
import weakref
from pathlib import Path


def _close_fd(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)


class LogFile:
    """An open segment file. The fd closes on :meth:`close` or when unreferenced."""

    def __init__(self, path: Path) -> None:
        self.path = path  # follows renames (.deleted)
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        self._finalizer = weakref.finalize(self, _close_fd, self._fd)

    @property
    def fileno(self) -> int:
        return self._fd

    @property
    def closed(self) -> bool:
        return not self._finalizer.alive

    def close(self) -> None:
        self._finalizer()
