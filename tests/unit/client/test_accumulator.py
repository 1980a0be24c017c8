from strom.client.accumulator import RecordAccumulator
from strom.common.types import TopicPartition
from strom.protocol.records import decode_batch

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
