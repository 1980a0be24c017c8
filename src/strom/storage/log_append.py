"""Appending to a partition log (the produce and replication hot paths).

The leader validates the batches (strom.protocol.records.validate_batches, plus
timestamps and keys, strom.storage.validator), answers a retried idempotent
batch with its first append, checks the producer state, then stamps base
offsets (from the log end offset), its leader epoch and LogAppendTime into the
batches in place and appends the bytes; followers append batches with offsets
as given. A batch that would not fit the active segment (or is due by time,
or overflows its indexes or relative offsets) rolls a new segment first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ClassVar, Final

from mypy_extensions import mypyc_attr

from strom.common.values import Value
from strom.protocol.append_origin import AppendOrigin
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.records import (
    LOG_OVERHEAD,
    BatchHeader,
    parse_header,
    set_log_append_time,
    stamp_batch,
    validate_batches,
)
from strom.storage.config import LONG_MAX
from strom.storage.log_core import LogCore, guard_io
from strom.storage.segment import LogSegment
from strom.storage.validator import check_timestamps, require_keys


@mypyc_attr(native_class=False)  # derives from an interpreted class (see protocol.frame)
class UnexpectedAppendOffsetError(KafkaError):
    """A follower append whose first offset is below the log end offset."""

    def __init__(self, message: str, first_offset: int, last_offset: int) -> None:
        super().__init__(ErrorCode.UNKNOWN_SERVER_ERROR, message)
        self.first_offset = first_offset
        self.last_offset = last_offset


class AppendInfo(Value):
    __slots__ = (
        "batches",
        "first_offset",
        "last_offset",
        "log_append_time",
        "log_start_offset",
        "max_timestamp",
        "num_batches",
        "offset_of_max_timestamp",
        "valid_bytes",
    )
    FIELDS: ClassVar[tuple[str, ...]] = (
        "first_offset",
        "last_offset",
        "log_append_time",
        "max_timestamp",
        "offset_of_max_timestamp",
        "log_start_offset",
        "num_batches",
        "valid_bytes",
        "batches",
    )
    first_offset: Final[int]  # -1 when nothing was appended
    last_offset: Final[int]
    log_append_time: Final[int]  # -1 for CreateTime
    max_timestamp: Final[int]
    offset_of_max_timestamp: Final[int]
    log_start_offset: Final[int]
    num_batches: Final[int]
    valid_bytes: Final[int]
    batches: Final[tuple[BatchHeader, ...]]  # as stored: offsets and epochs stamped

    def __init__(
        self,
        first_offset: int,
        last_offset: int,
        log_append_time: int,
        max_timestamp: int,
        offset_of_max_timestamp: int,
        log_start_offset: int,
        num_batches: int,
        valid_bytes: int,
        batches: tuple[BatchHeader, ...],
    ) -> None:
        self.first_offset = first_offset
        self.last_offset = last_offset
        self.log_append_time = log_append_time
        self.max_timestamp = max_timestamp
        self.offset_of_max_timestamp = offset_of_max_timestamp
        self.log_start_offset = log_start_offset
        self.num_batches = num_batches
        self.valid_bytes = valid_bytes
        self.batches = batches


def _stamp(
    buf: bytearray, headers: Sequence[BatchHeader], offset: int, leader_epoch: int, append_time: int
) -> list[BatchHeader]:
    """Stamp base offsets from ``offset``, ``leader_epoch`` and (when >= 0) LogAppendTime
    into the batches of ``buf`` in place; their headers as stamped."""
    position = 0
    stamped: list[BatchHeader] = []
    for h in headers:
        stamp_batch(buf, position, offset, leader_epoch)
        if append_time >= 0:  # attributes, max timestamp and CRC change: read them back
            set_log_append_time(buf, position, append_time)
            stamped.append(parse_header(buf, position))
        else:  # the header as stamped, without parsing it again
            stamped.append(
                BatchHeader(
                    offset,
                    h.batch_length,
                    leader_epoch,
                    h.magic,
                    h.crc,
                    h.attributes,
                    h.last_offset_delta,
                    h.base_timestamp,
                    h.max_timestamp,
                    h.producer_id,
                    h.producer_epoch,
                    h.base_sequence,
                    h.records_count,
                )
            )
        position += h.batch_length + LOG_OVERHEAD
        offset += h.last_offset_delta + 1
    return stamped


class LogAppend(LogCore):
    """Appends to a partition log: the leader's (validated, offsets and epoch stamped)
    and the followers' (offsets as replicated), and the roll to a new segment."""

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
        Guarded as :func:`guard_io` guards, written out: the wrapper's call, with its
        arguments passed on by name, cost a tenth of a produce's handling.
        """
        if self.offline:
            raise self.offline_error()
        try:
            return self._append_as_leader(records, leader_epoch, now_ms, origin, before_append)
        except OSError as exc:
            raise self.io_failure(exc) from exc

    def _append_as_leader(
        self,
        records: bytes | bytearray | memoryview,
        leader_epoch: int,
        now_ms: int,
        origin: AppendOrigin,
        before_append: Callable[[Sequence[BatchHeader], int], None] | None,
    ) -> AppendInfo:
        config = self.config
        headers = validate_batches(records, config.max_message_bytes, origin=origin)
        if not headers:
            return self._empty_append_info()
        if len(records) > config.segment_bytes:
            raise KafkaError(ErrorCode.RECORD_LIST_TOO_LARGE, "records exceed segment.bytes")
        check_timestamps(config, records, headers, now_ms)
        if origin == AppendOrigin.CLIENT:
            if len(headers) != 1:
                raise KafkaError(
                    ErrorCode.INVALID_RECORD,
                    "Produce requests with version 3 or later must contain exactly one record "
                    "batch",
                )
            if config.compact_enabled:
                require_keys(records, headers, self.dir.name)
        # a lone batch without a producer id is neither a retry nor in the producer state
        with_producer = len(headers) != 1 or headers[0].producer_id >= 0
        if with_producer:
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
        append_time = now_ms if config.log_append_time else -1
        stamped = _stamp(buf, headers, self.log_end_offset, leader_epoch, append_time)
        info = self._append(buf, stamped, now_ms, append_time)
        if with_producer:
            self._track_appended(buf, stamped)
        return info

    @guard_io
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
        self._track_appended(records, headers)
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
        first, last = headers[0].base_offset, headers[-1].last_offset
        max_timestamp, offset_of_max = -1, first
        for header in headers:
            if header.max_timestamp > max_timestamp:
                max_timestamp, offset_of_max = header.max_timestamp, header.last_offset
        segment = self.active_segment
        config = self.config
        # positional: a call by keyword costs more (batches_size, max_timestamp, max_offset,
        # now_ms, segment_bytes, segment_ms)
        if segment.should_roll(
            len(data), max_timestamp, last, now_ms, config.segment_bytes, config.max_segment_ms
        ):
            segment = self.roll(now_ms, first)
        segment.append(data, headers)
        epochs = self.leader_epoch_cache
        latest = epochs.latest_epoch
        for header in headers:  # _assign_epoch_from_batch, without a call per batch
            epoch = header.partition_leader_epoch
            if epoch > latest and epoch >= 0:
                epochs.assign(epoch, header.base_offset)
                latest = epochs.latest_epoch
        self.log_end_offset = last + 1
        if self.log_end_offset - self.recovery_point >= config.flush_interval_messages:
            self.flush_requested = True  # fsync in a storage thread; produce awaits it
        return AppendInfo(
            first,  # first_offset
            last,  # last_offset
            append_time,  # log_append_time
            max_timestamp,
            offset_of_max,  # offset_of_max_timestamp
            self.log_start_offset,
            len(headers),  # num_batches
            len(data),  # valid_bytes
            tuple(headers),  # batches
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
