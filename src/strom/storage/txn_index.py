"""Aborted transactions of one partition (what read_committed consumers skip).

File ``aborted.txnindex`` in the partition directory: entries of 34 bytes in
Kafka's transaction index layout:

    version int16 = 0 | producer_id int64 | first_offset int64 |
    last_offset int64 | last_stable_offset int64

one per ABORT marker, in marker (last_offset) order. strom keeps one file per
partition rather than one per segment; entries whose marker falls below the
log start offset are dropped when segments are deleted. An entry is appended
when the marker is written; on recovery the file is cut back to the replay
point and the replayed markers append their entries again, so it always
matches the log. A torn last entry is ignored.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import ClassVar, Final

from strom.common.values import Value

TXN_INDEX_FILE = "aborted.txnindex"
_ENTRY = struct.Struct(">hqqqq")


class AbortedTxn(Value):
    __slots__ = ("first_offset", "last_offset", "last_stable_offset", "producer_id")
    FIELDS: ClassVar[tuple[str, ...]] = (
        "producer_id",
        "first_offset",
        "last_offset",
        "last_stable_offset",
    )
    producer_id: Final[int]
    first_offset: Final[int]
    last_offset: Final[int]
    last_stable_offset: Final[int]

    def __init__(
        self,
        producer_id: int,
        first_offset: int,
        last_offset: int,
        last_stable_offset: int,
    ) -> None:
        self.producer_id = producer_id
        self.first_offset = first_offset
        self.last_offset = last_offset
        self.last_stable_offset = last_stable_offset


class TransactionIndex:
    def __init__(self, dir: Path) -> None:
        self.path = dir / TXN_INDEX_FILE
        self.entries: list[AbortedTxn] = []

    def load(self) -> None:
        self.entries = []
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        for pos in range(0, len(data) - _ENTRY.size + 1, _ENTRY.size):
            version, pid, first, last, lso = _ENTRY.unpack_from(data, pos)
            if version != 0:
                break
            self.entries.append(AbortedTxn(pid, first, last, lso))

    def _rewrite(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            for e in self.entries:
                f.write(
                    _ENTRY.pack(
                        0, e.producer_id, e.first_offset, e.last_offset, e.last_stable_offset
                    )
                )
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def append(self, entry: AbortedTxn) -> None:
        if self.entries and self.entries[-1] == entry:
            return
        self.entries.append(entry)
        with open(self.path, "ab") as f:
            f.write(
                _ENTRY.pack(
                    0,
                    entry.producer_id,
                    entry.first_offset,
                    entry.last_offset,
                    entry.last_stable_offset,
                )
            )

    def truncate_from(self, offset: int) -> None:
        """Drop entries whose marker is at or above ``offset``."""
        kept = [e for e in self.entries if e.last_offset < offset]
        if len(kept) != len(self.entries):
            self.entries = kept
            self._rewrite()

    def drop_before(self, offset: int) -> None:
        """Drop entries whose marker is below ``offset`` (deleted segments)."""
        kept = [e for e in self.entries if e.last_offset >= offset]
        if len(kept) != len(self.entries):
            self.entries = kept
            self._rewrite()

    def collect(self, fetch_offset: int, upper_bound: int) -> list[AbortedTxn]:
        """Aborted transactions overlapping [fetch_offset, upper_bound)."""
        return [
            e
            for e in self.entries
            if e.last_offset >= fetch_offset and e.first_offset < upper_bound
        ]

    def clear(self) -> None:
        self.entries = []
        self.path.unlink(missing_ok=True)
