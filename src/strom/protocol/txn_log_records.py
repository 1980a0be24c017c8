"""Keys and values of ``__transaction_state`` records in Kafka's format (the
transaction coordinator writes and replays them; ``strom dump-log
--transaction-log-decoder`` prints them).

Key (TransactionLogKey, version 0)::

    version int16 = 0 | transactional_id string (int16 length, UTF-8)

Value (TransactionLogValue; written as version 0, versions 0 and 1 read)::

    version int16 | producer_id int64 | producer_epoch int16 |
    transaction_timeout_ms int32 | transaction_status int8 |
    transaction_partitions [topic string, partition_ids [int32]] (nullable) |
    transaction_last_update_timestamp_ms int64 | transaction_start_timestamp_ms int64

Version 1 is flexible (compact strings and arrays, tagged fields) and adds
the tagged fields previous_producer_id (0), next_producer_id (1) and
client_transaction_version (2). A null value is a tombstone: the
transactional id expired. Decoding raises only ``DecodeError``.
"""

from __future__ import annotations

from dataclasses import dataclass

from strom.protocol.errors import DecodeError
from strom.protocol.wire import Reader, Writer

KEY_VERSION = 0
VALUE_VERSION = 0

# (topic, partition ids) in the order they are written; None: a null array
TxnPartitions = tuple[tuple[str, tuple[int, ...]], ...]


@dataclass(frozen=True, slots=True)
class TxnLogValue:
    """A TransactionLogValue as written (``transaction_status``: Kafka's
    TransactionState id, 0 Empty .. 7 PrepareEpochFence)."""

    producer_id: int
    producer_epoch: int
    transaction_timeout_ms: int
    transaction_status: int
    transaction_partitions: TxnPartitions | None
    transaction_last_update_timestamp_ms: int
    transaction_start_timestamp_ms: int
    previous_producer_id: int = -1
    next_producer_id: int = -1
    client_transaction_version: int = 0
    version: int = VALUE_VERSION


def encode_key(transactional_id: str) -> bytes:
    w = Writer()
    w.int16(KEY_VERSION)
    w.string(transactional_id)
    return w.getvalue()


def decode_key(data: bytes) -> str:
    r = Reader(data)
    version = r.int16()
    if version != KEY_VERSION:
        raise DecodeError(f"unknown TransactionLogKey version {version}")
    return r.string()


def encode_value(value: TxnLogValue) -> bytes:
    """Version 0 (the tagged fields of version 1 are not written)."""
    w = Writer()
    w.int16(VALUE_VERSION)
    w.int64(value.producer_id)
    w.int16(value.producer_epoch)
    w.int32(value.transaction_timeout_ms)
    w.int8(value.transaction_status)
    partitions = value.transaction_partitions
    if partitions is None:
        w.int32(-1)
    else:
        w.array_len(len(partitions))
        for topic, ids in partitions:
            w.string(topic)
            w.array_len(len(ids))
            for p in ids:
                w.int32(p)
    w.int64(value.transaction_last_update_timestamp_ms)
    w.int64(value.transaction_start_timestamp_ms)
    return w.getvalue()


def _partitions(r: Reader, flexible: bool) -> TxnPartitions | None:
    n = r.cnarray_len() if flexible else r.array_len()
    if n < 0:
        return None
    out: list[tuple[str, tuple[int, ...]]] = []
    for _ in range(n):
        topic = r.cstring() if flexible else r.string()
        count = r.carray_len() if flexible else r.array_len()
        out.append((topic, tuple(r.int32() for _ in range(max(count, 0)))))
        if flexible:
            r.skip_tags()
    return tuple(out)


def decode_value(data: bytes) -> TxnLogValue:
    r = Reader(data)
    version = r.int16()
    if version not in (0, 1):
        raise DecodeError(f"unknown TransactionLogValue version {version}")
    flexible = version >= 1
    producer_id = r.int64()
    producer_epoch = r.int16()
    timeout_ms = r.int32()
    status = r.int8()
    partitions = _partitions(r, flexible)
    last_update = r.int64()
    start = r.int64()
    tags = {0: -1, 1: -1, 2: 0}
    if flexible:
        for _ in range(r.uvarint()):
            tag, size = r.tag_header()
            sub = r.sub(size)
            if tag in (0, 1):
                tags[tag] = sub.int64()
            elif tag == 2:
                tags[tag] = sub.int16()
    return TxnLogValue(
        producer_id,
        producer_epoch,
        timeout_ms,
        status,
        partitions,
        last_update,
        start,
        tags[0],
        tags[1],
        tags[2],
        version,
    )
