"""Records of ``__transaction_state`` in Kafka's format.

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
transactional id expired.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from strom.common.types import TopicPartition
from strom.coordinator.txn.state import TxnState, TxnTransit
from strom.protocol.errors import DecodeError
from strom.protocol.wire import Reader, Writer

KEY_VERSION = 0
VALUE_VERSION = 0


@dataclass(frozen=True, slots=True)
class TxnRecord:
    """One record of ``__transaction_state``: a transactional id and its image (None: expired)."""

    transactional_id: str
    value: TxnTransit | None


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


def _by_topic(partitions: frozenset[TopicPartition]) -> dict[str, list[int]]:
    grouped: dict[str, list[int]] = defaultdict(list)
    for tp in sorted(partitions):
        grouped[tp.topic].append(tp.partition)
    return grouped


def encode_value(transit: TxnTransit) -> bytes:
    w = Writer()
    w.int16(VALUE_VERSION)
    w.int64(transit.producer_id)
    w.int16(transit.producer_epoch)
    w.int32(transit.txn_timeout_ms)
    w.int8(int(transit.state))
    grouped = _by_topic(transit.partitions)
    w.array_len(len(grouped))
    for topic, ids in grouped.items():
        w.string(topic)
        w.array_len(len(ids))
        for p in ids:
            w.int32(p)
    w.int64(transit.txn_last_update_timestamp)
    w.int64(transit.txn_start_timestamp)
    return w.getvalue()


def _partitions(r: Reader, flexible: bool) -> frozenset[TopicPartition]:
    n = r.cnarray_len() if flexible else r.array_len()
    out: set[TopicPartition] = set()
    for _ in range(max(n, 0)):
        topic = r.cstring() if flexible else r.string()
        count = r.carray_len() if flexible else r.array_len()
        for _ in range(max(count, 0)):
            out.add(TopicPartition(topic, r.int32()))
        if flexible:
            r.skip_tags()
    return frozenset(out)


def decode_value(data: bytes) -> TxnTransit:
    r = Reader(data)
    version = r.int16()
    if version not in (0, 1):
        raise DecodeError(f"unknown TransactionLogValue version {version}")
    flexible = version >= 1
    producer_id = r.int64()
    producer_epoch = r.int16()
    timeout_ms = r.int32()
    status = r.int8()
    try:
        state = TxnState(status)
    except ValueError:
        raise DecodeError(f"unknown transaction status {status}") from None
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
    return TxnTransit(
        producer_id=producer_id,
        producer_epoch=producer_epoch,
        txn_timeout_ms=timeout_ms,
        state=state,
        partitions=partitions,
        txn_start_timestamp=start,
        txn_last_update_timestamp=last_update,
        last_producer_id=tags[0],
        next_producer_id=tags[1],
        client_transaction_version=tags[2],
    )


def encode_record(record: TxnRecord) -> tuple[bytes, bytes | None]:
    value = None if record.value is None else encode_value(record.value)
    return encode_key(record.transactional_id), value


def decode_record(key: bytes | None, value: bytes | None) -> TxnRecord:
    if key is None:
        raise DecodeError("a __transaction_state record without a key")
    return TxnRecord(decode_key(key), None if value is None else decode_value(value))
