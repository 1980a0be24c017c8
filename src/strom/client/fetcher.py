"""Turning a Fetch response's record data into records (sans-IO).

A fetch may return a batch that starts before the requested offset (the
broker sends whole batches) and may end with a truncated batch; control
batches (transaction markers) are skipped but move the position on.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from strom.client.messages import ConsumerRecord, RecordDeserializationError
from strom.common.types import TopicPartition
from strom.protocol.errors import KafkaError
from strom.protocol.generated.fetch import FetchRequest, FetchResponse
from strom.protocol.record_decoder import decode_batch, decode_batch_as
from strom.protocol.records import (
    BatchHeader,
    Record,
    iter_batches,
    parse_control_record,
)
from strom.protocol.wire import Records


@dataclass(frozen=True, slots=True)
class FetchedRecords:
    """One partition's Fetch result: records, the next offset, watermarks, error code."""

    records: list[Record]
    next_offset: int  # the position to fetch from next
    high_watermark: int = -1
    log_start_offset: int = -1
    last_stable_offset: int = -1
    error_code: int = 0  # non-zero: nothing was read; next_offset is the requested one


def parse_records(
    data: Records | None,
    fetch_offset: int,
    *,
    aborted: list[AbortedTxn] | None = None,
    read_committed: bool = False,
    max_records: int | None = None,
) -> tuple[list[Record], int]:
    """Records at or after ``fetch_offset`` and the next offset to fetch (the
    :class:`CompletedFetch` rules: control batches skipped, and with
    ``read_committed`` aborted transactions too). Corrupt data raises CORRUPT_MESSAGE
    once the records before it have been returned."""
    fetch = CompletedFetch(
        data, fetch_offset, _NO_PARTITION, aborted=aborted, read_committed=read_committed
    )
    rows = fetch.take(sys.maxsize if max_records is None else max_records)
    if fetch.error is not None and not rows:
        raise fetch.error
    return [_new(Record, row[:5]) for row in rows], fetch.position


@dataclass(frozen=True, slots=True)
class AbortedTxn:
    """An aborted transaction of a Fetch response: producer id and first offset."""

    producer_id: int
    first_offset: int


Deserializer = Callable[[bytes | None], Any]
_new = tuple.__new__
_NO_PARTITION = TopicPartition("", -1)


def _skip_committed(
    header: BatchHeader, batch: memoryview, aborting: set[int], verify_crc: bool
) -> bool:
    """True for control batches and batches of aborted transactions (updates ``aborting``)."""
    if header.is_control:
        if header.producer_id in aborting:
            _, markers = decode_batch(batch, verify_crc=verify_crc)
            if markers and not parse_control_record(markers[0]).commit:
                aborting.discard(header.producer_id)
        return True
    return header.is_transactional and header.producer_id in aborting


