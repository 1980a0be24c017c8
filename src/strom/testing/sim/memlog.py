"""An in-memory partition log for the simulation: what strom.replication.Partition and
the simulated broker use of strom.storage.log.PartitionLog, over a list of
(leader epoch, value) records, with the real LeaderEpochCache (its file writes off).

Records are 64-bit values. A leader append takes one encoded value per record
(:func:`encode_values`); followers copy (offset, epoch, value) triples
(:func:`encode_entries`) exactly as the leader has them. Each record also carries a
chain hash of the log up to it, so that two logs holding the same (offset, epoch)
can be checked to agree on everything before it (the log matching invariant).

A log survives a crash of its broker (a process crash keeps the page cache); its
high watermark comes back from the last checkpoint. ``fail_appends`` makes the
next appends raise OSError (a disk error).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from strom.protocol.append_origin import AppendOrigin
from strom.storage.leader_epoch import LeaderEpochCache
from strom.storage.log import FetchDataInfo
from strom.storage.log_append import AppendInfo, UnexpectedAppendOffsetError
from strom.storage.txn_index import AbortedTxn

_VALUE = struct.Struct(">q")
_ENTRY = struct.Struct(">qiq")
Entry = tuple[int, int, int]  # offset, leader epoch, value
AppendHook = Callable[["MemoryLog", int], None]  # (log, first offset appended)


class LogGapError(AssertionError):
    """A follower append that would leave a hole in the log."""


def encode_values(values: Sequence[int]) -> bytes:
    return b"".join(_VALUE.pack(v) for v in values)


def encode_entries(entries: Sequence[Entry]) -> bytes:
    return b"".join(_ENTRY.pack(*e) for e in entries)


def decode_entries(data: bytes | bytearray | memoryview) -> list[Entry]:
    return [_ENTRY.unpack_from(data, i) for i in range(0, len(data), _ENTRY.size)]


class MemoryEpochCache(LeaderEpochCache):
    def flush(self) -> None:
        pass


class MemoryLog:
    def __init__(self, name: str, key: Any = None, on_append: AppendHook | None = None) -> None:
        self.name = name
        self.key = key  # the partition, for the invariants
        self.epochs: list[int] = []
        self.values: list[int] = []
        self.chain: list[int] = []
        self.log_start_offset = 0
        self.high_watermark = 0
        self.leader_epoch_cache: LeaderEpochCache = MemoryEpochCache(Path("/dev/null"))
        self.on_append = on_append
        self.fail_appends = 0
        self.truncations = 0

    @property
    def log_end_offset(self) -> int:
        return len(self.values)

    @property
    def last_stable_offset(self) -> int:
        return self.high_watermark

    def entry(self, offset: int) -> Entry:
        return offset, self.epochs[offset], self.values[offset]

    def entries(self, start: int = 0, end: int | None = None) -> list[Entry]:
        stop = self.log_end_offset if end is None else min(end, self.log_end_offset)
        return [(o, self.epochs[o], self.values[o]) for o in range(start, stop)]

    # -- appends -----------------------------------------------------------------------
    def _disk(self) -> None:
        if self.fail_appends > 0:
            self.fail_appends -= 1
            raise OSError(f"simulated disk error on {self.name}")

    def _push(self, epoch: int, value: int) -> None:
        prev = self.chain[-1] if self.chain else 0
        self.epochs.append(epoch)
        self.values.append(value)
        self.chain.append(hash((prev, epoch, value)))
        if epoch > self.leader_epoch_cache.latest_epoch:
            self.leader_epoch_cache.assign(epoch, self.log_end_offset - 1)

    def _info(self, first: int) -> AppendInfo:
        last = self.log_end_offset - 1
        if self.on_append is not None:
            self.on_append(self, first)
        return AppendInfo(first, last, -1, -1, last, self.log_start_offset, 1, 0, ())

    def append_as_leader(
        self,
        records: bytes | bytearray | memoryview,
        leader_epoch: int,
        now_ms: int,
        *,
        origin: AppendOrigin = AppendOrigin.CLIENT,
        before_append: Any = None,
    ) -> AppendInfo:
        self._disk()
        first = self.log_end_offset
        for i in range(0, len(records), _VALUE.size):
            self._push(leader_epoch, _VALUE.unpack_from(records, i)[0])
        return self._info(first)

    def append_as_follower(
        self, records: bytes | bytearray | memoryview, now_ms: int
    ) -> AppendInfo:
        entries = decode_entries(records)
        if not entries:
            return AppendInfo(-1, -1, -1, -1, -1, self.log_start_offset, 0, 0, ())
        first = entries[0][0]
        if first < self.log_end_offset:
            raise UnexpectedAppendOffsetError(
                f"first offset {first} is below the log end offset {self.log_end_offset}",
                first,
                entries[-1][0],
            )
        if first > self.log_end_offset:
            raise LogGapError(
                f"{self.name}: append at {first} past the log end {self.log_end_offset}"
            )
        self._disk()
        for _, epoch, value in entries:
            self._push(epoch, value)
        return self._info(first)

    # -- offsets -----------------------------------------------------------------------
    def end_offset_for_epoch(self, leader_epoch: int) -> tuple[int, int]:
        return self.leader_epoch_cache.end_offset_for(leader_epoch, self.log_end_offset)

    def update_high_watermark(self, offset: int) -> int:
        self.high_watermark = min(max(offset, self.log_start_offset), self.log_end_offset)
        return self.high_watermark

    def truncate_to(self, offset: int) -> bool:
        if offset < 0:
            raise ValueError(f"cannot truncate to a negative offset {offset}")
        if offset >= self.log_end_offset:
            return False
        del self.epochs[offset:], self.values[offset:], self.chain[offset:]
        self.high_watermark = min(self.high_watermark, offset)
        self.leader_epoch_cache.truncate_from_end(offset)
        self.truncations += 1
        return True

    def truncate_fully_and_start_at(self, offset: int, now_ms: int) -> None:
        raise NotImplementedError("the simulation never moves log start offsets")

    def read_entries(self, fetch_offset: int, max_records: int) -> list[Entry]:
        return self.entries(fetch_offset, fetch_offset + max_records)

    def read(self, *args: Any, **kwargs: Any) -> FetchDataInfo:
        raise NotImplementedError("the simulation reads with read_entries")

    def collect_aborted_transactions(self, fetch_offset: int, upper_bound: int) -> list[AbortedTxn]:
        return []
