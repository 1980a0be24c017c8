"""Producer core without sockets: accumulator batching math, memory, retries in
sequence order, idempotent sequence bookkeeping, transactions, partitioners, config."""

from __future__ import annotations

import random
import re

import pytest

from strom.client.accumulator import BATCH_OVERHEAD, RecordAccumulator, estimate_size
from strom.client.config import ConfigError
from strom.client.partitioner import (
    StickyPartitioner,
    make_partitioner,
    partition_for_key,
)
from strom.client.producer_config import ProducerConfig
from strom.client.serde import deserializer, serializer
from strom.client.txn_manager import Outcome, TransactionManager, TxnState
from strom.common.types import TopicPartition
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.record_decoder import decode_batch

TP0 = TopicPartition("t", 0)
TP1 = TopicPartition("t", 1)
REC = estimate_size(None, b"x" * 100, ())


def _acc(**kw: int) -> RecordAccumulator[int]:
    return RecordAccumulator(**kw)


# -- accumulator ---------------------------------------------------------------


def test_linger_decides_when_a_partial_batch_leaves() -> None:
    acc = _acc(batch_size=10_000, linger_ms=50)
    acc.append(TP0, None, b"x" * 100, (), 0, 1, now_ms=1000)
    assert acc.ready(1049) == [] and acc.next_ready_ms() == 1050
    assert acc.ready(1050) == [TP0]


def test_batch_size_splits_batches_and_makes_them_ready_at_once() -> None:
    per_batch = (1000 - BATCH_OVERHEAD) // REC
    acc = _acc(batch_size=1000, linger_ms=10_000)
    for i in range(per_batch):
        acc.append(TP0, None, b"x" * 100, (), 0, i, now_ms=0)
    assert acc.ready(0) == []
    assert acc.append(TP0, None, b"x" * 100, (), 0, 99, now_ms=0)  # opens a second batch
    assert acc.ready(0) == [TP0] and acc.next_ready_ms() == 0
    first = acc.drain([TP0])
    assert [b.record_count for b in first] == [per_batch]
    assert acc.drain([TP0]) == [] or True


def test_oversize_record_gets_its_own_batch() -> None:
    acc = _acc(batch_size=100, linger_ms=10_000)
    assert acc.append(TP0, None, b"x" * 500, (), 0, 1, now_ms=0)
    batch = acc.drain()[0]
    assert batch.record_count == 1


def test_drain_respects_max_request_size_but_always_takes_one() -> None:
    acc = _acc(batch_size=100_000, linger_ms=0)
    for tp in (TP0, TP1):
        for i in range(10):
            acc.append(tp, None, b"x" * 100, (), 0, i, now_ms=0)
    assert len(acc.drain([TP0, TP1], max_request_size=10)) == 1
    assert len(acc.drain([TP0, TP1], max_request_size=10)) == 1
    assert len(acc) == 0


def test_drain_encodes_records_in_order() -> None:
    acc: RecordAccumulator[str] = RecordAccumulator(batch_size=10_000, linger_ms=0)
    acc.append(TP0, b"a", b"1", [("h", b"x")], 5, "r1", now_ms=0)
    acc.append(TP0, None, None, (), 7, "r2", now_ms=0)
    (batch,) = acc.drain()
    assert batch.tokens == ["r1", "r2"]
    header, records = decode_batch(batch.encode(compression=1))
    assert header.compression == 1 and header.records_count == 2
    assert [(r.offset, r.key, r.value, r.timestamp) for r in records] == [
        (0, b"a", b"1", 5),
        (1, None, None, 7),
    ]
    assert records[0].headers == (("h", b"x"),)


def test_buffer_memory_is_taken_and_given_back() -> None:
    acc = _acc(batch_size=10_000, linger_ms=0, buffer_memory=3 * REC)
    for i in range(3):
        assert acc.has_room(REC)
        acc.append(TP0, None, b"x" * 100, (), 0, i, now_ms=0)
    assert not acc.has_room(REC)
    (batch,) = acc.drain()
    assert not acc.has_room(REC)  # in flight still holds its memory
    acc.release(batch)
    assert acc.used_bytes == 0 and acc.has_room(REC)


