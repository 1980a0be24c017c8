"""Per-partition producer state: idempotence (KIP-98) from batch headers only.

For each producer id the partition remembers the epoch and the last five
batches' sequence ranges and offsets. A retried batch that was already
appended is recognised by (epoch, first sequence, last sequence) and answered
with its original offsets instead of being written twice; a gap in sequences
is OUT_OF_ORDER_SEQUENCE_NUMBER; an older epoch INVALID_PRODUCER_EPOCH.

Snapshot files ``<20-digit offset>.snapshot`` (Kafka's layout, version 1):

    version int16 = 1 | crc uint32 (CRC32C of what follows) |
    count int32 | count x (producer_id int64, producer_epoch int16,
    last_sequence int32, last_offset int64, offset_delta int32,
    timestamp int64, coordinator_epoch int32, current_txn_first_offset int64)

A snapshot holds the state of every producer as of the offset in its name.
It is written at segment rolls and at clean shutdown. On load the newest
snapshot at or below the log end offset is read and the batch headers after
it are replayed, so state survives kill -9 (a torn or corrupt snapshot is
deleted and an older one, or the whole log, is replayed instead).
"""

from __future__ import annotations

import os
import struct
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import ClassVar, Final

from strom.common.crc import crc32c
from strom.common.values import Value
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.records import BatchHeader, ControlRecord
from strom.storage.txn_index import AbortedTxn

SNAPSHOT_SUFFIX = ".snapshot"
MAX_CACHED_BATCHES = 5
INT_MAX = 2_147_483_647
_HEAD = struct.Struct(">hIi")
_ENTRY = struct.Struct(">qhiqiqiq")


class BatchMetadata(Value):
    __slots__ = ("first_offset", "first_seq", "last_offset", "last_seq", "timestamp")
    FIELDS: ClassVar[tuple[str, ...]] = (
        "first_seq",
        "last_seq",
        "first_offset",
        "last_offset",
        "timestamp",
    )
    first_seq: Final[int]
    last_seq: Final[int]
    first_offset: Final[int]
    last_offset: Final[int]
    timestamp: Final[int]

    def __init__(
        self,
        first_seq: int,
        last_seq: int,
        first_offset: int,
        last_offset: int,
        timestamp: int,
    ) -> None:
        self.first_seq = first_seq
        self.last_seq = last_seq
        self.first_offset = first_offset
        self.last_offset = last_offset
        self.timestamp = timestamp


class ProducerStateEntry(Value):
    __slots__ = (
        "batches",
        "coordinator_epoch",
        "current_txn_first_offset",
        "last_timestamp",
        "producer_epoch",
        "producer_id",
    )
    FIELDS: ClassVar[tuple[str, ...]] = (
        "producer_id",
        "producer_epoch",
        "batches",
        "coordinator_epoch",
        "current_txn_first_offset",
        "last_timestamp",
    )
    producer_id: int
    producer_epoch: int
    batches: deque[BatchMetadata]  # the last MAX_CACHED_BATCHES
    coordinator_epoch: int
    current_txn_first_offset: int
    last_timestamp: int

    __hash__ = None  # type: ignore[assignment]  # mutable, as an unfrozen dataclass

    def __init__(
        self,
        producer_id: int,
        producer_epoch: int,
        batches: deque[BatchMetadata] | None = None,  # None: a new, empty one
        coordinator_epoch: int = -1,
        current_txn_first_offset: int = -1,
        last_timestamp: int = -1,
    ) -> None:
        self.producer_id = producer_id
        self.producer_epoch = producer_epoch
        self.batches = deque(maxlen=MAX_CACHED_BATCHES) if batches is None else batches
        self.coordinator_epoch = coordinator_epoch
        self.current_txn_first_offset = current_txn_first_offset
        self.last_timestamp = last_timestamp

    @property
    def last_seq(self) -> int:
        return self.batches[-1].last_seq if self.batches else -1

    def find_duplicate(self, h: BatchHeader) -> BatchMetadata | None:
        if h.producer_epoch != self.producer_epoch:
            return None
        for b in self.batches:
            if b.first_seq == h.base_sequence and b.last_seq == h.last_sequence:
                return b
        return None


def in_sequence(last_seq: int, next_first_seq: int) -> bool:
    return next_first_seq == last_seq + 1 or (last_seq == INT_MAX and next_first_seq == 0)


