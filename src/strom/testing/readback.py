"""Read every partition from its start to its end into a History: one consumer at
read_uncommitted and one at read_committed (confluent-kafka, assign mode), each
record with the leader epoch of its batch.

Before reading, :func:`read_back` waits until no transaction is open any more
(every partition's last stable offset has reached its high watermark), so that the
read_committed consumer can see every committed record.
"""

from __future__ import annotations

import time
from typing import Any

from strom.testing.history import History, Read

COMMITTED, UNCOMMITTED = "read_committed", "read_uncommitted"
TIMEOUT_S = 60.0


def _consumer(bootstrap: str, isolation: str) -> Any:
    from confluent_kafka import Consumer

    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "strom-checker-unused",  # assign() joins no group
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "auto.offset.reset": "error",
            "isolation.level": isolation,
        }
    )


def end_offsets(bootstrap: str, topic: str, partitions: int, isolation: str) -> list[int]:
    """The high watermark (read_uncommitted) or last stable offset (read_committed)."""
    from confluent_kafka import TopicPartition

    c = _consumer(bootstrap, isolation)
    try:
        return [
            int(c.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False)[1])
            for p in range(partitions)
        ]
    finally:
        c.close()


def wait_stable(bootstrap: str, topic: str, partitions: int, timeout_s: float = TIMEOUT_S) -> None:
    """Wait until every partition's last stable offset equals its high watermark."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            high = end_offsets(bootstrap, topic, partitions, UNCOMMITTED)
            stable = end_offsets(bootstrap, topic, partitions, COMMITTED)
            if high == stable:
                return
            last = f"high watermarks {high}, last stable offsets {stable}"
        except Exception as exc:  # a broker still recovering
            last = str(exc)
        if time.monotonic() > deadline:
            raise AssertionError(f"transactions still open after {timeout_s} s: {last}")
        time.sleep(0.5)


def read_partitions(
    bootstrap: str, topic: str, partitions: int, isolation: str, name: str
) -> list[Read]:
    """Every record of every partition from the beginning to the end at ``isolation``."""
    from confluent_kafka import OFFSET_BEGINNING, KafkaError, TopicPartition

    c = _consumer(bootstrap, isolation)
    out: list[Read] = []
    try:
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        at_end: set[int] = set()
        deadline = time.monotonic() + TIMEOUT_S
        while len(at_end) < partitions:
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out reading {topic} ({isolation}): {len(out)} read")
            msg = c.poll(0.5)
            if msg is None:
                continue
            err = msg.error()
            if err is not None:
                if err.code() != KafkaError._PARTITION_EOF:
                    raise AssertionError(f"consumer error: {err}")
                at_end.add(msg.partition())
                continue
            at_end.discard(msg.partition())
            epoch = msg.leader_epoch()
            out.append(
                Read(
                    name,
                    isolation,
                    msg.partition(),
                    msg.offset(),
                    msg.value() or b"",
                    -1 if epoch is None else int(epoch),
                )
            )
        return out
    finally:
        c.close()


def read_back(history: History, bootstrap: str, topic: str, partitions: int) -> None:
    """Once no transaction is open, read everything at both isolation levels into
    ``history``."""
    wait_stable(bootstrap, topic, partitions)
    for isolation in (UNCOMMITTED, COMMITTED):
        name = f"confluent-kafka {isolation}"
        history.read(
            name, isolation, read_partitions(bootstrap, topic, partitions, isolation, name)
        )
