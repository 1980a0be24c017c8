"""The state of a partition log (strom.storage.log) and what its parts share.

:class:`LogCore` holds the segments, the offsets, the leader epoch cache, the
producer state and the transaction index, with the helpers that appending
(strom.storage.log_append), loading and truncating all use: a new segment, the
deletion of segments that left the log, the producers' replay of batch headers,
the segment of an offset. :func:`guard_io` wraps every method that touches the
files: any OSError takes the log offline and becomes KAFKA_STORAGE_ERROR.
"""

from __future__ import annotations

import functools
import os
from bisect import bisect_right
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Concatenate, Final, ParamSpec, TypeVar

from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.record_stream import read_control_record
from strom.protocol.records import BatchHeader, ControlRecord
from strom.storage.config import LogConfig
from strom.storage.deletion import DELETED_SUFFIX, DeletionQueue
from strom.storage.jobs import DirFailureHandler
from strom.storage.leader_epoch import LEADER_EPOCH_CHECKPOINT, LeaderEpochCache
from strom.storage.producer_state import ProducerStateManager
from strom.storage.segment import LogSegment
from strom.storage.segment_files import filename_prefix
from strom.storage.txn_index import AbortedTxn, TransactionIndex

_IN_USE_SUFFIXES: Final = (".deleted", ".cleaned")  # files storage threads still own

P = ParamSpec("P")
R = TypeVar("R")
L = TypeVar("L", bound="LogCore")


def guard_io(
    method: Callable[Concatenate[L, P], R],
) -> Callable[Concatenate[L, P], R]:
    """Turn OSError into KAFKA_STORAGE_ERROR and take the log offline."""

    def wrapper(self: L, /, *args: P.args, **kwargs: P.kwargs) -> R:
        if self.offline:
            raise self.offline_error()
        try:
            return method(self, *args, **kwargs)
        except OSError as exc:
            raise self.io_failure(exc) from exc

    functools.update_wrapper(wrapper, method)
    return wrapper


def control_markers(
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


class LogCore:
    """A partition log's state: its segments, offsets, epochs and producer state."""

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
                    markers.update(control_markers(raw, [h]))
            self._track_producers(headers, markers)

    def _track_appended(
        self, data: bytes | bytearray | memoryview, headers: Sequence[BatchHeader]
    ) -> None:
        """The producers' state after an append of ``headers`` (``data``): nothing to do
        for batches without a producer id (the producer state skips them)."""
        for h in headers:
            if h.producer_id >= 0:
                self._track_producers(headers, control_markers(data, headers))
                return

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

    def _assign_epoch_from_batch(self, header: BatchHeader) -> None:
        epoch = header.partition_leader_epoch
        if epoch >= 0 and epoch > self.leader_epoch_cache.latest_epoch:
            self.leader_epoch_cache.assign(epoch, header.base_offset)

    def handle_io_error(self, exc: OSError) -> None:
        """Mark the log offline and report the failure of its directory."""
        self.offline = True
        if self.on_dir_failure is not None:
            self.on_dir_failure(self.dir.parent, exc)

    def offline_error(self) -> KafkaError:
        """What a guarded method (:func:`guard_io`) raises once the log is offline."""
        return KafkaError(ErrorCode.KAFKA_STORAGE_ERROR, f"log {self.dir} is offline")

    def io_failure(self, exc: OSError) -> KafkaError:
        """Take the log offline for ``exc``; the KAFKA_STORAGE_ERROR to raise instead."""
        self.handle_io_error(exc)
        return KafkaError(ErrorCode.KAFKA_STORAGE_ERROR, f"{self.dir}: {exc}")

    @property
    def active_segment(self) -> LogSegment:
        return self.segments[-1]

    def segment_index_for(self, offset: int) -> int:
        """Index in :attr:`segments` of the segment holding ``offset`` (the first one
        for offsets below it)."""
        bases = [segment.base_offset for segment in self.segments]
        return max(0, bisect_right(bases, offset) - 1)

    def update_high_watermark(self, offset: int) -> int:
        """Set the high watermark, clamped to [log_start_offset, log_end_offset]."""
        self.high_watermark = min(max(offset, self.log_start_offset), self.log_end_offset)
        return self.high_watermark

    @property
    def size_in_bytes(self) -> int:
        return sum(segment.size for segment in self.segments)

    @property
    def num_segments(self) -> int:
        return len(self.segments)