class ProducerStateManager:
    """Producer ids, epochs and recent sequences of one partition."""

    def __init__(self, dir: Path, expiration_ms: int = 86_400_000) -> None:
        self.dir = dir
        self.expiration_ms = expiration_ms
        self.producers: dict[int, ProducerStateEntry] = {}
        # first_unstable_offset's answer for the dict ``_unstable_of`` (None: not known):
        # read by every fetch of the partition, it walks every producer. Only the start
        # and end of a transaction change it (update, _complete_txn); the dict is replaced
        # whole by a load and by the log's truncation, which the identity check sees.
        self._unstable: int | None = None
        self._unstable_of: dict[int, ProducerStateEntry] | None = None

    # -- produce path ------------------------------------------------------------
    def find_duplicate(self, headers: Sequence[BatchHeader]) -> BatchMetadata | None:
        """The original append of a retried single-batch produce, if it is one."""
        h = headers[0] if len(headers) == 1 else None
        if h is None or h.producer_id < 0 or h.is_control or h.base_sequence < 0:
            return None  # coordinator batches (TxnOffsetCommit) carry no sequence
        entry = self.producers.get(headers[0].producer_id)
        return entry.find_duplicate(headers[0]) if entry is not None else None

    def check(self, headers: Sequence[BatchHeader]) -> None:
        """Raise the produce error for epochs and sequences that do not follow."""
        pending: dict[int, tuple[int, int]] = {}
        for h in headers:
            if h.producer_id < 0 or h.is_control:
                continue
            entry = self.producers.get(h.producer_id)
            epoch, last_seq = pending.get(
                h.producer_id,
                (entry.producer_epoch, entry.last_seq) if entry is not None else (-1, -1),
            )
            if entry is None and h.producer_id not in pending:
                pending[h.producer_id] = (h.producer_epoch, h.last_sequence)
                continue  # unknown producer: any sequence starts it (KIP-360)
            if h.producer_epoch < epoch:
                raise KafkaError(
                    ErrorCode.INVALID_PRODUCER_EPOCH,
                    f"Epoch of producer {h.producer_id} at offset is {h.producer_epoch}, "
                    f"which is smaller than the last seen epoch {epoch}",
                )
            if h.base_sequence < 0:  # no sequence (coordinator-written): epoch check only
                pending[h.producer_id] = (h.producer_epoch, last_seq)
                continue
            if h.producer_epoch > epoch:
                if h.base_sequence != 0:
                    raise KafkaError(
                        ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
                        f"Invalid sequence number for new epoch of producer {h.producer_id}: "
                        f"{h.producer_epoch} (request epoch), {h.base_sequence} (seq. number)",
                    )
            elif not in_sequence(last_seq, h.base_sequence):
                raise KafkaError(
                    ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
                    f"Out of order sequence number for producer {h.producer_id}: "
                    f"{h.base_sequence} (incoming seq. number), {last_seq} (current end "
                    "sequence number)",
                )
            pending[h.producer_id] = (h.producer_epoch, h.last_sequence)

    def update(
        self,
        headers: Iterable[BatchHeader],
        markers: Mapping[int, ControlRecord] | None = None,
    ) -> list[AbortedTxn]:
        """Record appended batches (offsets as stored); return the aborted transactions.

        ``markers`` maps the base offset of each control batch to its record.
        """
        aborted: list[AbortedTxn] = []
        for h in headers:
            if h.producer_id < 0:
                continue
            if h.is_control:
                marker = (markers or {}).get(h.base_offset)
                if marker is not None:
                    done = self._complete_txn(h, marker)
                    if done is not None:
                        aborted.append(done)
                continue
            entry = self.producers.get(h.producer_id)
            if entry is None or h.producer_epoch != entry.producer_epoch:
                txn_first = entry.current_txn_first_offset if entry is not None else -1
                entry = ProducerStateEntry(h.producer_id, h.producer_epoch)
                entry.current_txn_first_offset = txn_first
                self.producers[h.producer_id] = entry
            entry.batches.append(
                BatchMetadata(
                    h.base_sequence, h.last_sequence, h.base_offset, h.last_offset, h.max_timestamp
                )
            )
            entry.last_timestamp = max(entry.last_timestamp, h.max_timestamp)
            if h.is_transactional and entry.current_txn_first_offset < 0:
                entry.current_txn_first_offset = h.base_offset
                self._unstable_of = None
        return aborted

    def _complete_txn(self, h: BatchHeader, marker: ControlRecord) -> AbortedTxn | None:
        entry = self.producers.get(h.producer_id)
        if entry is None:
            entry = ProducerStateEntry(h.producer_id, h.producer_epoch)
            self.producers[h.producer_id] = entry
        first = entry.current_txn_first_offset
        if first < 0:
            first = h.base_offset
        entry.current_txn_first_offset = -1
        self._unstable_of = None
        entry.coordinator_epoch = marker.coordinator_epoch
        entry.producer_epoch = max(entry.producer_epoch, h.producer_epoch)
        entry.last_timestamp = max(entry.last_timestamp, h.max_timestamp)
        if marker.commit:
            return None
        unstable = self.first_unstable_offset()
        lso = unstable if unstable is not None else h.base_offset + 1
        return AbortedTxn(h.producer_id, first, h.base_offset, lso)

    def first_unstable_offset(self) -> int | None:
        """The first offset of the oldest ongoing transaction, None when there is none."""
        producers = self.producers
        if self._unstable_of is producers:
            return self._unstable
        firsts = [
            e.current_txn_first_offset
            for e in producers.values()
            if e.current_txn_first_offset >= 0
        ]
        self._unstable = min(firsts) if firsts else None
        self._unstable_of = producers
        return self._unstable

    def ongoing_transactions(self) -> list[ProducerStateEntry]:
        return [e for e in self.producers.values() if e.current_txn_first_offset >= 0]

    def remove_expired(self, now_ms: int) -> int:
        expired = [
            pid
            for pid, e in self.producers.items()
            if e.current_txn_first_offset < 0 and now_ms - e.last_timestamp >= self.expiration_ms
        ]
        for pid in expired:
            del self.producers[pid]
        return len(expired)

    # -- snapshots ---------------------------------------------------------------
    def snapshot_offsets(self) -> list[int]:
        out = []
        for p in self.dir.glob("*" + SNAPSHOT_SUFFIX):
            stem = p.name[: -len(SNAPSHOT_SUFFIX)]
            if len(stem) == 20 and stem.isdigit():
                out.append(int(stem))
        return sorted(out)

    def _path(self, offset: int) -> Path:
        return self.dir / f"{offset:020d}{SNAPSHOT_SUFFIX}"

    def snapshot_path(self, offset: int) -> Path:
        return self._path(offset)

    def write_snapshot(self, offset: int, sync: bool = True) -> None:
        """Write ``<offset>.snapshot`` (tmp file, renamed). ``sync=False`` skips the
        fsync, which the caller then runs in a storage thread (Kafka's roll does so);
        a snapshot torn by a crash fails its CRC at load and an older one is used."""
        body = bytearray(struct.pack(">i", len(self.producers)))
        for e in self.producers.values():
            last = e.batches[-1] if e.batches else None
            body += _ENTRY.pack(
                e.producer_id,
                e.producer_epoch,
                last.last_seq if last else -1,
                last.last_offset if last else -1,
                (last.last_offset - last.first_offset) if last else 0,
                e.last_timestamp,
                e.coordinator_epoch,
                e.current_txn_first_offset,
            )
        data = struct.pack(">hI", 1, crc32c.crc32c(bytes(body))) + bytes(body)
        tmp = self._path(offset).with_suffix(".tmp")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            if sync:
                os.fsync(f.fileno())
        os.replace(tmp, self._path(offset))

    def _read_snapshot(self, offset: int) -> dict[int, ProducerStateEntry] | None:
        data = self._path(offset).read_bytes()
        if len(data) < _HEAD.size:
            return None
        version, crc, count = _HEAD.unpack_from(data, 0)
        body = data[6:]
        if version != 1 or crc32c.crc32c(body) != crc or len(body) != 4 + count * _ENTRY.size:
            return None
        out: dict[int, ProducerStateEntry] = {}
        for i in range(count):
            pid, epoch, last_seq, last_off, delta, ts, coord, txn = _ENTRY.unpack_from(
                body, 4 + i * _ENTRY.size
            )
            entry = ProducerStateEntry(
                pid, epoch, coordinator_epoch=coord, current_txn_first_offset=txn, last_timestamp=ts
            )
            if last_seq >= 0:
                first_seq = max(0, last_seq - delta)
                entry.batches.append(
                    BatchMetadata(first_seq, last_seq, last_off - delta, last_off, ts)
                )
            out[pid] = entry
        return out

    def load(self, log_end_offset: int) -> int:
        """Load the newest valid snapshot <= log_end_offset; return its offset (or -1)."""
        self.producers = {}
        for offset in reversed(self.snapshot_offsets()):
            if offset > log_end_offset:
                self._path(offset).unlink(missing_ok=True)
                continue
            state = self._read_snapshot(offset)
            if state is None:
                self._path(offset).unlink(missing_ok=True)
                continue
            self.producers = state
            return offset
        return -1

    def truncate_snapshots(self, keep_below_or_at: int) -> None:
        for offset in self.snapshot_offsets():
            if offset > keep_below_or_at:
                self._path(offset).unlink(missing_ok=True)

    def delete_snapshots_before(self, offset: int) -> None:
        """Drop snapshots older than ``offset``, keeping the newest one below it."""
        older = [o for o in self.snapshot_offsets() if o < offset]
        for o in older[:-1]:
            self._path(o).unlink(missing_ok=True)
