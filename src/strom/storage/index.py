"""Sparse offset and time indexes of a log segment (Kafka's OffsetIndex/TimeIndex).

``<base_offset>.index``: 8-byte entries, big-endian::

    relative_offset int32   (offset - segment base offset)
    position        int32   byte position of a batch in the .log file

``<base_offset>.timeindex``: 12-byte entries::

    timestamp       int64   max timestamp seen so far in the segment
    relative_offset int32   offset at which that timestamp was reached

An entry is added every ``index.interval.bytes`` of appended batches, keyed by
the last offset of the batch at ``position``; both keys and values only grow.
Unlike Kafka we do not preallocate and mmap the files: the entries live in
memory arrays and each append writes its few bytes at the end of the file.

Crash story: an index is derived data. A torn append leaves a file whose size
is not a multiple of the entry size, or entries that are not monotonic; the
sanity check on load raises :class:`CorruptIndexError` and the segment
rebuilds both indexes from its .log file. Indexes of segments past the
recovery point are always rebuilt after an unclean shutdown.
"""

from __future__ import annotations

import os
import struct
from array import array
from bisect import bisect_right
from pathlib import Path
from typing import Final

_OFFSET_ENTRY: Final = struct.Struct(">ii")
_TIME_ENTRY: Final = struct.Struct(">qi")


class CorruptIndexError(Exception):
    """An index file failed its sanity check; the caller rebuilds it."""


class _IndexFile:
    """The file under an index: an fd, appends at the end, truncation."""

    def __init__(self, path: Path, entry_size: int, max_index_size: int) -> None:
        self.path = path
        self.entry_size = entry_size
        self.max_entries = max(1, max_index_size // entry_size)
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)

    def read_all(self) -> bytes:
        size = os.fstat(self._fd).st_size
        if size % self.entry_size:
            raise CorruptIndexError(f"{self.path}: size {size} is not a multiple of entries")
        return os.pread(self._fd, size, 0)

    def write_at(self, entry_number: int, data: bytes) -> None:
        os.pwrite(self._fd, data, entry_number * self.entry_size)

    def truncate_entries(self, entries: int) -> None:
        os.ftruncate(self._fd, entries * self.entry_size)

    def flush(self) -> None:
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def delete(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)


class OffsetIndex:
    """Maps offsets to file positions; lookup returns the largest entry <= target."""

    def __init__(self, path: Path, base_offset: int, max_index_size: int) -> None:
        self.base_offset = base_offset
        self._file = _IndexFile(path, _OFFSET_ENTRY.size, max_index_size)
        self._offsets: array[int] = array("q")
        self._positions: array[int] = array("q")

    @classmethod
    def open(cls, path: Path, base_offset: int, max_index_size: int) -> OffsetIndex:
        """Open (creating if missing) and load; raises CorruptIndexError."""
        index = cls(path, base_offset, max_index_size)
        try:
            index._load()
        except BaseException:
            index.close()
            raise
        return index

    def _load(self) -> None:
        data = self._file.read_all()
        last_offset, last_position = -1, -1
        for relative, position in _OFFSET_ENTRY.iter_unpack(data):
            offset = self.base_offset + relative
            if relative < 0 or offset <= last_offset or position < last_position:
                raise CorruptIndexError(f"{self._file.path}: entries are not monotonic")
            self._offsets.append(offset)
            self._positions.append(position)
            last_offset, last_position = offset, position

    @property
    def path(self) -> Path:
        return self._file.path

    @property
    def entries(self) -> int:
        return len(self._offsets)

    @property
    def is_full(self) -> bool:
        return len(self._offsets) >= self._file.max_entries

    @property
    def last_entry(self) -> tuple[int, int]:
        """(offset, position) of the last entry, or (base_offset, 0) when empty."""
        if not self._offsets:
            return self.base_offset, 0
        return self._offsets[-1], self._positions[-1]

    def append(self, offset: int, position: int) -> None:
        """Add an entry; offsets must grow. Ignored when full (the segment rolls)."""
        if self.is_full:
            return
        if self._offsets and offset <= self._offsets[-1]:
            raise ValueError(f"index offset {offset} is not larger than {self._offsets[-1]}")
        self._file.write_at(
            len(self._offsets), _OFFSET_ENTRY.pack(offset - self.base_offset, position)
        )
        self._offsets.append(offset)
        self._positions.append(position)

    def lookup(self, target_offset: int) -> tuple[int, int]:
        """The largest entry with offset <= target, else (base_offset, 0)."""
        i = bisect_right(self._offsets, target_offset)
        if i == 0:
            return self.base_offset, 0
        return self._offsets[i - 1], self._positions[i - 1]

    def max_position(self) -> int:
        return self._positions[-1] if self._positions else 0

    def truncate_to(self, offset: int) -> None:
        """Remove entries with offset >= ``offset``."""
        keep = bisect_right(self._offsets, offset - 1)
        if keep == len(self._offsets):
            return
        del self._offsets[keep:]
        del self._positions[keep:]
        self._file.truncate_entries(keep)

    def truncate(self) -> None:
        if self._offsets:
            del self._offsets[:]
            del self._positions[:]
            self._file.truncate_entries(0)

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def delete(self) -> None:
        self._file.delete()


