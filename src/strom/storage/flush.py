"""Flushing a log from a storage thread (Kafka's flush on roll, flush.ms, flush.messages).

Planned on the loop: the segments from the one holding the recovery point to
the active one (a copy of the list), the log end offset at that moment, and
the producer snapshots written on roll without fsync. The storage thread
fsyncs them. Back on the loop the recovery point moves up to that offset,
unless the log was truncated meanwhile (then bytes below the offset may be
new and unflushed, so it stays) or went offline.

Appends continue during the fsync: they write past the planned offset, and
the next flush covers them. Segments removed meanwhile (retention, cleaning)
keep their .log fds open until their delayed deletion, and an index closed by
the loop is skipped (see strom.storage.index), so the thread never fails on
a file the loop let go.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from strom.storage.log import PartitionLog
    from strom.storage.segment import LogSegment


def fsync_path(path: Path) -> None:
    """fsync a file by name; a file already gone (a newer snapshot replaced it) is fine."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        os.fsync(fd)
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)


class FlushJob:
    """fsync a snapshot of a log's unflushed segments; move its recovery point."""

    def __init__(
        self,
        log: PartitionLog,
        segments: list[LogSegment],
        offset: int,
        snapshots: list[Path],
    ) -> None:
        self.log = log
        self.segments = segments
        self.offset = offset
        self.snapshots = snapshots
        self.generation = log.truncations
        self.error: OSError | None = None
        self.elapsed_ms = 0.0  # how long run() took (the broker's LogFlushRateAndTimeMs)

    def run(self) -> None:
        started = time.perf_counter()
        try:
            for segment in self.segments:
                segment.flush()
            for path in self.snapshots:
                fsync_path(path)
        except OSError as exc:
            self.error = exc
        self.segments = []
        self.elapsed_ms = (time.perf_counter() - started) * 1000

    def complete(self) -> int:
        """1 when the recovery point moved to the planned offset, else 0."""
        log = self.log
        if log.offline:
            return 0
        if self.error is not None:
            log.handle_io_error(self.error)
            return 0
        if log.truncations != self.generation:
            log.roll_flush_pending = True  # flush again soon, from the new recovery point
            return 0
        log.recovery_point = max(log.recovery_point, min(self.offset, log.log_end_offset))
        return 1
