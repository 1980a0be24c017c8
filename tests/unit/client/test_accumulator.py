import pytest

from strom.client.accumulator import RecordAccumulator
from strom.common.types import TopicPartition
from strom.protocol.record_decoder import decode_batch

TP0 = TopicPartition("t", 0)
TP1 = TopicPartition("t", 1)


def test_ready_after_linger_or_when_full() -> None:
    acc: RecordAccumulator[int] = RecordAccumulator(batch_size=200, linger_ms=10)
    assert acc.next_ready_ms() is None
    assert not acc.append(TP0, b"k", b"v", (), 1000, 1, now_ms=1000)
    assert acc.ready(1005) == []
    assert acc.next_ready_ms() == 1010
    assert acc.ready(1010) == [TP0]
    full = acc.append(TP1, None, b"x" * 300, (), 1000, 2, now_ms=1000)
    assert full and acc.ready(1000) == [TP1]


def test_drain_gives_one_batch_per_partition_in_order() -> None:
    acc: RecordAccumulator[str] = RecordAccumulator(batch_size=10_000, linger_ms=0)
    acc.append(TP0, b"a", b"1", [("h", b"x")], 5, "r1", now_ms=0)
    acc.append(TP1, None, b"2", (), 6, "r2", now_ms=0)
    acc.append(TP0, None, None, (), 7, "r3", now_ms=0)
    assert len(acc) == 3
    batches = {b.tp: b for b in acc.drain([TP0, TP1])}
    assert len(acc) == 0
    assert batches[TP0].tokens == ["r1", "r3"]
    header, records = decode_batch(batches[TP0].encode(compression=1))
    assert header.compression == 1 and header.records_count == 2
    assert [(r.offset, r.key, r.value, r.timestamp) for r in records] == [
        (0, b"a", b"1", 5),
        (1, None, None, 7),
    ]
    assert records[0].headers == (("h", b"x"),)


def test_split_halves_a_batch_keeping_sequences_memory_and_order() -> None:
    acc: RecordAccumulator[int] = RecordAccumulator(batch_size=100_000, linger_ms=0)
    for i in range(5):
        acc.append(TP0, None, b"v%d" % i, (), 10 + i, i, now_ms=0)
    used = acc.used_bytes
    (batch,) = acc.drain([TP0])
    batch.set_producer_state(7, 1, 20, False)
    batch.attempts = 1
    first, second = acc.split(batch)
    assert (first.tokens, second.tokens) == ([0, 1], [2, 3, 4])
    assert (first.base_sequence, second.base_sequence) == (20, 22)
    assert {first.producer_id, second.producer_id} == {7}
    assert first.attempts == second.attempts == 1 and first.created_ms == batch.created_ms
    for piece in reversed([first, second]):
        acc.reenqueue(piece, now_ms=0)
    assert len(acc) == 5
    acc.append(TP0, None, b"later", (), 20, 5, now_ms=0)  # not into a split piece
    assert second.tokens == [2, 3, 4] and len(acc) == 6
    drained = acc.drain([TP0])
    assert drained == [first]
    assert acc.drain([TP0]) == [second]
    _, records = decode_batch(first.encode(compression=0))
    assert [r.value for r in records] == [b"v0", b"v1"]
    (later,) = acc.drain([TP0])
    assert later.tokens == [5]
    for batch in (first, second, later):
        acc.release(batch)
    assert acc.used_bytes == 0 < used


def test_split_of_unsequenced_batches_keeps_record_order() -> None:
    acc: RecordAccumulator[int] = RecordAccumulator(batch_size=100_000, linger_ms=0)
    for i in range(3):
        acc.append(TP0, None, b"v", (), 0, i, now_ms=0)
    (batch,) = acc.drain([TP0])
    pieces = acc.split(batch)
    for piece in reversed(pieces):
        acc.reenqueue(piece, now_ms=0)
    assert [acc.drain([TP0])[0].tokens for _ in range(2)] == [[0], [1, 2]]
    with pytest.raises(ValueError, match="cannot be split"):
        acc.split(pieces[0])
