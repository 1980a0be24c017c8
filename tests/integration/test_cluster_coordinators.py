"""Coordinators in a cluster: __consumer_offsets and __transaction_state are replicated,
their coordinators move with the leadership of their partitions, and clients follow
them while brokers (those hosting the coordinators included) are bounced."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from strom.testing import Cluster
from tests.integration.test_transactions import (
    COPIER,
    Supervisor,
    committed_offsets,
    read_values,
)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("require_strom")]

ClusterFactory = Callable[..., Cluster]
SETTINGS = {
    "transaction.abort.timed.out.transaction.cleanup.interval.ms": "500",
    "replica.lag.time.max.ms": "5000",
}


def create(cluster: Cluster, name: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    new = NewTopic(name, partitions, 3, config={"min.insync.replicas": "2"})
    admin.create_topics([new], operation_timeout=30)[name].result(60)


def bounce(cluster: Cluster, broker_id: int, kill: bool) -> None:
    b = cluster.broker(broker_id)
    if kill:
        b.kill()
    else:
        b.stop()
    cluster.wait_for(
        f"broker {broker_id} gone from the cluster",
        lambda: broker_id not in [x.node_id for x in cluster.metadata().brokers],
        timeout_s=30,
    )
    b.start()
    cluster.wait_for_metadata()


def in_sync(cluster: Cluster) -> bool:
    md = cluster.metadata()
    return all(len(p.isr_nodes) == len(p.replica_nodes) for t in md.topics for p in t.partitions)


@pytest.mark.slow
def test_transactional_copy_stays_exactly_once_while_every_broker_is_bounced(
    cluster_factory: ClusterFactory, tmp_path: Path
) -> None:
    cluster = cluster_factory(3, SETTINGS, session_timeout_ms=4000)
    create(cluster, "input", 2)
    create(cluster, "output", 3)
    n = 20_000
    p = Producer({"bootstrap.servers": cluster.bootstrap, "enable.idempotence": True})
    for i in range(n):
        while True:
            try:
                p.produce("input", value=b"r%06d" % i, partition=i % 2)
                break
            except BufferError:
                p.poll(0.05)
    assert p.flush(60) == 0
    script = tmp_path / "copier.py"
    script.write_text(COPIER)
    copier = Supervisor([sys.executable, str(script), cluster.bootstrap, "input", "output", "500"])
    try:
        for i, broker_id in enumerate(sorted(cluster.brokers)):
            time.sleep(2.0)
            bounce(cluster, broker_id, kill=i == 1)
            cluster.wait_for("every replica in sync", lambda: in_sync(cluster), timeout_s=60)
        deadline = time.monotonic() + 120
        last, last_change = committed_offsets(cluster.bootstrap, "input"), time.monotonic()
        while last != [n // 2, n // 2]:
            assert time.monotonic() < deadline, last
            time.sleep(0.5)
            now = committed_offsets(cluster.bootstrap, "input")
            if now != last:
                last, last_change = now, time.monotonic()
            elif time.monotonic() - last_change > 15:
                copier.kill()  # librdkafka can hang in a call cut by a dead broker
                last_change = time.monotonic()
    finally:
        copier.stop()
    rows = read_values(cluster.bootstrap, "output", 3, "read_committed")
    values = sorted(v for _, _, v in rows)
    assert len(values) == len(set(values)), f"{len(values) - len(set(values))} duplicates"
    assert values == [b"r%06d" % i for i in range(n)]


@pytest.mark.slow
def test_group_commits_survive_coordinator_bounces(
    cluster_factory: ClusterFactory, topic_name: str
) -> None:
    """No record is delivered again after a commit that covers it, while the brokers
    (the group coordinator's among them) are bounced."""
    cluster = cluster_factory(3, SETTINGS, session_timeout_ms=4000)
    create(cluster, topic_name, 4)
    n = 4000
    p = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all"})
    for i in range(n):
        p.produce(topic_name, b"%06d" % i, partition=i % 4)
    assert p.flush(60) == 0
    committed: dict[int, int] = {}
    seen: set[tuple[int, int]] = set()
    violations: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def consume(name: str) -> None:
        c = Consumer(
            {
                "bootstrap.servers": cluster.bootstrap,
                "group.id": f"g-{topic_name}",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "client.id": name,
            }
        )
        c.subscribe([topic_name])
        try:
            while not stop.is_set():
                msgs = [m for m in c.consume(50, timeout=0.5) if m.error() is None]
                if not msgs:
                    continue
                with lock:
                    for m in msgs:
                        if m.offset() < committed.get(m.partition(), 0):
                            violations.append(f"p{m.partition()}@{m.offset()} after its commit")
                        seen.add((m.partition(), m.offset()))
                try:
                    parts = c.commit(asynchronous=False)
                except KafkaException:
                    continue  # not committed: redelivery is allowed
                with lock:
                    for tp in parts or []:
                        if tp.error is None and tp.offset >= 0:
                            committed[tp.partition] = max(committed.get(tp.partition, 0), tp.offset)
                time.sleep(0.05)
        finally:
            c.close()

    threads = [threading.Thread(target=consume, args=(f"c{i}",), daemon=True) for i in range(2)]
    for t in threads:
        t.start()
    try:
        for i, broker_id in enumerate(sorted(cluster.brokers)):
            time.sleep(1.5)
            bounce(cluster, broker_id, kill=i == 0)
        cluster.wait_for(
            "every record consumed and committed",
            lambda: len(seen) == n and sum(committed.values()) == n,
            timeout_s=120,
        )
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert violations == []