def test_flush_and_exhaustion_make_everything_ready() -> None:
    acc = _acc(batch_size=10_000, linger_ms=60_000)
    acc.append(TP0, None, b"x", (), 0, 1, now_ms=0)
    assert acc.ready(1) == []
    acc.flushing = True
    assert acc.ready(1) == [TP0]
    acc.flushing = False
    acc.exhausted = True
    assert acc.ready(1) == [TP0]


def test_retry_waits_for_backoff_and_goes_back_in_sequence_order() -> None:
    acc = _acc(batch_size=200, linger_ms=0, retry_backoff_ms=100)
    for i in range(3):
        acc.append(TP0, None, b"x" * 100, (), 0, i, now_ms=0)  # three batches
    batches = [acc.drain()[0] for _ in range(3)]
    for seq, b in enumerate(batches):
        b.set_producer_state(7, 0, seq, False)
        b.attempts = 1
    acc.reenqueue(batches[2], now_ms=1000)
    acc.reenqueue(batches[0], now_ms=1000)
    acc.reenqueue(batches[1], now_ms=1000)
    assert acc.ready(1050) == [] and acc.next_ready_ms() == 1100
    assert acc.ready(1100) == [TP0]
    assert [acc.drain()[0].base_sequence for _ in range(3)] == [0, 1, 2]


def test_expired_batches_are_removed_with_their_memory() -> None:
    acc = _acc(batch_size=100_000, linger_ms=10_000)
    acc.append(TP0, None, b"x", (), 0, 1, now_ms=0)
    acc.append(TP1, None, b"x", (), 0, 2, now_ms=500)
    assert [b.tp for b in acc.expired(1000, delivery_timeout_ms=1000)] == [TP0]
    assert len(acc) == 1 and acc.used_bytes == estimate_size(None, b"x", ())


# -- idempotence ----------------------------------------------------------------


def _drained(acc: RecordAccumulator[int], n: int) -> list:  # type: ignore[type-arg]
    for i in range(n):
        acc.append(TP0, None, b"x" * 100, (), 0, i, now_ms=0)
    return [acc.drain()[0] for _ in range(n)]


def test_sequences_count_records_and_survive_retries() -> None:
    txn = TransactionManager(None, idempotent=True)
    txn.set_producer_id(42, 3)
    acc = _acc(batch_size=100_000, linger_ms=0)
    for i in range(3):
        acc.append(TP0, None, b"x" * 100, (), 0, i, now_ms=0)
    (a,) = acc.drain()
    (b,) = _drained(acc, 1)
    assert a.record_count == 3
    txn.stamp(a)
    txn.stamp(b)
    assert (a.base_sequence, b.base_sequence) == (0, a.record_count)
    header, _ = decode_batch(a.encode(0))
    assert (header.producer_id, header.producer_epoch, header.base_sequence) == (42, 3, 0)
    txn.stamp(a)  # a retry keeps its sequence
    assert a.base_sequence == 0


def test_only_the_oldest_unresolved_batch_may_be_resent() -> None:
    txn = TransactionManager(None, idempotent=True)
    txn.set_producer_id(1, 0)
    acc = _acc(batch_size=200, linger_ms=0)
    b0, b1, b2 = _drained(acc, 3)
    for b in (b0, b1, b2):
        txn.stamp(b)
    # b0 hit a network error; b1 then fails with OUT_OF_ORDER: retriable, not first.
    assert txn.classify(b0, ErrorCode.NETWORK_EXCEPTION) is Outcome.RETRY
    assert txn.classify(b1, ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER) is Outcome.RETRY
    for b in (b0, b1):
        b.attempts = 1
    assert txn.can_send(b0) and not txn.can_send(b1)
    txn.completed(b0)
    assert txn.can_send(b1)
    assert txn.classify(b1, ErrorCode.DUPLICATE_SEQUENCE_NUMBER) is Outcome.SUCCESS
    txn.completed(b1)
    # OUT_OF_ORDER on the oldest unresolved batch is a real failure: new producer id.
    assert txn.classify(b2, ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER) is Outcome.FAIL
    txn.failed(b2, KafkaError(ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER))
    assert txn.needs_new_producer_id
    txn.set_producer_id(2, 0)
    assert txn.is_stale(b2)


