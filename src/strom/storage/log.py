"""The log of one partition: ordered segments, offsets, leader epochs, retention.

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
import functools
import logging
import os
import shutil
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Concatenate, Final, ParamSpec, TypeVar

from mypy_extensions import mypyc_attr

from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.record_stream import read_control_record
from strom.protocol.records import (
    AppendOrigin,
    BatchHeader,
    ControlRecord,
    parse_header,
    set_log_append_time,
    stamp_batch,
    validate_batches,
)
from strom.storage import retention
from strom.storage.config import LONG_MAX, LogConfig
from strom.storage.deletion import DELETED_SUFFIX, DeletionQueue
from strom.storage.flush import FlushJob
from strom.storage.jobs import DirFailureHandler as DirFailureHandler
from strom.storage.leader_epoch import LEADER_EPOCH_CHECKPOINT, LeaderEpochCache
from strom.storage.producer_state import SNAPSHOT_SUFFIX, ProducerStateManager
from strom.storage.segment import (
    LOG_SUFFIX,
    FileSlice,
    LogSegment,
    TimestampAndOffset,
    filename_prefix,
)
from strom.storage.txn_index import AbortedTxn, TransactionIndex
from strom.storage.validator import check_timestamps, require_keys

log = logging.getLogger(__name__)
EARLIEST_TIMESTAMP: Final = -2
LATEST_TIMESTAMP: Final = -1
MAX_TIMESTAMP: Final = -3
_STRAY_SUFFIXES: Final = (".deleted", ".cleaned", ".swap", ".tmp")
_IN_USE_SUFFIXES: Final = (".deleted", ".cleaned")  # files storage threads still own

P = ParamSpec("P")
R = TypeVar("R")


@mypyc_attr(native_class=False)  # derives from an interpreted class (see protocol.frame)
class UnexpectedAppendOffsetError(KafkaError):
    """A follower append whose first offset is below the log end offset."""

    def __init__(self, message: str, first_offset: int, last_offset: int) -> None:
        super().__init__(ErrorCode.UNKNOWN_SERVER_ERROR, message)
        self.first_offset = first_offset
        self.last_offset = last_offset


@dataclass(frozen=True, slots=True)
class AppendInfo:
    first_offset: int  # -1 when nothing was appended
    last_offset: int
    log_append_time: int  # -1 for CreateTime
    max_timestamp: int
    offset_of_max_timestamp: int
    log_start_offset: int
    num_batches: int
    valid_bytes: int
    batches: tuple[BatchHeader, ...]  # as stored: offsets and epochs stamped


@dataclass(frozen=True, slots=True)
class FetchDataInfo:
    slices: tuple[FileSlice, ...]
    total_bytes: int


_EMPTY_FETCH: Final = FetchDataInfo((), 0)


def parse_topic_partition_dir(name: str) -> tuple[str, int] | None:
    """``my.topic-3`` -> ("my.topic", 3); None if the name is not a partition dir."""
    topic, sep, partition = name.rpartition("-")
    if not sep or not topic or not partition.isdigit():
        return None
    return topic, int(partition)


def _guard_io(
    method: Callable[Concatenate[PartitionLog, P], R],
) -> Callable[Concatenate[PartitionLog, P], R]:
    """Turn OSError into KAFKA_STORAGE_ERROR and take the log offline."""

    def wrapper(self: PartitionLog, /, *args: P.args, **kwargs: P.kwargs) -> R:
        if self.offline:
            raise KafkaError(ErrorCode.KAFKA_STORAGE_ERROR, f"log {self.dir} is offline")
        try:
            return method(self, *args, **kwargs)
        except OSError as exc:
            self.handle_io_error(exc)
            raise KafkaError(ErrorCode.KAFKA_STORAGE_ERROR, f"{self.dir}: {exc}") from exc

    functools.update_wrapper(wrapper, method)
    return wrapper


def _markers(
    data: bytes | bytearray | memoryview, headers: Sequence[BatchHeader]
) -> dict[int, ControlRecord]:
    """The control records (transaction markers) among ``headers``, by base offset."""
    out: dict[int, ControlRecord] = {}
    if not any(h.is_control for h in headers):
        return out
    view = memoryview(data)
    position = 0
    for h in headers:
        if h.is_control and h.producer_id >= 0:
            marker = read_control_record(view[position : position + h.size_in_bytes])
            if marker is not None:
                out[h.base_offset] = marker
        position += h.size_in_bytes
    return out


class PartitionLog:
    """A partition's segments and offsets. Create with :meth:`open`."""

    def __init__(
        self,
        dir: Path,
        config: LogConfig,
        on_dir_failure: DirFailureHandler | None,
        deletions: DeletionQueue | None = None,
    ):
        self.dir = dir
        self.config = config
        self.on_dir_failure = on_dir_failure
        # Segments removed from the log wait here for file.delete.delay.ms (the
        # LogManager's queue, shared by its logs; a log of its own otherwise).
        self.deletions = deletions if deletions is not None else DeletionQueue()
        self.offline = False
        # Bumped by every truncation: a storage job planned before one is stale.
        self.truncations = 0
        # flush.messages was reached: the next flush job (the produce path awaits it).
        self.flush_requested = False
        self.unflushed_snapshots: list[Path] = []
        self.segments: list[LogSegment] = []
        self.log_start_offset = 0
        self.log_end_offset = 0
        self.high_watermark = 0
        self.recovery_point = 0
        self.last_flush_ms = 0
        self.roll_flush_pending = False
        self.leader_epoch_cache = LeaderEpochCache(dir / LEADER_EPOCH_CHECKPOINT)
        self.producer_state = ProducerStateManager(dir)
        self.txn_index = TransactionIndex(dir)

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
        log._load_segments(now_ms, clean_shutdown, recovery_point)
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

    def _load_producer_state(self) -> None:
        """Newest snapshot, then replay the batch headers written after it."""
        start = max(self.producer_state.load(self.log_end_offset), 0)
        self.txn_index.load()
        self.txn_index.truncate_from(start)
        for segment in self.segments[self.segment_index_for(start) :]:
            headers: list[BatchHeader] = []
            markers: dict[int, ControlRecord] = {}
            for position, h in segment.iter_headers():
                if h.base_offset < start:
                    continue
                headers.append(h)
                if h.is_control and h.producer_id >= 0:
                    raw = os.pread(segment.file.fileno, h.size_in_bytes, position)
                    markers.update(_markers(raw, [h]))
            self._track_producers(headers, markers)

    def _track_producers(
        self, headers: Sequence[BatchHeader], markers: dict[int, ControlRecord]
    ) -> None:
        for aborted in self.producer_state.update(headers, markers):
            self.txn_index.append(aborted)

    @property
    def last_stable_offset(self) -> int:
        """The first offset of the oldest open transaction, capped by the high watermark."""
        unstable = self.producer_state.first_unstable_offset()
        return self.high_watermark if unstable is None else min(unstable, self.high_watermark)

    def collect_aborted_transactions(self, fetch_offset: int, upper_bound: int) -> list[AbortedTxn]:
        return self.txn_index.collect(fetch_offset, upper_bound)

    def _new_segment(self, base_offset: int, now_ms: int) -> LogSegment:
        prefix = filename_prefix(base_offset)
        for stale in self.dir.glob(prefix + ".*"):
            if not stale.name.endswith(_IN_USE_SUFFIXES):
                stale.unlink()
        segment = LogSegment(
            self.dir,
            base_offset,
            index_interval_bytes=self.config.index_interval_bytes,
            segment_index_bytes=self.config.segment_index_bytes,
            now_ms=now_ms,
        )
        if self.config.preallocate:
            segment.preallocate(self.config.segment_bytes)
        return segment

    def _schedule_deletion(self, segments: Sequence[LogSegment], now_ms: int | None) -> None:
        """Rename removed segments' files to ``.deleted``; a storage thread unlinks them
        file.delete.delay.ms later (see strom.storage.deletion)."""
        for segment in segments:
            segment.change_suffix(DELETED_SUFFIX)
            self.deletions.schedule(segment, self.config.file_delete_delay_ms, now_ms)

    def _scan_base_offsets(self) -> list[int]:
        base_offsets: list[int] = []
        for path in self.dir.iterdir():
            stem, suffix = path.stem, path.suffix
            if path.name.endswith(_STRAY_SUFFIXES):
                path.unlink()
            elif len(stem) == 20 and stem.isdigit():
                if suffix == LOG_SUFFIX:
                    base_offsets.append(int(stem))
                elif suffix != SNAPSHOT_SUFFIX and not path.with_suffix(LOG_SUFFIX).exists():
                    path.unlink()  # an index without its log
        return sorted(base_offsets)

    def _load_segments(self, now_ms: int, clean_shutdown: bool, recovery_point: int) -> None:
        for base_offset in self._scan_base_offsets():
            self.segments.append(
                LogSegment(
                    self.dir,
                    base_offset,
                    index_interval_bytes=self.config.index_interval_bytes,
                    segment_index_bytes=self.config.segment_index_bytes,
                    now_ms=now_ms,
                )
            )
        first_unflushed = len(self.segments)
        if not clean_shutdown:
            bases = [segment.base_offset for segment in self.segments]
            first_unflushed = max(0, bisect_right(bases, recovery_point) - 1)
        for i, segment in enumerate(self.segments):
            if i < first_unflushed and not segment.needs_recovery:
                continue
            truncated = segment.recover(self._assign_epoch_from_batch)
            segment.flush()
            if truncated:  # Kafka: "Found invalid messages in log segment ..."
                log.warning(
                    "recovery of %s cut %d bytes of a torn or corrupt tail from segment %d "
                    "at byte %d (next offset %d)",
                    self.dir.name,
                    truncated,
                    segment.base_offset,
                    segment.size,
                    segment.read_next_offset(),
                )
            if truncated and i + 1 < len(self.segments):
                for later in self.segments[i + 1 :]:
                    later.delete()
                del self.segments[i + 1 :]
                break

    def _assign_epoch_from_batch(self, header: BatchHeader) -> None:
        epoch = header.partition_leader_epoch
        if epoch >= 0 and epoch > self.leader_epoch_cache.latest_epoch:
            self.leader_epoch_cache.assign(epoch, header.base_offset)

    # -- error handling --------------------------------------------------------

    def handle_io_error(self, exc: OSError) -> None:
        """Mark the log offline and report the failure of its directory."""
        self.offline = True
        if self.on_dir_failure is not None:
            self.on_dir_failure(self.dir.parent, exc)

    def mark_offline(self) -> None:
        """Called when the log's directory went offline: release files, refuse calls.
        As in :meth:`detach`, .log fds are not closed here but when the last slice or
        storage job holding them is dropped: a sendfile in flight never reads a
        descriptor number that was closed and reused for another file."""
        self.detach()

    # -- appending -------------------------------------------------------------

    @property
    def active_segment(self) -> LogSegment:
        return self.segments[-1]

    @_guard_io
    def append_as_leader(
        self,
        records: bytes | bytearray | memoryview,
        leader_epoch: int,
        now_ms: int,
        *,
        origin: AppendOrigin = AppendOrigin.CLIENT,
        before_append: Callable[[Sequence[BatchHeader], int], None] | None = None,
    ) -> AppendInfo:
        """Validate, assign offsets (and LogAppendTime), append.

        ``before_append(headers, first_offset)`` runs after validation and
        before anything is written: the hook for producer-state checks
        (idempotence, transactions); it rejects a produce by raising KafkaError.
        """
        headers = validate_batches(records, self.config.max_message_bytes, origin=origin)
        if not headers:
            return self._empty_append_info()
        if len(records) > self.config.segment_bytes:
            raise KafkaError(ErrorCode.RECORD_LIST_TOO_LARGE, "records exceed segment.bytes")
        check_timestamps(self.config, records, headers, now_ms)
        if origin == AppendOrigin.CLIENT and len(headers) != 1:
            raise KafkaError(
                ErrorCode.INVALID_RECORD,
                "Produce requests with version 3 or later must contain exactly one record batch",
            )
        if origin == AppendOrigin.CLIENT and self.config.compact_enabled:
            require_keys(records, headers, self.dir.name)
        duplicate = self.producer_state.find_duplicate(headers)
        if duplicate is not None:
            return AppendInfo(
                duplicate.first_offset,
                duplicate.last_offset,
                -1,
                duplicate.timestamp,
                duplicate.last_offset,
                self.log_start_offset,
                0,
                0,
                (),
            )
        self.producer_state.check(headers)
        if before_append is not None:
            before_append(headers, self.log_end_offset)
        buf = bytearray(records)
        append_time = now_ms if self.config.log_append_time else -1
        offset = self.log_end_offset
        position = 0
        stamped: list[BatchHeader] = []
        for header in headers:
            stamp_batch(buf, position, offset, leader_epoch)
            if append_time >= 0:
                set_log_append_time(buf, position, append_time)
            stamped.append(parse_header(buf, position))
            position += header.size_in_bytes
            offset += header.last_offset_delta + 1
        info = self._append(buf, stamped, now_ms, append_time)
        self._track_producers(stamped, _markers(buf, stamped))
        return info

    @_guard_io
    def append_as_follower(
        self, records: bytes | bytearray | memoryview, now_ms: int
    ) -> AppendInfo:
        """Append replicated batches with their offsets (first offset >= log end offset)."""
        headers = validate_batches(records, LONG_MAX, origin=AppendOrigin.REPLICATION)
        if not headers:
            return self._empty_append_info()
        first, last = headers[0].base_offset, headers[-1].last_offset
        if first < self.log_end_offset:
            raise UnexpectedAppendOffsetError(
                f"first offset {first} is below the log end offset {self.log_end_offset}",
                first,
                last,
            )
        previous = first - 1
        for header in headers:
            if header.base_offset <= previous or header.last_offset < header.base_offset:
                raise KafkaError(ErrorCode.CORRUPT_MESSAGE, "out of order offsets in append")
            previous = header.last_offset
        info = self._append(records, headers, now_ms, -1)
        self._track_producers(headers, _markers(records, headers))
        return info

    def _empty_append_info(self) -> AppendInfo:
        return AppendInfo(-1, -1, -1, -1, -1, self.log_start_offset, 0, 0, ())

    def _append(
        self,
        data: bytes | bytearray | memoryview,
        headers: Sequence[BatchHeader],
        now_ms: int,
        append_time: int,
    ) -> AppendInfo:
        max_timestamp, offset_of_max = -1, headers[0].base_offset
        for header in headers:
            if header.max_timestamp > max_timestamp:
                max_timestamp, offset_of_max = header.max_timestamp, header.last_offset
        first, last = headers[0].base_offset, headers[-1].last_offset
        segment = self.active_segment
        if segment.should_roll(
            batches_size=len(data),
            max_timestamp=max_timestamp,
            max_offset=last,
            now_ms=now_ms,
            segment_bytes=self.config.segment_bytes,
            segment_ms=self.config.max_segment_ms,
        ):
            segment = self.roll(now_ms, first)
        segment.append(data, headers)
        for header in headers:
            self._assign_epoch_from_batch(header)
        self.log_end_offset = last + 1
        if self.log_end_offset - self.recovery_point >= self.config.flush_interval_messages:
            self.flush_requested = True  # fsync in a storage thread; produce awaits it
        return AppendInfo(
            first_offset=first,
            last_offset=last,
            log_append_time=append_time,
            max_timestamp=max_timestamp,
            offset_of_max_timestamp=offset_of_max,
            log_start_offset=self.log_start_offset,
            num_batches=len(headers),
            valid_bytes=len(data),
            batches=tuple(headers),
        )

    def roll(self, now_ms: int, base_offset: int | None = None) -> LogSegment:
        """Start a new active segment at the log end offset (or ``base_offset`` if larger)."""
        new_base = max(self.log_end_offset, base_offset or 0)
        active = self.active_segment
        if active.size == 0 and active.base_offset == new_base:
            return active
        active.on_become_inactive()
        segment = self._new_segment(new_base, now_ms)
        if active.size == 0:
            self.segments.pop()
            active.delete()
        self.segments.append(segment)
        self.roll_flush_pending = True
        # As Kafka: the snapshot is written now and fsynced by the flush that follows.
        self.producer_state.write_snapshot(self.log_end_offset, sync=False)
        self.unflushed_snapshots.append(self.producer_state.snapshot_path(self.log_end_offset))
        return segment

    # -- reading ---------------------------------------------------------------

    def segment_index_for(self, offset: int) -> int:
        """Index in :attr:`segments` of the segment holding ``offset`` (the first one
        for offsets below it)."""
        bases = [segment.base_offset for segment in self.segments]
        return max(0, bisect_right(bases, offset) - 1)

    @_guard_io
    def read(
        self,
        fetch_offset: int,
        max_bytes: int,
        max_offset: int | None = None,
        min_one_message: bool = True,
    ) -> FetchDataInfo:
        """Whole batches from the batch containing ``fetch_offset`` (one segment at most).

        ``max_offset`` is an exclusive bound on batch base offsets (the high
        watermark for consumers); None means the log end offset.
        """
        leo = self.log_end_offset
        if fetch_offset < self.log_start_offset or fetch_offset > leo:
            raise KafkaError(
                ErrorCode.OFFSET_OUT_OF_RANGE,
                f"offset {fetch_offset} is outside [{self.log_start_offset}, {leo}]",
            )
        limit = leo if max_offset is None else min(max_offset, leo)
        if fetch_offset >= limit:
            return _EMPTY_FETCH
        for segment in self.segments[self.segment_index_for(fetch_offset) :]:
            found = segment.read(fetch_offset, max_bytes, limit, min_one_message)
            if found is not None:
                if not found.length:
                    return _EMPTY_FETCH
                return FetchDataInfo((found,), found.length)
        return _EMPTY_FETCH

    @_guard_io
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

    def update_high_watermark(self, offset: int) -> int:
        """Set the high watermark, clamped to [log_start_offset, log_end_offset]."""
        self.high_watermark = min(max(offset, self.log_start_offset), self.log_end_offset)
        return self.high_watermark

    @_guard_io
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

    @_guard_io
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

    @_guard_io
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

    @_guard_io
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

    @_guard_io
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

    @property
    def size_in_bytes(self) -> int:
        return sum(segment.size for segment in self.segments)

    @property
    def num_segments(self) -> int:
        return len(self.segments)

    @_guard_io
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

    @_guard_io
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
