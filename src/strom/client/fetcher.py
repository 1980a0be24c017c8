"""Turning a Fetch response's record data into records (sans-IO).

A fetch may return a batch that starts before the requested offset (the
broker sends whole batches) and may end with a truncated batch; control
batches (transaction markers) are skipped but move the position on.
"""

from __future__ import annotations

from dataclasses import dataclass

from strom.protocol.records import (
    BatchHeader,
    Record,
    decode_batch,
    iter_batches,
    parse_control_record,
)
from strom.protocol.wire import Records


@dataclass(frozen=True, slots=True)
class FetchedRecords:
    records: list[Record]
    next_offset: int  # the position to fetch from next
    high_watermark: int = -1
    log_start_offset: int = -1
    last_stable_offset: int = -1
    error_code: int = 0  # non-zero: nothing was read; next_offset is the requested one


def parse_records(
    data: Records | None, fetch_offset: int, *, max_records: int | None = None
) -> tuple[list[Record], int]:
    """Records at or after ``fetch_offset`` and the next offset to fetch."""
    if data is None:
        return [], fetch_offset
    raw = data if isinstance(data, (bytes, bytearray, memoryview)) else bytes(data)
    out: list[Record] = []
    position = fetch_offset
    for header, batch in iter_batches(raw):
        if header.last_offset < position:
            continue
        if header.is_control:
            position = header.next_offset
            continue
        _, records = decode_batch(batch)
        for record in records:
            if record.offset < position:
                continue
            if max_records is not None and len(out) >= max_records:
                return out, position
            out.append(record)
            position = record.offset + 1
        position = max(position, header.next_offset)
    return out, position


@dataclass(frozen=True, slots=True)
class AbortedTxn:
    producer_id: int
    first_offset: int


@dataclass(slots=True)
class PartitionRecords:
    """Decoded records of one partition with the batch fields a consumer needs."""

    records: list[tuple[Record, int, int]]  # (record, timestamp_type, leader_epoch)
    next_offset: int


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


def _append_batch(
    out: list[tuple[Record, int, int]],
    header: BatchHeader,
    batch: memoryview,
    position: int,
    verify_crc: bool,
) -> None:
    _, records = decode_batch(batch, verify_crc=verify_crc)
    log_append = header.timestamp_type == 1
    for record in records:
        if record.offset < position:
            continue
        if log_append:
            record = Record(
                record.offset, header.max_timestamp, record.key, record.value, record.headers
            )
        out.append((record, header.timestamp_type, header.partition_leader_epoch))


def read_committed_records(
    data: Records | None,
    fetch_offset: int,
    *,
    aborted: list[AbortedTxn] | None = None,
    read_committed: bool = False,
    verify_crc: bool = True,
) -> PartitionRecords:
    """Records at or after ``fetch_offset``; with ``read_committed`` the batches of
    aborted transactions are dropped, as Kafka's fetcher does: a producer joins the
    aborted set once the batch offset reaches its transaction's first offset and
    leaves it at its ABORT marker. Control batches are never returned."""
    out: list[tuple[Record, int, int]] = []
    if data is None:
        return PartitionRecords(out, fetch_offset)
    raw = data if isinstance(data, (bytes, bytearray, memoryview)) else bytes(data)
    pending = sorted(aborted or [], key=lambda a: a.first_offset)
    aborting: set[int] = set()
    position = fetch_offset
    for header, batch in iter_batches(raw):
        if header.last_offset < position:
            continue
        if read_committed:
            while pending and pending[0].first_offset <= header.last_offset:
                aborting.add(pending.pop(0).producer_id)
            if _skip_committed(header, batch, aborting, verify_crc):
                position = header.next_offset
                continue
        elif header.is_control:
            position = header.next_offset
            continue
        _append_batch(out, header, batch, position, verify_crc)
        position = max(position, header.next_offset)
    return PartitionRecords(out, position)
