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
from typing import Final, Self

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
        """fsync; a no-op once closed, also when closed by the loop while a storage
        thread flushes (the log's files change hands, the index is no longer used)."""
        fd = self._fd
        if fd < 0:
            return
        try:
            os.fsync(fd)
        except OSError:
            if self._fd == fd:
                raise

    def rename(self, path: Path) -> None:
        """Rename the file (the open fd follows it)."""
        os.replace(self.path, path)
        self.path = path

    def close(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)

    def delete(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)


class _SparseIndex:
    """What both indexes share: the file and two parallel in-memory columns.

    ``_first`` and ``_second`` hold each entry's two fields as absolute values
    (offsets, positions or timestamps); subclasses decode entries and name them.
    """

    ENTRY: struct.Struct

    def __init__(self, path: Path, base_offset: int, max_index_size: int) -> None:
        self.base_offset = base_offset
        self._file = _IndexFile(path, self.ENTRY.size, max_index_size)
        self._first: array[int] = array("q")
        self._second: array[int] = array("q")

    @classmethod
    def open(cls, path: Path, base_offset: int, max_index_size: int) -> Self:
        """Open (creating if missing) and load; raises CorruptIndexError."""
        index = cls(path, base_offset, max_index_size)
        try:
            for raw in index.ENTRY.iter_unpack(index._file.read_all()):
                first, second = index._decode(raw)
                if not index._follows(first, second):
                    raise CorruptIndexError(f"{path}: entries are not monotonic")
                index._first.append(first)
                index._second.append(second)
        except BaseException:
            index.close()
            raise
        return index

    def _decode(self, raw: tuple[int, ...]) -> tuple[int, int]:
        raise NotImplementedError

    def _follows(self, first: int, second: int) -> bool:
        """May an entry (first, second) come after the last one loaded? (Both grow.)"""
        return not self._first or (first > self._first[-1] and second >= self._second[-1])

    @property
    def path(self) -> Path:
        return self._file.path

    @property
    def entries(self) -> int:
        return len(self._first)

    @property
    def is_full(self) -> bool:
        return len(self._first) >= self._file.max_entries

    def _add(self, first: int, second: int, raw: bytes) -> None:
        self._file.write_at(len(self._first), raw)
        self._first.append(first)
        self._second.append(second)

    def _keep(self, keep: int) -> None:
        """Keep the first ``keep`` entries."""
        if keep == len(self._first):
            return
        del self._first[keep:]
        del self._second[keep:]
        self._file.truncate_entries(keep)

    def truncate(self) -> None:
        self._keep(0)

    def flush(self) -> None:
        self._file.flush()

    def rename(self, path: Path) -> None:
        self._file.rename(path)

    def close(self) -> None:
        self._file.close()

    def delete(self) -> None:
        self._file.delete()


class OffsetIndex(_SparseIndex):
    """Maps offsets to file positions; lookup returns the largest entry <= target."""

    ENTRY = _OFFSET_ENTRY

    def _decode(self, raw: tuple[int, ...]) -> tuple[int, int]:
        relative, position = raw
        if relative < 0:
            raise CorruptIndexError(f"{self.path}: negative relative offset")
        return self.base_offset + relative, position

    @property
    def last_entry(self) -> tuple[int, int]:
        """(offset, position) of the last entry, or (base_offset, 0) when empty."""
        if not self._first:
            return self.base_offset, 0
        return self._first[-1], self._second[-1]

    def append(self, offset: int, position: int) -> None:
        """Add an entry; offsets must grow. Ignored when full (the segment rolls)."""
        if self.is_full:
            return
        if self._first and offset <= self._first[-1]:
            raise ValueError(f"index offset {offset} is not larger than {self._first[-1]}")
        self._add(offset, position, _OFFSET_ENTRY.pack(offset - self.base_offset, position))

    def lookup(self, target_offset: int) -> tuple[int, int]:
        """The largest entry with offset <= target, else (base_offset, 0)."""
        i = bisect_right(self._first, target_offset)
        if i == 0:
            return self.base_offset, 0
        return self._first[i - 1], self._second[i - 1]

    def max_position(self) -> int:
        return self._second[-1] if self._second else 0

    def truncate_to(self, offset: int) -> None:
        """Remove entries with offset >= ``offset``."""
        self._keep(bisect_right(self._first, offset - 1))


class TimeIndex(_SparseIndex):
    """Maps timestamps to offsets; lookup returns the largest entry with ts <= target."""

    ENTRY = _TIME_ENTRY

    def _decode(self, raw: tuple[int, ...]) -> tuple[int, int]:
        timestamp, relative = raw
        if relative < 0:
            raise CorruptIndexError(f"{self.path}: negative relative offset")
        return timestamp, self.base_offset + relative

    @property
    def last_entry(self) -> tuple[int, int]:
        """(timestamp, offset) of the last entry, or (-1, base_offset) when empty."""
        if not self._first:
            return -1, self.base_offset
        return self._first[-1], self._second[-1]

    def maybe_append(self, timestamp: int, offset: int, skip_full_check: bool = False) -> None:
        """Add an entry if ``timestamp`` is larger than the last one (Kafka's maybeAppend)."""
        if (self.is_full and not skip_full_check) or timestamp < 0:
            return
        if self._first and (timestamp <= self._first[-1] or offset < self._second[-1]):
            return
        self._add(timestamp, offset, _TIME_ENTRY.pack(timestamp, offset - self.base_offset))

    def lookup(self, target_timestamp: int) -> tuple[int, int]:
        """The largest entry with timestamp <= target, else (-1, base_offset)."""
        i = bisect_right(self._first, target_timestamp)
        if i == 0:
            return -1, self.base_offset
        return self._first[i - 1], self._second[i - 1]

    def truncate_to(self, offset: int) -> None:
        """Remove entries with offset >= ``offset``."""
        self._keep(bisect_right(self._second, offset - 1))