class CompletedFetch:
    """One partition's data from a Fetch response, handed out by :meth:`take`.

    Batches are decoded one at a time as records are taken (as Kafka's
    CompletedFetch does), straight into :class:`ConsumerRecord`, so a large fetch
    never holds more than one batch of decoded records beyond what was returned.
    ``position`` is the next offset to return (or to fetch once this is used up):
    it moves past returned records, skipped control batches and aborted batches.
    With ``read_committed`` a producer joins the aborted set once a batch reaches
    its transaction's first offset and leaves it at its ABORT marker, as Kafka's
    fetcher does. A corrupt batch or a failing deserializer stops the hand-out at
    that record: records before it are returned, then ``error`` is set and the
    position stays on the bad record until the user seeks past it.
    """

    def __init__(
        self,
        data: Records | None,
        fetch_offset: int,
        tp: TopicPartition,
        *,
        aborted: list[AbortedTxn] | None = None,
        read_committed: bool = False,
        verify_crc: bool = True,
        deserializers: tuple[Deserializer, Deserializer] | None = None,
    ) -> None:
        self.tp = tp
        self.fetch_offset = fetch_offset
        self.position = fetch_offset
        self.error: KafkaError | None = None
        raw = b"" if data is None else data
        if not isinstance(raw, (bytes, bytearray, memoryview)):
            raw = bytes(raw)
        self._batches = iter_batches(raw)
        self._pending = sorted(aborted or [], key=lambda a: a.first_offset)
        self._aborting: set[int] = set()
        self._read_committed = read_committed
        self._verify_crc = verify_crc
        self._deserializers = deserializers
        self._records: list[ConsumerRecord] = []
        self._index = 0
        self._batch_end = fetch_offset
        self._finished = False

    @property
    def exhausted(self) -> bool:
        """Nothing more to return (an error also ends the hand-out)."""
        return self._finished or self.error is not None

    def take(self, limit: int) -> list[ConsumerRecord]:
        """Up to ``limit`` records from the current position on."""
        out: list[ConsumerRecord] = []
        while len(out) < limit and not self.exhausted:
            if self._index >= len(self._records) and not self._next_batch():
                break
            chunk = self._records[self._index : self._index + limit - len(out)]
            if self._deserializers is not None:
                chunk = self._deserialize(chunk)
            if chunk:
                self._index += len(chunk)
                self.position = chunk[-1].offset + 1
                out += chunk
            if self._index >= len(self._records):
                self.position = max(self.position, self._batch_end)
        return out

    def _next_batch(self) -> bool:
        """Decode the next batch with records to return; False at the end of the data."""
        try:
            for header, batch in self._batches:
                if header.last_offset < self.position:
                    continue
                if self._skip(header, batch):
                    self.position = header.next_offset
                    continue
                extra = (
                    self.tp.topic,
                    self.tp.partition,
                    header.timestamp_type,
                    header.partition_leader_epoch,
                )
                _, records = decode_batch_as(
                    batch, ConsumerRecord, extra, verify_crc=self._verify_crc
                )
                if header.base_offset < self.position:
                    records = [r for r in records if r.offset >= self.position]
                self._records, self._index, self._batch_end = records, 0, header.next_offset
                if records:
                    return True
                self.position = max(self.position, header.next_offset)
        except KafkaError as exc:
            self.error = KafkaError(exc.code, f"{self.tp} at offset {self.position}: {exc}")
            return False
        self._finished = True
        return False

    def _skip(self, header: BatchHeader, batch: memoryview) -> bool:
        if not self._read_committed:
            return header.is_control
        pending = self._pending
        while pending and pending[0].first_offset <= header.last_offset:
            self._aborting.add(pending.pop(0).producer_id)
        return _skip_committed(header, batch, self._aborting, self._verify_crc)

    def _deserialize(self, records: list[ConsumerRecord]) -> list[ConsumerRecord]:
        """Records up to the first whose key or value fails to deserialize."""
        assert self._deserializers is not None
        kd, vd = self._deserializers
        out: list[ConsumerRecord] = []
        for r in records:
            try:
                out.append(_new(ConsumerRecord, (r[0], r[1], kd(r[2]), vd(r[3]), *r[4:])))
            except Exception as exc:
                self.error = RecordDeserializationError(self.tp, r.offset, exc)
                break
        return out


def fetch_request(
    positions: Mapping[TopicPartition, int],
    *,
    max_wait_ms: int,
    min_bytes: int,
    max_bytes: int,
    partition_max_bytes: int,
    isolation_level: int,
) -> FetchRequest:
    """A sessionless Fetch (session id 0, epoch -1) of every partition from its position."""
    by_topic: dict[str, list[FetchRequest.FetchPartition]] = defaultdict(list)
    for tp, offset in positions.items():
        by_topic[tp.topic].append(
            FetchRequest.FetchPartition(
                partition=tp.partition, fetch_offset=offset, partition_max_bytes=partition_max_bytes
            )
        )
    return FetchRequest(
        replica_id=-1,
        max_wait_ms=max_wait_ms,
        min_bytes=min_bytes,
        max_bytes=max_bytes,
        isolation_level=isolation_level,
        session_id=0,
        session_epoch=-1,
        topics=[FetchRequest.FetchTopic(topic=t, partitions=ps) for t, ps in by_topic.items()],
    )


def aborted_transactions(partition: FetchResponse.PartitionData) -> list[AbortedTxn]:
    """The aborted transactions a Fetch response lists for a partition."""
    return [AbortedTxn(a.producer_id, a.first_offset) for a in partition.aborted_transactions or ()]
