"""One log segment: a .log file of whole v2 batches plus its two sparse indexes.

Files are named by the segment's base offset, zero-padded to 20 digits::

    00000000000000000000.log        batches, back to back, as on the wire
    00000000000000000000.index      see strom.storage.index (offset -> position)
    00000000000000000000.timeindex  see strom.storage.index (timestamp -> offset)

(names, suffixes and renames: strom.storage.segment_files; the open .log file whose
fd outlives a deleted segment: strom.storage.logfile).

A batch is stored exactly as produced except for its base offset and
partition leader epoch (stamped by the leader, outside the CRC) and, for
LogAppendTime topics, its max timestamp (CRC recomputed). Offsets grow
strictly from batch to batch; relative offsets must fit an int32.

Crash story: appends write the .log bytes first, then the index entries; the
log fsyncs only on flush. After an unclean shutdown the log recovers every
segment past its recovery point: :meth:`LogSegment.recover` reads batch by
batch (length, magic, offsets, CRC32C), truncates the file at the first
invalid byte (a torn write), and rebuilds both indexes from the valid batches.
Segments whose index files are missing or fail the sanity check are recovered
the same way even after a clean shutdown.

Readers get :class:`FileSlice` values that hold the open file, so a segment
deleted by retention stays readable until the last slice is gone: its files
are first renamed ``.deleted``, unlinked file.delete.delay.ms later in a
storage thread (see strom.storage.deletion), and the fd closes only when no
slice holds it. A segment written under another suffix (the cleaner's
``.cleaned`` copies) takes a live segment's names with :meth:`LogSegment.take_names_of`.

``preallocate``: a new segment's file is extended to segment.bytes up front
(Kafka's FileRecords on Linux); :attr:`LogSegment.size` is the data, and the
zeros past it are cut on roll and close, or by recovery after a crash.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import ClassVar, Final

from strom.common.crc import crc32c
from strom.common.values import Value
from strom.protocol.record_stream import stream_records
from strom.protocol.records import (
    ATTRIBUTES_OFFSET,
    BATCH_HEADER_SIZE,
    LAST_OFFSET_DELTA_OFFSET,
    LOG_OVERHEAD,
    MAGIC,
    MAGIC_OFFSET,
    MIN_BATCH_LENGTH,
    BatchHeader,
    parse_header,
)
from strom.storage.index import CorruptIndexError, OffsetIndex, TimeIndex
from strom.storage.logfile import LogFile
from strom.storage.segment_files import (
    INDEX_SUFFIX,
    LOG_SUFFIX,
    TIME_INDEX_SUFFIX,
    FileSlice,
    SegmentFiles,
    filename_prefix,
)

_INT32_MAX: Final = 2**31 - 1
_SCAN_CHUNK: Final = 8192
# What a read needs of a batch header: base_offset, batch_length, last_offset_delta (one
# unpack, no BatchHeader: a fetch scans headers without the other ten fields).
_SCAN: Final = struct.Struct(f">qi{LAST_OFFSET_DELTA_OFFSET - LOG_OVERHEAD}xi")


class TimestampAndOffset(Value):
    __slots__ = ("leader_epoch", "offset", "timestamp")
    FIELDS: ClassVar[tuple[str, ...]] = ("timestamp", "offset", "leader_epoch")
    timestamp: Final[int]
    offset: Final[int]
    leader_epoch: Final[int]

    def __init__(self, timestamp: int, offset: int, leader_epoch: int = -1) -> None:
        self.timestamp = timestamp
        self.offset = offset
        self.leader_epoch = leader_epoch


class LogSegment(SegmentFiles):
    """A segment's .log file and indexes; offsets in [base_offset, next segment)."""

    def __init__(
        self,
        dir: Path,
        base_offset: int,
        *,
        index_interval_bytes: int,
        segment_index_bytes: int,
        now_ms: int,
        suffix: str = "",
    ) -> None:
        self.dir = dir
        self.base_offset = base_offset
        self.index_interval_bytes = index_interval_bytes
        self.created_ms = now_ms
        self.suffix = suffix
        prefix = filename_prefix(base_offset)
        self.log_path = dir / (prefix + LOG_SUFFIX + suffix)
        index_path = dir / (prefix + INDEX_SUFFIX + suffix)
        time_index_path = dir / (prefix + TIME_INDEX_SUFFIX + suffix)
        self.needs_recovery = not (index_path.exists() and time_index_path.exists())
        self.file = LogFile(self.log_path)
        self.size = os.fstat(self.file.fileno).st_size
        try:
            self.offset_index = OffsetIndex.open(index_path, base_offset, segment_index_bytes)
            self.time_index = TimeIndex.open(time_index_path, base_offset, segment_index_bytes)
        except CorruptIndexError:
            self.needs_recovery = True
            index_path.unlink(missing_ok=True)
            time_index_path.unlink(missing_ok=True)
            self.offset_index = OffsetIndex.open(index_path, base_offset, segment_index_bytes)
            self.time_index = TimeIndex.open(time_index_path, base_offset, segment_index_bytes)
        if self.offset_index.max_position() > self.size:
            self.needs_recovery = True
        if self.size == 0:
            self.needs_recovery = False
        self.max_timestamp_so_far = -1
        self.offset_of_max_timestamp_so_far = base_offset
        self.rolling_based_timestamp: int | None = None
        self.bytes_since_last_index_entry = 0
        # The last batch of the file (position -1: not known), so that a fetch of it (a
        # consumer at the log end) needs no index lookup and no scan. Known after an
        # append to an empty or known tail, a recovery or read_next_offset; see _last_batch.
        self.last_batch_position = -1
        self.last_batch_size = 0
        self.last_batch_base_offset = -1
        self.last_batch_last_offset = -1
        if not self.needs_recovery:
            self._load_largest_timestamp()
            first = self._header_at(0)
            self.rolling_based_timestamp = first.max_timestamp if first else None

    # -- reading headers -------------------------------------------------------

    def _header_at(self, position: int) -> BatchHeader | None:
        data = os.pread(self.file.fileno, BATCH_HEADER_SIZE, position)
        if len(data) < BATCH_HEADER_SIZE:
            return None
        return parse_header(data)

    def iter_headers(self, position: int = 0) -> Iterator[tuple[int, BatchHeader]]:
        """(position, header) of each whole batch from ``position`` to the end."""
        end = self.size
        chunk = b""
        chunk_start = position
        while position + BATCH_HEADER_SIZE <= end:
            offset = position - chunk_start
            if offset < 0 or offset + BATCH_HEADER_SIZE > len(chunk):
                chunk = os.pread(self.file.fileno, min(_SCAN_CHUNK, end - position), position)
                chunk_start, offset = position, 0
                if len(chunk) < BATCH_HEADER_SIZE:
                    return
            header = parse_header(chunk, offset)
            size = header.size_in_bytes
            if header.batch_length < MIN_BATCH_LENGTH or position + size > end:
                return
            yield position, header
            position += size

    def translate_offset(
        self, offset: int, starting_position: int = 0
    ) -> tuple[int, BatchHeader] | None:
        """Position and header of the first batch whose last offset >= ``offset``."""
        _, position = self.offset_index.lookup(offset)
        for batch_position, header in self.iter_headers(max(position, starting_position)):
            if header.last_offset >= offset:
                return batch_position, header
        return None

    def read_next_offset(self) -> int:
        """One past the last offset in the segment (base_offset when empty). Learns the
        last batch when the batches end at :attr:`size`."""
        _, position = self.offset_index.lookup(2**63 - 1)
        next_offset = self.base_offset
        last: tuple[int, BatchHeader] | None = None
        for found in self.iter_headers(position):
            last = found
        self.last_batch_position = -1
        if last is not None:
            self._set_last_batch(*last)
            next_offset = last[1].next_offset
        return next_offset

    def _set_last_batch(self, position: int, header: BatchHeader) -> None:
        """``header`` at ``position`` is the file's last batch if it ends at :attr:`size`."""
        size = header.size_in_bytes
        if position + size == self.size:
            self.last_batch_position = position
            self.last_batch_size = size
            self.last_batch_base_offset = header.base_offset
            self.last_batch_last_offset = header.last_offset
        else:
            self.last_batch_position = -1

    def _load_largest_timestamp(self) -> None:
        timestamp, offset = self.time_index.last_entry
        self.max_timestamp_so_far, self.offset_of_max_timestamp_so_far = timestamp, offset
        _, position = self.offset_index.lookup(offset)
        for _, header in self.iter_headers(position):
            if header.max_timestamp > self.max_timestamp_so_far:
                self.max_timestamp_so_far = header.max_timestamp
                self.offset_of_max_timestamp_so_far = header.last_offset

    # -- appending -------------------------------------------------------------

    def _index_batch(self, header: BatchHeader, position: int) -> None:
        if header.max_timestamp > self.max_timestamp_so_far:
            self.max_timestamp_so_far = header.max_timestamp
            self.offset_of_max_timestamp_so_far = header.last_offset
        if self.bytes_since_last_index_entry > self.index_interval_bytes:
            self.offset_index.append(header.last_offset, position)
            self.time_index.maybe_append(
                self.max_timestamp_so_far, self.offset_of_max_timestamp_so_far
            )
            self.bytes_since_last_index_entry = 0
        self.bytes_since_last_index_entry += header.size_in_bytes

    def append(self, data: bytes | bytearray | memoryview, headers: Sequence[BatchHeader]) -> None:
        """Append whole batches (``headers`` describe ``data``, offsets already final)."""
        if not headers:
            return
        if self.rolling_based_timestamp is None:
            self.rolling_based_timestamp = headers[0].max_timestamp
        view = memoryview(data)
        length = len(view)
        start = self.size
        fd = self.file.fileno
        written = os.pwrite(fd, view, start)  # whole, but for a short write
        while written < length:
            written += os.pwrite(fd, view[written:], start + written)
        # the last batch is known after this append if the tail before it was
        tail_known = start == 0 or (
            self.last_batch_position >= 0
            and self.last_batch_position + self.last_batch_size == start
        )
        position = last_position = start
        for header in headers:
            self._index_batch(header, position)
            last_position = position
            position += header.size_in_bytes
        self.size = start + length
        if tail_known:
            self._set_last_batch(last_position, headers[-1])
        else:
            self.last_batch_position = -1

    def can_convert_to_relative_offset(self, offset: int) -> bool:
        return 0 <= offset - self.base_offset <= _INT32_MAX

    def should_roll(
        self,
        batches_size: int,
        max_timestamp: int,
        max_offset: int,
        now_ms: int,
        segment_bytes: int,
        segment_ms: int,
    ) -> bool:
        """Kafka's LogSegment.shouldRoll (without roll jitter)."""
        if self.rolling_based_timestamp is not None and self.rolling_based_timestamp >= 0:
            waited = max_timestamp - self.rolling_based_timestamp
        else:
            waited = now_ms - self.created_ms
        return (
            self.size > segment_bytes - batches_size
            or (self.size > 0 and waited > segment_ms)
            or self.offset_index.is_full
            or self.time_index.is_full
            or not 0 <= max_offset - self.base_offset <= _INT32_MAX  # can_convert_...
        )

    # -- reading ---------------------------------------------------------------

    def read(
        self, start_offset: int, max_bytes: int, max_offset: int, min_one_message: bool
    ) -> FileSlice | None:
        """Whole batches from the one containing ``start_offset``, up to ``max_bytes``.

        None when the segment holds no batch with an offset >= start_offset.
        Batches with base offset >= ``max_offset`` are left out. With
        ``min_one_message`` the first batch is returned even if too large.
        """
        position = self.last_batch_position
        if (
            position >= 0
            and start_offset >= self.last_batch_base_offset
            and position + self.last_batch_size == self.size
            # read as the scan would (a failing disk fails the fetch, as Kafka's read of
            # the header does), only not parsed
            and len(os.pread(self.file.fileno, BATCH_HEADER_SIZE, position)) == BATCH_HEADER_SIZE
        ):
            # the last batch (the only one with offsets >= start_offset), or none
            if start_offset > self.last_batch_last_offset:
                return None
            size = self.last_batch_size
            if self.last_batch_base_offset >= max_offset or (
                size > max_bytes and not min_one_message
            ):
                size = 0
            return FileSlice(self.file, position, size)
        return self._scan(start_offset, max_bytes, max_offset, min_one_message)

    def _scan(
        self, start_offset: int, max_bytes: int, max_offset: int, min_one_message: bool
    ) -> FileSlice | None:
        """:meth:`read` from the offset index's entry: what :meth:`translate_offset` then
        :meth:`iter_headers` would give, in one loop that unpacks three fields a batch."""
        _, position = self.offset_index.lookup(start_offset)
        end = self.size
        fd = self.file.fileno
        chunk = b""
        chunk_start = position
        start = -1
        length = 0
        while position + BATCH_HEADER_SIZE <= end:
            at = position - chunk_start
            if at + BATCH_HEADER_SIZE > len(chunk):
                chunk = os.pread(fd, min(_SCAN_CHUNK, end - position), position)
                chunk_start, at = position, 0
                if len(chunk) < BATCH_HEADER_SIZE:
                    break
            base_offset, batch_length, last_offset_delta = _SCAN.unpack_from(chunk, at)
            size = batch_length + LOG_OVERHEAD
            if batch_length < MIN_BATCH_LENGTH or position + size > end:
                break
            if start < 0:
                if base_offset + last_offset_delta < start_offset:
                    position += size
                    continue
                start = position
            if base_offset >= max_offset or length + size > max_bytes:
                if length == 0 and min_one_message and base_offset < max_offset:
                    length = size
                break
            length += size
            position += size
        if start < 0:
            return None
        return FileSlice(self.file, start, length)

    def find_offset_by_timestamp(
        self, timestamp: int, start_offset: int
    ) -> TimestampAndOffset | None:
        """The first record at or after ``start_offset`` with a timestamp >= ``timestamp``."""
        _, offset = self.time_index.lookup(timestamp)
        _, position = self.offset_index.lookup(max(offset, start_offset))
        for batch_position, header in self.iter_headers(position):
            if header.max_timestamp < timestamp or header.last_offset < start_offset:
                continue
            data = os.pread(self.file.fileno, header.size_in_bytes, batch_position)
            for record in stream_records(data):  # keys and values skipped
                if record.timestamp >= timestamp and record.offset >= start_offset:
                    return TimestampAndOffset(
                        record.timestamp, record.offset, header.partition_leader_epoch
                    )
        return None

    @property
    def largest_timestamp(self) -> int:
        """Max timestamp in the segment, else the file's mtime (as Kafka)."""
        if self.max_timestamp_so_far >= 0:
            return self.max_timestamp_so_far
        return os.stat(self.log_path).st_mtime_ns // 1_000_000

    # -- recovery and truncation -----------------------------------------------

    def _valid_batch_at(self, position: int, min_offset: int) -> BatchHeader | None:
        raw = os.pread(self.file.fileno, BATCH_HEADER_SIZE, position)
        if len(raw) < BATCH_HEADER_SIZE or raw[MAGIC_OFFSET] != MAGIC:
            return None
        header = parse_header(raw)
        size = header.size_in_bytes
        if (
            header.batch_length < MIN_BATCH_LENGTH
            or position + size > self.size
            or header.base_offset < min_offset
            or header.last_offset_delta < 0
            or header.records_count < 0
            or not self.can_convert_to_relative_offset(header.last_offset)
        ):
            return None
        data = os.pread(self.file.fileno, size, position)
        if len(data) < size or crc32c.crc32c(memoryview(data)[ATTRIBUTES_OFFSET:]) != header.crc:
            return None
        return header

    def recover(self, on_batch: Callable[[BatchHeader], None] | None = None) -> int:
        """Validate every batch, rebuild the indexes, cut a torn tail; return bytes cut."""
        self.offset_index.truncate()
        self.time_index.truncate()
        self.max_timestamp_so_far = -1
        self.offset_of_max_timestamp_so_far = self.base_offset
        self.bytes_since_last_index_entry = 0
        self.rolling_based_timestamp = None
        self.size = os.fstat(self.file.fileno).st_size
        position = 0
        min_offset = self.base_offset
        last: tuple[int, BatchHeader] | None = None
        while (header := self._valid_batch_at(position, min_offset)) is not None:
            if self.rolling_based_timestamp is None:
                self.rolling_based_timestamp = header.max_timestamp
            self._index_batch(header, position)
            if on_batch is not None:
                on_batch(header)
            last = (position, header)
            position += header.size_in_bytes
            min_offset = header.next_offset
        truncated = self.size - position
        if truncated:
            os.ftruncate(self.file.fileno, position)
            self.size = position
        self.last_batch_position = -1
        if last is not None:
            self._set_last_batch(*last)
        self.needs_recovery = False
        return truncated

    def truncate_to(self, offset: int) -> int:
        """Drop every batch from the one containing ``offset``; return bytes dropped."""
        found = self.translate_offset(offset)
        self.offset_index.truncate_to(offset)
        self.time_index.truncate_to(offset)
        if found is None:
            return 0
        self.last_batch_position = -1  # until read_next_offset finds it again
        position, _ = found
        truncated = self.size - position
        os.ftruncate(self.file.fileno, position)
        self.size = position
        self.bytes_since_last_index_entry = 0
        if self.size == 0:
            self.rolling_based_timestamp = None
        self._load_largest_timestamp()
        return truncated

    # -- lifecycle -------------------------------------------------------------

    def on_become_inactive(self) -> None:
        """Record the final max timestamp in the time index (Kafka does so on roll)
        and give back the preallocated space past the data."""
        self.time_index.maybe_append(
            self.max_timestamp_so_far, self.offset_of_max_timestamp_so_far, skip_full_check=True
        )
        self.trim()

    def preallocate(self, size: int) -> None:
        """``preallocate``: size the (empty) file to ``size`` bytes up front, as Kafka's
        FileRecords does on Linux (RandomAccessFile.setLength: a sparse extension).
        Appends still go at :attr:`size`; the zeros past it are cut by :meth:`trim` on
        roll and close, and by recovery after a crash (zeros are not a valid batch)."""
        if os.fstat(self.file.fileno).st_size < size:
            os.ftruncate(self.file.fileno, size)

    def trim(self) -> bool:
        """Cut the file to the data (a no-op unless it was preallocated); True if cut."""
        if os.fstat(self.file.fileno).st_size > self.size:
            os.ftruncate(self.file.fileno, self.size)
            return True
        return False

    def flush(self) -> None:
        """fsync the .log file and both indexes (called from a storage thread too)."""
        os.fsync(self.file.fileno)
        self.offset_index.flush()
        self.time_index.flush()

    def close(self) -> None:
        if not self.file.closed:
            self.time_index.maybe_append(
                self.max_timestamp_so_far, self.offset_of_max_timestamp_so_far, skip_full_check=True
            )
            if self.trim():  # after a clean shutdown the file size is the data size
                os.fsync(self.file.fileno)
        self.offset_index.close()
        self.time_index.close()
        self.file.close()

    def __repr__(self) -> str:
        return f"LogSegment(base_offset={self.base_offset}, size={self.size})"