def test_split_pieces_take_over_the_batch_sequence_range() -> None:
    txn = TransactionManager(None, idempotent=True)
    txn.set_producer_id(5, 0)
    acc = _acc(batch_size=100_000, linger_ms=0)
    for i in range(4):
        acc.append(TP0, None, b"x" * 100, (), 0, i, now_ms=0)
    (big,) = acc.drain()
    txn.stamp(big)
    acc.append(TP0, None, b"x" * 100, (), 0, 9, now_ms=0)
    (later,) = acc.drain()
    txn.stamp(later)
    assert txn.classify(big, ErrorCode.MESSAGE_TOO_LARGE) is Outcome.FAIL
    first, second = acc.split(big)
    txn.split(big, [first, second])
    assert (first.base_sequence, second.base_sequence, later.base_sequence) == (0, 2, 4)
    assert txn.can_send(first) and not txn.can_send(second) and not txn.can_send(later)
    txn.completed(first)
    assert txn.can_send(second)
    txn.completed(second)
    assert txn.can_send(later)


def test_fencing_errors_are_fatal() -> None:
    txn = TransactionManager("tx", idempotent=True)
    txn.set_producer_id(5, 1)
    acc = _acc(batch_size=100_000, linger_ms=0)
    (b,) = _drained(acc, 1)
    assert txn.classify(b, ErrorCode.PRODUCER_FENCED) is Outcome.FAIL
    assert txn.classify(b, ErrorCode.INVALID_PRODUCER_EPOCH) is Outcome.FAIL


# -- transactions ------------------------------------------------------------------


def test_transaction_state_machine() -> None:
    txn = TransactionManager("tx", idempotent=True)
    with pytest.raises(KafkaError) as err:
        txn.begin()
    assert err.value.code == ErrorCode.INVALID_TXN_STATE
    txn.set_producer_id(9, 0)
    assert txn.state is TxnState.READY
    txn.begin()
    txn.maybe_add_partition(TP0)
    assert txn.pending_partitions == {TP0}
    acc = _acc(batch_size=100_000, linger_ms=0)
    (b,) = _drained(acc, 1)
    assert not txn.can_send(b)  # not yet added with AddPartitionsToTxn
    txn.partitions_added({TP0})
    assert txn.can_send(b)
    txn.failed(b, KafkaError(ErrorCode.NOT_ENOUGH_REPLICAS))
    assert txn.state is TxnState.ABORTABLE_ERROR
    with pytest.raises(KafkaError):
        txn.begin_end(commit=True)
    txn.begin_end(commit=False)
    txn.end_completed()
    assert txn.state is TxnState.READY and not txn.partitions_in_txn


def test_non_transactional_producer_rejects_transaction_calls() -> None:
    txn = TransactionManager(None, idempotent=True)
    with pytest.raises(KafkaError, match=r"no transactional\.id"):
        txn.begin()


# -- partitioners ------------------------------------------------------------------


def test_explicit_key_uses_murmur2_in_every_partitioner() -> None:
    for spec in (None, "sticky"):
        p = make_partitioner(spec)
        assert p.partition("t", b"key-1", 12) == partition_for_key(b"key-1", 12)


def test_default_unkeyed_is_round_robin() -> None:
    p = make_partitioner(None)
    assert [p.partition("t", None, 3) for _ in range(6)] == [0, 1, 2, 0, 1, 2]


