"""Which of a log's oldest segments retention may delete (Kafka's deleteOldSegments).

Each function returns how many segments, counted from the oldest, may go.
A segment is deletable only when all of its offsets are below the high
watermark, and the walk stops at the first segment that must stay, so the
log remains one contiguous run of segments. The active segment may be
deleted too (the log then rolls first), unless it is empty.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from strom.storage.segment import LogSegment

if TYPE_CHECKING:
    from strom.storage.log import PartitionLog

Predicate = Callable[[LogSegment, LogSegment | None], bool]


def deletable_prefix(log: PartitionLog, predicate: Predicate) -> int:
    """The number of leading segments for which ``predicate`` holds and that may go."""
    segments = log.segments
    count = 0
    for i, segment in enumerate(segments):
        next_segment = segments[i + 1] if i + 1 < len(segments) else None
        if next_segment is None and segment.size == 0:
            break
        upper_bound = next_segment.base_offset if next_segment else log.log_end_offset
        if log.high_watermark < upper_bound or not predicate(segment, next_segment):
            break
        count += 1
    return count


def expired_by_time(log: PartitionLog, now_ms: int) -> int:
    """retention.ms: segments whose largest timestamp is older than now - retention.ms."""
    retention_ms = log.config.retention_ms
    if retention_ms < 0:
        return 0
    return deletable_prefix(
        log, lambda segment, _: now_ms - segment.largest_timestamp > retention_ms
    )


def expired_by_size(log: PartitionLog) -> int:
    """retention.bytes: oldest segments while the log stays at or above the limit."""
    retention_bytes = log.config.retention_bytes
    size = log.size_in_bytes
    if retention_bytes < 0 or size < retention_bytes:
        return 0
    excess = size - retention_bytes

    def predicate(segment: LogSegment, _: LogSegment | None) -> bool:
        nonlocal excess
        if excess - segment.size >= 0:
            excess -= segment.size
            return True
        return False

    return deletable_prefix(log, predicate)


def log_start_offset_breached(log: PartitionLog) -> int:
    """Segments entirely below the log start offset (after DeleteRecords)."""
    log_start_offset = log.log_start_offset
    return deletable_prefix(
        log,
        lambda _, next_segment: (
            next_segment is not None and next_segment.base_offset <= log_start_offset
        ),
    )
