"""What the log cleaner may clean, and whether it should (Kafka's LogCleanerManager).

A compacted log has three parts, by offset::

    log start  ... first dirty  ... first uncleanable  ...  log end
    |   clean section  |   dirty section   |   uncleanable (active segment, ...)

- The clean section was cleaned before: every key in it appears once. Its end,
  the *first dirty offset*, is the cleaner checkpoint of the log (reset to the
  log start offset when it falls outside the log, as Kafka does).
- The *first uncleanable offset* is the smallest of: the last stable offset
  (never past the high watermark nor an open transaction), the base offset of
  the active segment, and with ``min.compaction.lag.ms`` the base offset of the
  first dirty segment holding a record younger than the lag. It is then
  rounded down to the base offset of its segment, so only whole closed
  segments are cleaned.

A log is cleaned when its *dirty ratio* (bytes of the dirty section over the
bytes of both sections) exceeds ``min.cleanable.dirty.ratio``, or when it must
be cleaned now: the first batch of a dirty closed segment is older than
``max.compaction.lag.ms`` (and there is something cleanable). The active
segment rolls early enough for that: see LogConfig.max_segment_ms.

Pure decisions on the loop: sizes and timestamps come from memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from strom.storage.config import LONG_MAX
from strom.storage.segment import LogSegment

if TYPE_CHECKING:
    from strom.storage.log import PartitionLog


@dataclass(slots=True)
class CleanerCheckpoint:
    """Offsets below ``first_dirty_offset`` were cleaned (Kafka's cleaner checkpoint)."""

    first_dirty_offset: int = 0


@dataclass(frozen=True, slots=True)
class LogToClean:
    """Kafka's LogToClean: a log's dirty section and its size."""

    first_dirty_offset: int
    first_uncleanable_offset: int  # a segment base offset: segments below it may be cleaned
    clean_bytes: int
    cleanable_bytes: int
    max_compaction_delay_ms: int  # > 0: max.compaction.lag.ms has passed for a dirty record

    @property
    def total_bytes(self) -> int:
        return self.clean_bytes + self.cleanable_bytes

    @property
    def cleanable_ratio(self) -> float:
        return self.cleanable_bytes / self.total_bytes if self.total_bytes else 0.0

    @property
    def need_compaction_now(self) -> bool:
        return self.max_compaction_delay_ms > 0

    def should_clean(self, min_cleanable_dirty_ratio: float) -> bool:
        """Kafka's grabFilthiestCompactedLog filter."""
        if self.total_bytes <= 0:
            return False
        if self.need_compaction_now and self.cleanable_bytes > 0:
            return True
        return self.cleanable_ratio > min_cleanable_dirty_ratio


def segments_overlapping(log: PartitionLog, start: int, end: int) -> list[LogSegment]:
    """Kafka's logSegments(from, to): the segments holding offsets in [start, end)."""
    first = log.segment_index_for(start)
    return [segment for segment in log.segments[first:] if segment.base_offset < end]


def non_active_segments_from(log: PartitionLog, offset: int) -> list[LogSegment]:
    """Kafka's nonActiveLogSegmentsFrom: the segment holding ``offset`` and those after
    it, without the active one."""
    return log.segments[log.segment_index_for(offset) : -1]


def first_dirty_offset(log: PartitionLog, checkpoint: CleanerCheckpoint | None) -> int:
    offset = checkpoint.first_dirty_offset if checkpoint is not None else log.log_start_offset
    if offset < log.log_start_offset or offset > log.log_end_offset:
        return log.log_start_offset
    return offset


def _first_uncleanable_offset(
    log: PartitionLog, first_dirty: int, now_ms: int, min_compaction_lag_ms: int
) -> int:
    candidates = [log.last_stable_offset, log.active_segment.base_offset]
    if min_compaction_lag_ms > 0:
        for segment in non_active_segments_from(log, first_dirty):
            if segment.largest_timestamp > now_ms - min_compaction_lag_ms:
                candidates.append(segment.base_offset)
                break
    return max(first_dirty, min(candidates))


def max_compaction_delay_ms(log: PartitionLog, first_dirty: int, now_ms: int) -> int:
    """How long ago a dirty closed segment's first batch passed max.compaction.lag.ms
    (0 if none did), from the timestamps segments keep in memory."""
    timestamps = [
        segment.rolling_based_timestamp
        for segment in non_active_segments_from(log, first_dirty)
        if segment.rolling_based_timestamp is not None and segment.rolling_based_timestamp > 0
    ]
    earliest = min(timestamps, default=LONG_MAX)
    clean_until = now_ms - max(log.config.max_compaction_lag_ms, 0)
    return clean_until - earliest if earliest < clean_until else 0


def log_to_clean(
    log: PartitionLog,
    checkpoint: CleanerCheckpoint | None,
    now_ms: int,
    min_compaction_lag_ms: int | None = None,
) -> LogToClean:
    """The log's clean and dirty sections now (Kafka's cleanableOffsets and
    calculateCleanableBytes); ``min_compaction_lag_ms`` defaults to the log's config."""
    lag = (
        log.config.min_compaction_lag_ms if min_compaction_lag_ms is None else min_compaction_lag_ms
    )
    first_dirty = first_dirty_offset(log, checkpoint)
    uncleanable = _first_uncleanable_offset(log, first_dirty, now_ms, max(lag, 0))
    later = non_active_segments_from(log, uncleanable)
    first_uncleanable = later[0].base_offset if later else log.active_segment.base_offset
    clean = segments_overlapping(log, -1, first_dirty)
    dirty = segments_overlapping(log, min(first_dirty, first_uncleanable), first_uncleanable)
    return LogToClean(
        first_dirty_offset=first_dirty,
        first_uncleanable_offset=first_uncleanable,
        clean_bytes=sum(segment.size for segment in clean),
        cleanable_bytes=sum(segment.size for segment in dirty),
        max_compaction_delay_ms=max_compaction_delay_ms(log, first_dirty, now_ms),
    )