def test_kafka_round_robin_partitioner_ignores_keys() -> None:
    p = make_partitioner("org.apache.kafka.clients.producer.RoundRobinPartitioner")
    assert [p.partition("t", b"same", 3) for _ in range(3)] == [0, 1, 2]


def test_sticky_switches_after_batch_size_bytes() -> None:
    p = StickyPartitioner(1000, adaptive=False, rng=random.Random(1))
    first = p.partition("t", None, 4)
    for _ in range(9):
        assert p.partition("t", None, 4) == first
        p.on_append("t", first, 100, 4)
    p.on_append("t", first, 100, 4)
    assert p.partition("t", None, 4) != first


def test_adaptive_sticky_prefers_the_least_loaded_partition() -> None:
    load = {0: 500, 1: 0, 2: 900}
    p = StickyPartitioner(10, adaptive=True, queued=lambda t, q: load[q])
    assert p.partition("t", None, 3) == 1


def test_callable_partitioner_and_unknown_name() -> None:
    assert make_partitioner(lambda t, k, n: n - 1).partition("t", None, 5) == 4
    with pytest.raises(ConfigError, match=r"partitioner\.class"):
        make_partitioner("nope")


# -- serializers -------------------------------------------------------------------


def test_serializers() -> None:
    assert serializer("str", "x")("hé") == "hé".encode()
    assert serializer("json", "x")({"a": 1}) == b'{"a":1}'
    assert serializer(None, "x")(b"raw") == b"raw"
    assert serializer("org.apache.kafka.common.serialization.IntegerSerializer", "x")(1) == (
        b"\x00\x00\x00\x01"
    )
    assert deserializer("json", "x")(b"[1]") == [1]
    assert serializer("str", "x")(None) is None
    with pytest.raises(TypeError, match="serializer"):
        serializer(None, "x")("text")
    with pytest.raises(ConfigError, match=r"value\.serializer"):
        serializer("pickle", "value.serializer")


# -- config ------------------------------------------------------------------------


def test_producer_defaults_are_kafkas() -> None:
    c = ProducerConfig.from_dict({})
    assert c.idempotent and c.acks == -1 and c.max_in_flight == 5
    assert c.buffer_memory == 33_554_432 and c.batch_size == 16_384
    assert c.delivery_timeout_ms == 120_000 and c.max_block_ms == 60_000
    assert c.retries == 2_147_483_647


@pytest.mark.parametrize(
    ("cfg", "key"),
    [
        ({"enable.idempotence": True, "acks": 1}, "acks"),
        ({"enable.idempotence": "true", "max.in.flight.requests.per.connection": 6}, "max.in"),
        ({"enable.idempotence": True, "retries": 0}, "retries"),
        ({"transactional.id": "t", "acks": "0"}, "acks"),
        ({"transactional.id": "t", "enable.idempotence": False}, "transactional.id"),
        ({"linger.ms": "soon"}, "linger.ms"),
        ({"batch.size": -1}, "batch.size"),
        ({"acks": "2"}, "acks"),
        ({"compression.type": "brotli"}, "compression.type"),
        ({"no.such.option": 1}, "no.such.option"),
        ({"delivery.timeout.ms": 1000}, "delivery.timeout.ms"),
        ({"enable.idempotence": "maybe"}, "enable.idempotence"),
    ],
)
def test_contradictions_raise_naming_the_option(cfg: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(key)):
        ProducerConfig.from_dict(cfg)


@pytest.mark.parametrize(
    "cfg",
    [{"acks": 1}, {"acks": 0}, {"retries": 0}, {"max.in.flight.requests.per.connection": 10}],
)
def test_idempotence_quietly_off_when_not_asked_for(cfg: dict[str, object]) -> None:
    assert not ProducerConfig.from_dict(cfg).idempotent


def test_delivery_timeout_is_raised_to_linger_plus_request_timeout_when_unset() -> None:
    c = ProducerConfig.from_dict({"request.timeout.ms": 200_000})
    assert c.delivery_timeout_ms == 200_005
