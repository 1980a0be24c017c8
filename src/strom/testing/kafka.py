"""confluent-kafka helpers for tests: create topics, produce with acknowledgements, read all back.

confluent-kafka is a test dependency (the `test` extra); it is imported inside the functions.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from strom.testing import Rec

TIMEOUT_S = 30.0


def create_topic(
    bootstrap: str, topic: str, partitions: int = 1, config: Mapping[str, str] | None = None
) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

    admin = AdminClient({"bootstrap.servers": bootstrap})
    new = NewTopic(topic, num_partitions=partitions, config=dict(config or {}))
    admin.create_topics([new])[topic].result(TIMEOUT_S)


def producer(bootstrap: str, **conf: Any) -> Any:
    from confluent_kafka import Producer

    settings = {"bootstrap.servers": bootstrap, "linger.ms": 5, "enable.idempotence": False}
    settings.update({k.replace("_", "."): v for k, v in conf.items()})
    return Producer(settings)


def produce_acked(
    bootstrap: str,
    topic: str,
    records: Iterable[tuple[int, bytes | None, bytes]],
    *,
    acks: str = "all",
    timestamp_ms: int | None = None,
    **conf: Any,
) -> list[Rec]:
    """Produce (partition, key, value) records; return them with their acknowledged offsets.

    Fails if any record is not acknowledged.
    """
    p = producer(bootstrap, acks=acks, **conf)
    acked: list[Rec] = []
    errors: list[str] = []

    def on_delivery(err: Any, msg: Any) -> None:
        if err is not None:
            errors.append(str(err))
        else:
            ts = msg.timestamp()[1]
            acked.append(Rec(msg.partition(), msg.offset(), msg.key(), msg.value(), (), ts))

    for partition, key, value in records:
        kwargs: dict[str, Any] = {"partition": partition, "key": key, "value": value}
        if timestamp_ms is not None:
            kwargs["timestamp"] = timestamp_ms
        while True:
            try:
                p.produce(topic, on_delivery=on_delivery, **kwargs)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    left = p.flush(TIMEOUT_S)
    assert left == 0 and not errors, f"{left} unacknowledged, errors: {errors[:5]}"
    return acked


def consumer(bootstrap: str) -> Any:
    from confluent_kafka import Consumer

    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "strom-tests-unused",  # librdkafka requires one; assign() joins no group
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "auto.offset.reset": "error",
        }
    )


def watermarks(bootstrap: str, topic: str, partition: int) -> tuple[int, int]:
    from confluent_kafka import TopicPartition

    c = consumer(bootstrap)
    try:
        low, high = c.get_watermark_offsets(TopicPartition(topic, partition), timeout=TIMEOUT_S)
        return int(low), int(high)
    finally:
        c.close()


def read_all(bootstrap: str, topic: str, partitions: int, start: int | None = None) -> list[Rec]:
    """Every record of every partition from ``start`` (default: the beginning) to the end."""
    from confluent_kafka import OFFSET_BEGINNING, KafkaError, TopicPartition

    c = consumer(bootstrap)
    out: list[Rec] = []
    try:
        offset = OFFSET_BEGINNING if start is None else start
        c.assign([TopicPartition(topic, p, offset) for p in range(partitions)])
        at_end: set[int] = set()
        deadline = time.monotonic() + TIMEOUT_S
        while len(at_end) < partitions:
            assert time.monotonic() < deadline, f"timed out reading {topic}; read {len(out)}"
            msg = c.poll(0.5)
            if msg is None:
                continue
            err = msg.error()
            if err is not None:
                assert err.code() == KafkaError._PARTITION_EOF, f"consumer error: {err}"
                at_end.add(msg.partition())
                continue
            at_end.discard(msg.partition())
            headers = tuple(msg.headers() or ())
            ts = msg.timestamp()[1]
            out.append(Rec(msg.partition(), msg.offset(), msg.key(), msg.value(), headers, ts))
        return out
    finally:
        c.close()
