"""On disk: retention deletes old segments; restarts and kill -9 lose nothing acknowledged.

These need strom's broker (the reference broker keeps nothing on disk).
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from strom.testing import (
    BrokerFactory,
    Rec,
    assert_acknowledged_read_back,
    assert_same_partitions,
    by_partition,
)
from strom.testing.kafka import (
    create_topic,
    produce_acked,
    producer,
    read_all,
    watermarks,
)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("require_strom")]

SEGMENT_LOG = re.compile(r"^(\d{20})\.log$")
PARTITIONS = 3


def segment_bases(partition_dir: Path) -> list[int]:
    """Base offsets of the live segments (files renamed for deletion do not count)."""
    return sorted(
        int(m.group(1)) for f in partition_dir.iterdir() if (m := SEGMENT_LOG.match(f.name))
    )


def records(tag: str, n: int, size: int = 100) -> list[tuple[int, bytes | None, bytes]]:
    pad = b"." * max(0, size - 20)
    return [
        (
            i % PARTITIONS,
            None if i % 4 == 0 else f"k{i % 13}".encode(),
            f"{tag}-{i}-".encode() + pad,
        )
        for i in range(n)
    ]


def wait_until(predicate: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.1)


@pytest.mark.slow
def test_retention_deletes_old_segments(broker_factory: BrokerFactory, topic_name: str) -> None:
    broker = broker_factory({"log.segment.bytes": "1024", "log.retention.check.interval.ms": "200"})
    create_topic(broker.bootstrap, topic_name, 1, {"retention.ms": "60000"})
    hour_ago = int(time.time() * 1000) - 3_600_000
    # Old records, one batch each (linger 0, one in flight), well past retention.ms.
    old = produce_acked(
        broker.bootstrap,
        topic_name,
        [(0, None, f"old-{i}-".encode() + b"x" * 200) for i in range(40)],
        timestamp_ms=hour_ago,
        linger_ms=0,
        batch_size=512,  # one record per batch, so several segments
        max_in_flight=1,
    )
    fresh = produce_acked(
        broker.bootstrap, topic_name, [(0, b"fresh", f"fresh-{i}".encode()) for i in range(5)]
    )
    first_fresh = min(r.offset for r in fresh)
    assert first_fresh == len(old)
    partition_dir = broker.log_dir / f"{topic_name}-0"
    assert partition_dir.is_dir(), f"no partition directory {partition_dir}"

    seen: dict[str, Any] = {}

    def old_segments_gone() -> bool:
        # Retention runs every 200 ms and may delete in more than one pass: the files and
        # the watermarks are read together, and taken only when the files did not change
        # around the watermarks' read.
        bases = segment_bases(partition_dir)
        low, high = watermarks(broker.bootstrap, topic_name, 0)
        if not bases or bases[0] == 0 or low == 0 or segment_bases(partition_dir) != bases:
            return False
        seen.update(bases=bases, low=low, high=high)
        return True

    wait_until(old_segments_gone, 20, "retention to delete the old segments")

    bases, low, high = seen["bases"], seen["low"], seen["high"]
    assert high == len(old) + len(fresh)
    assert 0 < low <= first_fresh, f"log start offset {low}, first fresh record at {first_fresh}"
    assert bases[0] == low, f"first live segment {bases[0]} but log start offset {low}"
    low, high = watermarks(broker.bootstrap, topic_name, 0)  # (a later pass may move it)
    left = read_all(broker.bootstrap, topic_name, 1)
    assert [r.offset for r in left] == list(range(low, high))
    assert [r.value for r in left if r.offset >= first_fresh] == [r.value for r in fresh]


def test_compacted_topic_keeps_the_latest_record_per_key(
    broker_factory: BrokerFactory, topic_name: str
) -> None:
    """cleanup.policy=compact on a user topic: the log cleaner (every
    log.cleaner.backoff.ms) leaves one record per key in the closed segments, with
    offsets unchanged, and consumers read the latest value of every key."""
    broker = broker_factory({"log.cleaner.backoff.ms": "200"})
    create_topic(
        broker.bootstrap, topic_name, 1, {"cleanup.policy": "compact", "segment.bytes": "2048"}
    )
    sent = produce_acked(
        broker.bootstrap,
        topic_name,
        [(0, f"k{i % 5}".encode(), f"v{i}-".encode() + b"x" * 100) for i in range(100)],
        linger_ms=0,
        batch_size=512,  # one record per batch, so several segments
        max_in_flight=1,
    )
    latest = {r.key: r for r in sent}
    partition_dir = broker.log_dir / f"{topic_name}-0"
    assert len(segment_bases(partition_dir)) > 3

    def compacted() -> bool:
        return len(read_all(broker.bootstrap, topic_name, 1)) < len(sent)

    wait_until(compacted, 20, "the log cleaner to compact the topic")
    left = read_all(broker.bootstrap, topic_name, 1)
    active = segment_bases(partition_dir)[-1]
    closed = [r for r in left if r.offset < active]
    assert len({r.key for r in closed}) == len(closed), "a key twice in the cleaned segments"
    for r in closed:
        assert latest[r.key].offset == r.offset and latest[r.key].value == r.value
    by_key = {r.key: r.value for r in left}
    assert by_key == {k: r.value for k, r in latest.items()}
    assert [r.offset for r in left if r.offset >= active] == list(range(active, len(sent)))


@pytest.mark.parametrize("codec", ["none", "zstd"])
def test_clean_restart_keeps_everything(
    broker_factory: BrokerFactory, topic_name: str, codec: str
) -> None:
    broker = broker_factory({"log.segment.bytes": "65536"})
    create_topic(broker.bootstrap, topic_name, PARTITIONS)
    acked = produce_acked(
        broker.bootstrap, topic_name, records("a", 3000), compression_type=codec, batch_size=16384
    )
    assert broker.stop() == 0, f"SIGTERM should exit 0\n{broker.log_tail()}"
    broker.start()
    assert_same_partitions(
        by_partition(acked), by_partition(read_all(broker.bootstrap, topic_name, PARTITIONS))
    )

    # Appends continue after the last offset, and both runs' records are there.
    more = produce_acked(broker.bootstrap, topic_name, records("b", 30))
    ends = {p: len(recs) for p, recs in by_partition(acked).items()}
    for p, recs in by_partition(more).items():
        assert recs[0].offset == ends[p], f"partition {p} restarted at {recs[0].offset}"
    broker.restart()
    assert_same_partitions(
        by_partition(acked + more), by_partition(read_all(broker.bootstrap, topic_name, PARTITIONS))
    )


@pytest.mark.fault
@pytest.mark.parametrize("acks", ["1", "all"])
def test_kill_9_keeps_acknowledged_records(
    broker_factory: BrokerFactory, topic_name: str, acks: str
) -> None:
    broker = broker_factory({"log.segment.bytes": "65536"})
    create_topic(broker.bootstrap, topic_name, PARTITIONS)
    acked = produce_acked(
        broker.bootstrap, topic_name, records("a", 3000), acks=acks, batch_size=16384
    )
    broker.kill()
    broker.start()
    read = read_all(broker.bootstrap, topic_name, PARTITIONS)
    assert_same_partitions(by_partition(acked), by_partition(read))

    more = produce_acked(broker.bootstrap, topic_name, records("b", 30), acks=acks)
    ends = {p: len(recs) for p, recs in by_partition(acked).items()}
    for p, recs in by_partition(more).items():
        assert recs[0].offset == ends[p], f"partition {p} continued at {recs[0].offset}"


@pytest.mark.fault
@pytest.mark.parametrize("acks", ["1", "all"])
def test_kill_9_during_produce(broker_factory: BrokerFactory, topic_name: str, acks: str) -> None:
    """Kill -9 while a producer is busy: every acknowledged record survives exactly once."""
    broker = broker_factory({"log.segment.bytes": "65536"})
    create_topic(broker.bootstrap, topic_name, PARTITIONS)
    p = producer(
        broker.bootstrap,
        acks=acks,
        message_timeout_ms=3000,
        retries=0,
        linger_ms=2,
        batch_size=16384,
    )
    acked: list[Rec] = []
    lock = threading.Lock()
    stop = threading.Event()

    def on_delivery(err: Any, msg: Any) -> None:
        if err is None:
            rec = Rec(msg.partition(), msg.offset(), msg.key(), msg.value(), (), None)
            with lock:
                acked.append(rec)

    def run() -> None:
        i = 0
        while not stop.is_set():
            try:
                p.produce(
                    topic_name,
                    value=f"v-{i}".encode(),
                    partition=i % PARTITIONS,
                    on_delivery=on_delivery,
                )
                i += 1
            except BufferError:
                pass
            p.poll(0.001 if i % 100 == 0 else 0)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: len(acked) >= 2000, 30, "2000 acknowledged records")
        broker.kill()
    finally:
        stop.set()
        thread.join(10)
    p.flush(10)  # the rest fail (message.timeout.ms) or were acknowledged just before the kill
    with lock:
        acknowledged = list(acked)
    broker.start()
    read = read_all(broker.bootstrap, topic_name, PARTITIONS)
    assert_acknowledged_read_back(
        acknowledged, [Rec(r.partition, r.offset, r.key, r.value, (), None) for r in read]
    )
