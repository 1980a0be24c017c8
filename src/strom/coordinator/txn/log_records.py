"""Records of ``__transaction_state``: a transactional id and its image.

The bytes are Kafka's TransactionLogKey / TransactionLogValue, laid out once in
strom.protocol.txn_log_records; this module turns them into the coordinator's
TxnTransit and back. A null value is a tombstone: the transactional id expired.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from strom.common.types import TopicPartition
from strom.coordinator.txn.state import TxnState, TxnTransit
from strom.protocol.errors import DecodeError
from strom.protocol.txn_log_records import TxnLogValue, decode_key, encode_key
from strom.protocol.txn_log_records import decode_value as decode_log_value
from strom.protocol.txn_log_records import encode_value as encode_log_value


@dataclass(frozen=True, slots=True)
class TxnRecord:
    """One record of ``__transaction_state``: a transactional id and its image (None: expired)."""

    transactional_id: str
    value: TxnTransit | None


def _by_topic(partitions: frozenset[TopicPartition]) -> tuple[tuple[str, tuple[int, ...]], ...]:
    grouped: dict[str, list[int]] = defaultdict(list)
    for tp in sorted(partitions):
        grouped[tp.topic].append(tp.partition)
    return tuple((topic, tuple(ids)) for topic, ids in grouped.items())


def encode_value(transit: TxnTransit) -> bytes:
    return encode_log_value(
        TxnLogValue(
            producer_id=transit.producer_id,
            producer_epoch=transit.producer_epoch,
            transaction_timeout_ms=transit.txn_timeout_ms,
            transaction_status=int(transit.state),
            transaction_partitions=_by_topic(transit.partitions),
            transaction_last_update_timestamp_ms=transit.txn_last_update_timestamp,
            transaction_start_timestamp_ms=transit.txn_start_timestamp,
        )
    )


def decode_value(data: bytes) -> TxnTransit:
    value = decode_log_value(data)
    try:
        state = TxnState(value.transaction_status)
    except ValueError:
        raise DecodeError(f"unknown transaction status {value.transaction_status}") from None
    return TxnTransit(
        producer_id=value.producer_id,
        producer_epoch=value.producer_epoch,
        txn_timeout_ms=value.transaction_timeout_ms,
        state=state,
        partitions=frozenset(
            TopicPartition(topic, p)
            for topic, ids in value.transaction_partitions or ()
            for p in ids
        ),
        txn_start_timestamp=value.transaction_start_timestamp_ms,
        txn_last_update_timestamp=value.transaction_last_update_timestamp_ms,
        last_producer_id=value.previous_producer_id,
        next_producer_id=value.next_producer_id,
        client_transaction_version=value.client_transaction_version,
    )


def encode_record(record: TxnRecord) -> tuple[bytes, bytes | None]:
    value = None if record.value is None else encode_value(record.value)
    return encode_key(record.transactional_id), value


def decode_record(key: bytes | None, value: bytes | None) -> TxnRecord:
    if key is None:
        raise DecodeError("a __transaction_state record without a key")
    return TxnRecord(decode_key(key), None if value is None else decode_value(value))