class TimeIndex:
    """Maps timestamps to offsets; lookup returns the largest entry with ts <= target."""

    def __init__(self, path: Path, base_offset: int, max_index_size: int) -> None:
        self.base_offset = base_offset
        self._file = _IndexFile(path, _TIME_ENTRY.size, max_index_size)
        self._timestamps: array[int] = array("q")
        self._offsets: array[int] = array("q")

    @classmethod
    def open(cls, path: Path, base_offset: int, max_index_size: int) -> TimeIndex:
        """Open (creating if missing) and load; raises CorruptIndexError."""
        index = cls(path, base_offset, max_index_size)
        try:
            index._load()
        except BaseException:
            index.close()
            raise
        return index

    def _load(self) -> None:
        data = self._file.read_all()
        last_timestamp, last_offset = -(2**63), -1
        for timestamp, relative in _TIME_ENTRY.iter_unpack(data):
            offset = self.base_offset + relative
            if relative < 0 or timestamp <= last_timestamp or offset < last_offset:
                raise CorruptIndexError(f"{self._file.path}: entries are not monotonic")
            self._timestamps.append(timestamp)
            self._offsets.append(offset)
            last_timestamp, last_offset = timestamp, offset

    @property
    def path(self) -> Path:
        return self._file.path

    @property
    def entries(self) -> int:
        return len(self._offsets)

    @property
    def is_full(self) -> bool:
        return len(self._offsets) >= self._file.max_entries

    @property
    def last_entry(self) -> tuple[int, int]:
        """(timestamp, offset) of the last entry, or (-1, base_offset) when empty."""
        if not self._offsets:
            return -1, self.base_offset
        return self._timestamps[-1], self._offsets[-1]

    def maybe_append(self, timestamp: int, offset: int, skip_full_check: bool = False) -> None:
        """Add an entry if ``timestamp`` is larger than the last one (Kafka's maybeAppend)."""
        if (self.is_full and not skip_full_check) or timestamp < 0:
            return
        if self._timestamps and (timestamp <= self._timestamps[-1] or offset < self._offsets[-1]):
            return
        self._file.write_at(
            len(self._offsets), _TIME_ENTRY.pack(timestamp, offset - self.base_offset)
        )
        self._timestamps.append(timestamp)
        self._offsets.append(offset)

    def lookup(self, target_timestamp: int) -> tuple[int, int]:
        """The largest entry with timestamp <= target, else (-1, base_offset)."""
        i = bisect_right(self._timestamps, target_timestamp)
        if i == 0:
            return -1, self.base_offset
        return self._timestamps[i - 1], self._offsets[i - 1]

    def truncate_to(self, offset: int) -> None:
        """Remove entries with offset >= ``offset``."""
        keep = bisect_right(self._offsets, offset - 1)
        if keep == len(self._offsets):
            return
        del self._timestamps[keep:]
        del self._offsets[keep:]
        self._file.truncate_entries(keep)

    def truncate(self) -> None:
        if self._offsets:
            del self._timestamps[:]
            del self._offsets[:]
            self._file.truncate_entries(0)

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def delete(self) -> None:
        self._file.delete()
