"""Loading a partition log's segments at open (Kafka's LogLoader).

The directory is scanned for segments (``<base offset>.log``); leftovers of
interrupted work (``.deleted``, ``.cleaned``, ``.swap``, ``.tmp`` files, an
index without its log) are removed. After an unclean shutdown every segment
from the one holding the recovery point onward is recovered batch by batch (see
:meth:`strom.storage.segment.LogSegment.recover`), and so is any segment whose
indexes are missing or corrupt; a segment cut by recovery ends the log, the
later ones are deleted.
"""

from __future__ import annotations

import logging
from bisect import bisect_right
from pathlib import Path
from typing import Final

from strom.storage.log_core import LogCore
from strom.storage.producer_state import SNAPSHOT_SUFFIX
from strom.storage.segment import LogSegment
from strom.storage.segment_files import LOG_SUFFIX

logger = logging.getLogger("strom.storage.log")  # the partition log's logger
_STRAY_SUFFIXES: Final = (".deleted", ".cleaned", ".swap", ".tmp")


def scan_base_offsets(dir: Path) -> list[int]:
    """The base offsets of the segments in ``dir``; stray files (suffixes of
    unfinished deletions, cleanings and swaps, indexes without their log) are removed."""
    base_offsets: list[int] = []
    for path in dir.iterdir():
        stem, suffix = path.stem, path.suffix
        if path.name.endswith(_STRAY_SUFFIXES):
            path.unlink()
        elif len(stem) == 20 and stem.isdigit():
            if suffix == LOG_SUFFIX:
                base_offsets.append(int(stem))
            elif suffix != SNAPSHOT_SUFFIX and not path.with_suffix(LOG_SUFFIX).exists():
                path.unlink()  # an index without its log
    return sorted(base_offsets)


def load_segments(log: LogCore, now_ms: int, clean_shutdown: bool, recovery_point: int) -> None:
    """Open the segments of ``log.dir`` into ``log.segments``, recovering those that need
    it; the first invalid byte ends the log."""
    for base_offset in scan_base_offsets(log.dir):
        log.segments.append(
            LogSegment(
                log.dir,
                base_offset,
                index_interval_bytes=log.config.index_interval_bytes,
                segment_index_bytes=log.config.segment_index_bytes,
                now_ms=now_ms,
            )
        )
    first_unflushed = len(log.segments)
    if not clean_shutdown:
        bases = [segment.base_offset for segment in log.segments]
        first_unflushed = max(0, bisect_right(bases, recovery_point) - 1)
    for i, segment in enumerate(log.segments):
        if i < first_unflushed and not segment.needs_recovery:
            continue
        truncated = segment.recover(log._assign_epoch_from_batch)
        segment.flush()
        if truncated:  # Kafka: "Found invalid messages in log segment ..."
            logger.warning(
                "recovery of %s cut %d bytes of a torn or corrupt tail from segment %d "
                "at byte %d (next offset %d)",
                log.dir.name,
                truncated,
                segment.base_offset,
                segment.size,
                segment.read_next_offset(),
            )
        if truncated and i + 1 < len(log.segments):
            for later in log.segments[i + 1 :]:
                later.delete()
            del log.segments[i + 1 :]
            break
