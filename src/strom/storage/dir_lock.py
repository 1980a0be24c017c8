"""The exclusive ``.lock`` file of each log directory, taken before anything is written.

Two brokers on one log directory would both append and checkpoint, and one
would silently overwrite what the other acknowledged. As Kafka does, a broker
takes an exclusive, non-blocking flock on ``<log dir>/.lock`` at start and
refuses to start when another process holds it. The lock lives as long as
the open file (the process): a killed broker releases it at once.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Final

LOCK_FILE: Final = ".lock"


class LogDirError(Exception):
    """A log directory cannot be used; the message names the setting and the reason."""


def _prepare(log_dir: Path, key: str) -> None:
    if log_dir.exists() and not log_dir.is_dir():
        raise LogDirError(f"{key}: {log_dir} is a file, not a directory")
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LogDirError(f"{key}: {log_dir} cannot be created: {exc.strerror}") from None
    if not os.access(log_dir, os.W_OK | os.X_OK):
        raise LogDirError(f"{key}: {log_dir} is not writable")


class LogDirLocks:
    """Holds the locks of a broker's log directories until :meth:`release`."""

    def __init__(self) -> None:
        self._fds: list[int] = []

    def acquire(self, log_dirs: Sequence[Path], key: str = "log.dirs") -> None:
        """Create (if needed) and lock every directory; LogDirError when one cannot be
        created or written, or is locked by another process (nothing stays locked)."""
        try:
            for log_dir in log_dirs:
                _prepare(log_dir, key)
                path = log_dir / LOCK_FILE
                try:
                    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
                except OSError as exc:
                    raise LogDirError(f"{key}: cannot open {path}: {exc.strerror}") from None
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    os.close(fd)
                    raise LogDirError(
                        f"Failed to acquire lock on file .lock in {log_dir}. A Kafka instance "
                        "in another process or thread is using this directory."
                    ) from None
                self._fds.append(fd)
        except LogDirError:
            self.release()
            raise

    def release(self) -> None:
        for fd in self._fds:
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)
        self._fds = []
