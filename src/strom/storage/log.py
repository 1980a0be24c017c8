"""The log of one partition: ordered segments, offsets, leader epochs, retention.

:class:`PartitionLog` opens, reads, truncates, deletes and flushes; its state and
shared helpers are strom.storage.log_core, appending strom.storage.log_append and
loading the segments at open strom.storage.log_loader.

Directory ``<topic>-<partition>/`` holds the segments (see
strom.storage.segment) and ``leader-epoch-checkpoint`` (see
strom.storage.leader_epoch). The log start offset, recovery point and high
watermark are checkpointed per log directory by the LogManager.

Offsets: ``log_start_offset`` <= ``high_watermark`` <= ``log_end_offset``.
The leader stamps base offsets (from the log end offset) and its leader epoch
into each produced batch; followers append batches with offsets as given.

Crash story: appends are not fsynced until the flush policy (flush.messages,
flush.ms, or a pending roll) says so, and then in a storage thread;
``recovery_point`` is the offset below which everything was fsynced. After an
unclean shutdown the segments from the one holding the recovery point onward
are recovered batch by batch; the first invalid byte ends the log (later
segments are deleted). Segments with missing or corrupt indexes are rebuilt
even after a clean shutdown.

Threads: the log's lists and offsets change only on the caller's thread (the
event loop). Blocking work is planned here and run by storage threads: the
fsync of a flush (:meth:`PartitionLog.flush_job`, see strom.storage.flush),
the removal of segments that left the log (renamed ``.deleted`` at once,
unlinked file.delete.delay.ms later, see strom.storage.deletion) and log
cleaning (strom.storage.cleaner). ``truncations`` counts truncations so that
a job planned before one is recognised as stale when it completes.

Any OSError marks the log offline, is reported to ``on_dir_failure`` (the
LogManager takes the whole directory offline) and reaches the caller as
``KafkaError(KAFKA_STORAGE_ERROR)``.
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path
from typing import ClassVar, Final

from strom.common.values import Value
from strom.protocol.errors import ErrorCode, KafkaError
from strom.storage import retention
from strom.storage.config import LogConfig
from strom.storage.deletion import DeletionQueue
from strom.storage.flush import FlushJob
from strom.storage.jobs import DirFailureHandler
from strom.storage.leader_epoch import LEADER_EPOCH_CHECKPOINT, LeaderEpochCache
from strom.storage.log_append import LogAppend
from strom.storage.log_core import guard_io
from strom.storage.log_loader import load_segments
from strom.storage.segment import LogSegment, TimestampAndOffset
from strom.storage.segment_files import FileSlice

EARLIEST_TIMESTAMP: Final = -2
LATEST_TIMESTAMP: Final = -1
MAX_TIMESTAMP: Final = -3


class FetchDataInfo(Value):
    __slots__ = ("slices", "total_bytes")
    FIELDS: ClassVar[tuple[str, ...]] = ("slices", "total_bytes")
    slices: Final[tuple[FileSlice, ...]]
    total_bytes: Final[int]

    def __init__(self, slices: tuple[FileSlice, ...], total_bytes: int) -> None:
        self.slices = slices
        self.total_bytes = total_bytes


_EMPTY_FETCH: Final = FetchDataInfo((), 0)


def parse_topic_partition_dir(name: str) -> tuple[str, int] | None:
    """``my.topic-3`` -> ("my.topic", 3); None if the name is not a partition dir."""
    topic, sep, partition = name.rpartition("-")
    if not sep or not topic or not partition.isdigit():
        return None
    return topic, int(partition)


class PartitionLog(LogAppend):
    """A partition's segments and offsets. Create with :meth:`open`."""

    # -- opening ---------------------------------------------------------------

    @classmethod
    def open(
        cls,
        dir: Path,
        config: LogConfig,
        now_ms: int,
        clean_shutdown: bool,
        *,
        recovery_point: int = 0,
        log_start_offset: int = 0,
        high_watermark: int | None = None,
        on_dir_failure: DirFailureHandler | None = None,
        deletions: DeletionQueue | None = None,
    ) -> PartitionLog:
        """Load (and after an unclean shutdown, recover) the log in ``dir``. May raise OSError."""
        dir.mkdir(parents=True, exist_ok=True)
        log = cls(dir, config, on_dir_failure, deletions)
        log.last_flush_ms = now_ms
        log.leader_epoch_cache = LeaderEpochCache.load(dir / LEADER_EPOCH_CHECKPOINT)
        load_segments(log, now_ms, clean_shutdown, recovery_point)
        if not log.segments:
            log.segments.append(log._new_segment(log_start_offset, now_ms))
        log.log_end_offset = log.segments[-1].read_next_offset()
        log.log_start_offset = min(
            max(log_start_offset, log.segments[0].base_offset), log.log_end_offset
        )
        log.recovery_point = min(recovery_point if clean_shutdown else 2**63, log.log_end_offset)
        log.leader_epoch_cache.truncate_from_end(log.log_end_offset)
        log.leader_epoch_cache.truncate_from_start(log.log_start_offset)
        hw = log.log_start_offset if high_watermark is None else high_watermark
        log.update_high_watermark(hw)
        log._load_producer_state()
        return log

    # -- error handling --------------------------------------------------------

    def mark_offline(self) -> None:
        """Called when the log's directory went offline: release files, refuse calls.
        As in :meth:`detach`, .log fds are not closed here but when the last slice or
        storage job holding them is dropped: a sendfile in flight never reads a
        descriptor number that was closed and reused for another file."""
        self.detach()

    # -- reading ---------------------------------------------------------------

    def read(
        self,
        fetch_offset: int,
        max_bytes: int,
        max_offset: int | None = None,
        min_one_message: bool = True,
    ) -> FetchDataInfo:
        """Whole batches from the batch containing ``fetch_offset`` (one segment at most).

        ``max_offset`` is an exclusive bound on batch base offsets (the high
        watermark for consumers); None means the log end offset. Guarded as
        :func:`guard_io` guards, written out: it runs per partition of every fetch,
        and the wrapper's call cost as much again as a read of a caught-up partition.
        """
        if self.offline:
            raise self.offline_error()
        leo = self.log_end_offset
        if fetch_offset < self.log_start_offset or fetch_offset > leo:
            raise KafkaError(
                ErrorCode.OFFSET_OUT_OF_RANGE,
                f"offset {fetch_offset} is outside [{self.log_start_offset}, {leo}]",
            )
        limit = leo if max_offset is None or max_offset > leo else max_offset  # no min() call
        if fetch_offset >= limit:
            return _EMPTY_FETCH
        segments = self.segments
        # a fetch near the log end reads the active segment: no search among the segments
        first = len(segments) - 1
        if fetch_offset < segments[first].base_offset:
            first = self.segment_index_for(fetch_offset)
        try:
            for segment in segments[first:]:
                found = segment.read(fetch_offset, max_bytes, limit, min_one_message)
                if found is not None:
                    if not found.length:
                        return _EMPTY_FETCH
                    return FetchDataInfo((found,), found.length)
        except OSError as exc:
            raise self.io_failure(exc) from exc
        return _EMPTY_FETCH

    @guard_io
    def fetch_offset_by_timestamp(self, timestamp: int) -> TimestampAndOffset | None:
        """ListOffsets: -2 earliest, -1 latest, -3 max timestamp, else first ts >= target."""
        if timestamp == EARLIEST_TIMESTAMP:
            return self.earliest()
        if timestamp == LATEST_TIMESTAMP:
            return self.latest()
        if timestamp == MAX_TIMESTAMP:
            return self.max_timestamp_offset()
        for segment in self.segments:
            if segment.largest_timestamp >= timestamp:
                found = segment.find_offset_by_timestamp(timestamp, self.log_start_offset)
                if found is not None:
                    return found
        return None

    def earliest(self) -> TimestampAndOffset:
        epoch = self.leader_epoch_cache.epoch_for_offset(self.log_start_offset)
        return TimestampAndOffset(-1, self.log_start_offset, epoch)

    def latest(self) -> TimestampAndOffset:
        return TimestampAndOffset(-1, self.log_end_offset, self.leader_epoch_cache.latest_epoch)

    def max_timestamp_offset(self) -> TimestampAndOffset | None:
        """The first record carrying the log's max timestamp (ListOffsets -3)."""
        best = max(self.segments, key=lambda segment: segment.max_timestamp_so_far)
        if best.max_timestamp_so_far < 0:
            return None
        return best.find_offset_by_timestamp(best.max_timestamp_so_far, self.log_start_offset)

    def end_offset_for_epoch(self, leader_epoch: int) -> tuple[int, int]:
        """OffsetsForLeaderEpoch: (epoch, end offset), (-1, -1) when unknown."""
        return self.leader_epoch_cache.end_offset_for(leader_epoch, self.log_end_offset)

    # -- offsets ---------------------------------------------------------------

    @guard_io
    def truncate_to(self, offset: int) -> bool:
        """Remove batches from the one containing ``offset``; False if nothing to do."""
        if offset < 0:
            raise ValueError(f"cannot truncate to a negative offset {offset}")
        if offset >= self.log_end_offset:
            return False
        if offset < self.segments[0].base_offset:
            self.truncate_fully_and_start_at(offset, self.segments[0].created_ms)
            return True
        self.truncations += 1
        removed: list[LogSegment] = []
        while len(self.segments) > 1 and self.active_segment.base_offset > offset:
            removed.append(self.segments.pop())
        self._schedule_deletion(removed, None)
        self.active_segment.truncate_to(offset)
        self.log_end_offset = self.active_segment.read_next_offset()
        self.log_start_offset = min(self.log_start_offset, self.log_end_offset)
        self.recovery_point = min(self.recovery_point, self.log_end_offset)
        self.high_watermark = min(self.high_watermark, self.log_end_offset)
        self.leader_epoch_cache.truncate_from_end(self.log_end_offset)
        self.producer_state.truncate_snapshots(self.log_end_offset)
        self._load_producer_state()
        return True

    @guard_io
    def truncate_fully_and_start_at(self, offset: int, now_ms: int) -> None:
        """Delete every segment and restart the log empty at ``offset``."""
        self.truncations += 1
        removed, self.segments = self.segments, []
        self._schedule_deletion(removed, now_ms)
        self.segments = [self._new_segment(offset, now_ms)]
        self.log_start_offset = self.log_end_offset = offset
        self.high_watermark = self.recovery_point = offset
        self.leader_epoch_cache.clear()
        self.producer_state.truncate_snapshots(-1)
        self.producer_state.producers = {}
        self.txn_index.clear()

    @guard_io
    def delete_records_before(self, offset: int, now_ms: int) -> int:
        """DeleteRecords: advance the log start offset; return the new one."""
        if offset > self.high_watermark:
            raise KafkaError(
                ErrorCode.OFFSET_OUT_OF_RANGE,
                f"offset {offset} is above the high watermark {self.high_watermark}",
            )
        if offset > self.log_start_offset:
            self.log_start_offset = offset
            self.leader_epoch_cache.truncate_from_start(offset)
            self._delete_segments(retention.log_start_offset_breached(self), now_ms)
        return self.log_start_offset

    @guard_io
    def delete_expired_segments(self, now_ms: int) -> int:
        """Retention (retention.ms, retention.bytes) and log start offset; count deleted."""
        deleted = 0
        if self.config.delete_enabled:
            deleted += self._delete_segments(retention.expired_by_time(self, now_ms), now_ms)
            deleted += self._delete_segments(retention.expired_by_size(self), now_ms)
        deleted += self._delete_segments(retention.log_start_offset_breached(self), now_ms)
        return deleted

    def _delete_segments(self, count: int, now_ms: int) -> int:
        if count <= 0:
            return 0
        if count == len(self.segments):
            self.roll(now_ms)
        doomed, self.segments = self.segments[:count], self.segments[count:]
        self._schedule_deletion(doomed, now_ms)
        if self.segments[0].base_offset > self.log_start_offset:
            self.log_start_offset = self.segments[0].base_offset
            self.leader_epoch_cache.truncate_from_start(self.log_start_offset)
        self.high_watermark = max(self.high_watermark, self.log_start_offset)
        self.producer_state.delete_snapshots_before(self.log_start_offset)
        self.txn_index.drop_before(self.segments[0].base_offset)
        return count

    # -- flushing and lifecycle ------------------------------------------------

    def _flush_job(self, now_ms: int | None) -> FlushJob:
        start = self.segment_index_for(self.recovery_point)
        segments: list[LogSegment] = []
        if self.log_end_offset > self.recovery_point or self.roll_flush_pending:
            segments = self.segments[start:]
        snapshots, self.unflushed_snapshots = self.unflushed_snapshots, []
        self.roll_flush_pending = self.flush_requested = False
        if now_ms is not None:
            self.last_flush_ms = now_ms
        return FlushJob(self, segments, self.log_end_offset, snapshots)

    @guard_io
    def flush(self, now_ms: int | None = None) -> None:
        """fsync segments holding offsets at or above the recovery point, in this
        thread (shutdown, moves, tests); the loop uses :meth:`flush_job`."""
        job = self._flush_job(now_ms)
        job.run()
        if job.error is not None:
            raise job.error
        job.complete()

    def flush_job(self, now_ms: int) -> FlushJob | None:
        """A flush to run in a storage thread if flush.ms has passed, a rolled segment
        awaits its flush or flush.messages was reached; None otherwise."""
        if self.offline:
            return None
        due = now_ms - self.last_flush_ms >= self.config.flush_interval_ms
        if due or self.roll_flush_pending or self.flush_requested:
            return self._flush_job(now_ms)
        return None

    def maybe_flush(self, now_ms: int) -> bool:
        """:meth:`flush_job` run in this thread; True if there was one."""
        job = self.flush_job(now_ms)
        if job is None:
            return False
        job.run()
        if job.error is not None:
            self.handle_io_error(job.error)
            raise KafkaError(ErrorCode.KAFKA_STORAGE_ERROR, f"{self.dir}: {job.error}")
        job.complete()
        return True

    @guard_io
    def close(self) -> None:
        if self.segments and not self.offline:
            self.producer_state.write_snapshot(self.log_end_offset)
        for segment in self.segments:
            segment.close()

    def detach(self) -> None:
        """Stop using the files (the log refuses calls) without closing .log fds.

        In-flight FileSlices keep reading; the fds close when they are dropped.
        Used before the LogManager renames and removes a deleted partition.
        """
        for segment in self.segments:
            with contextlib.suppress(OSError):
                segment.offset_index.close()
            with contextlib.suppress(OSError):
                segment.time_index.close()
        self.segments = []
        self.offline = True

    @guard_io
    def delete(self) -> None:
        """Remove the whole partition directory (open slices stay readable)."""
        for segment in self.segments:
            segment.delete()
        shutil.rmtree(self.dir)
        self.segments = []

    def __repr__(self) -> str:
        return (
            f"PartitionLog({self.dir.name}, log_start_offset={self.log_start_offset}, "
            f"log_end_offset={self.log_end_offset}, high_watermark={self.high_watermark})"
        )
