"""Delayed deletion of segment files and partition directories (``file.delete.delay.ms``).

A segment leaves its log (retention, a new log start offset, truncation, a
cleaned copy swapped in) on the event loop, in memory and by a rename: its
files become ``<base>.log.deleted`` and so on. Kafka removes them only
``file.delete.delay.ms`` later (60 s by default) so that reads in flight
finish; so does strom, from a storage thread, because an unlink (and the
release of a big file's blocks) can block. A deleted partition directory
(``<topic>-<partition>.<uuid>-delete``) waits the same way.

Descriptors: the unlink never closes a segment's .log fd. The fd closes when
the last reference to the segment (and to every FileSlice on it) is dropped,
which the deletion does last, in the storage thread; a sendfile in flight
keeps its file and never reads a reused descriptor.

Crash story: files and directories still waiting are removed at the next
start (``.deleted`` files and ``-delete`` directories are never loaded).

Time: entries are stamped with the time they were removed when the caller
knows it, otherwise with the first ``now_ms`` the queue sees (truncation has
no clock); :meth:`DeletionQueue.take_due` is the only reader of the clock, so
tests drive it with a fake one.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, TypeAlias

from strom.common.values import Value
from strom.storage.jobs import DirFailureHandler

if TYPE_CHECKING:  # not imported at a broker's start (issue 15)
    from strom.storage.segment import LogSegment

DELETED_SUFFIX = ".deleted"

Doomed: TypeAlias = "LogSegment | Path"  # a segment (files renamed .deleted) or a directory


class _Entry(Value):
    __slots__ = ("delay_ms", "removed_ms", "target")
    FIELDS: ClassVar[tuple[str, ...]] = ("target", "delay_ms", "removed_ms")
    target: Doomed
    delay_ms: int
    removed_ms: int | None  # None: stamped by the next take_due

    __hash__ = None  # type: ignore[assignment]  # mutable, as an unfrozen dataclass

    def __init__(self, target: Doomed, delay_ms: int, removed_ms: int | None) -> None:
        self.target = target
        self.delay_ms = delay_ms
        self.removed_ms = removed_ms


def log_dir_of(target: Doomed) -> Path:
    """The log directory (``log.dirs`` entry) holding ``target``."""
    return target.parent if isinstance(target, Path) else target.dir.parent


class DeletionQueue:
    """Segments and directories waiting for ``file.delete.delay.ms``. Loop only."""

    def __init__(self) -> None:
        self._entries: list[_Entry] = []

    def __len__(self) -> int:
        return len(self._entries)

    def schedule(self, target: Doomed, delay_ms: int, removed_ms: int | None = None) -> None:
        self._entries.append(_Entry(target, max(0, delay_ms), removed_ms))

    def take_due(self, now_ms: int) -> list[Doomed]:
        """Remove and return the targets whose delay has passed at ``now_ms``."""
        due: list[Doomed] = []
        waiting: list[_Entry] = []
        for entry in self._entries:
            if entry.removed_ms is None:
                entry.removed_ms = now_ms
            if now_ms - entry.removed_ms >= entry.delay_ms:
                due.append(entry.target)
            else:
                waiting.append(entry)
        self._entries = waiting
        return due

    def take_all(self) -> list[Doomed]:
        """Every waiting target (shutdown: nothing in flight any more)."""
        due = [entry.target for entry in self._entries]
        self._entries = []
        return due


def delete_now(target: Doomed) -> None:
    """Remove ``target``'s files (blocking; run in a storage thread). Raises OSError."""
    if not isinstance(target, Path):
        target.delete()
    elif target.exists():
        import shutil

        shutil.rmtree(target)


class DeletionJob:
    """Remove due targets in a storage thread; report failures on the loop."""

    def __init__(self, targets: list[Doomed], on_dir_failure: DirFailureHandler) -> None:
        self._targets = list(targets)
        self._on_dir_failure = on_dir_failure
        self._failures: list[tuple[Path, OSError]] = []
        self.count = len(targets)

    def run(self) -> None:
        """Storage thread: unlink, then drop the references (the .log fds close here
        unless a slice in flight still holds one)."""
        targets, self._targets = self._targets, []
        while targets:
            target = targets.pop()
            try:
                delete_now(target)
            except OSError as exc:
                self._failures.append((log_dir_of(target), exc))
            del target

    def complete(self) -> int:
        """Loop: route failures to the single OSError handler; the number removed."""
        for log_dir, exc in self._failures:
            self._on_dir_failure(log_dir, exc)
        return self.count - len(self._failures)
