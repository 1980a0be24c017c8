"""Replication on a 3-broker cluster: followers catch up and rejoin the ISR, too few
replicas refuse writes until one returns, consumers fetch from their rack's replica.
(Leaders killed and paused under load: tests/fault/test_leader_faults.py, R1 and R4.)"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from confluent_kafka import KafkaError, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from strom.testing import Cluster
from strom.testing.kafka import read_all

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("require_strom")]

ClusterFactory = Callable[..., Cluster]
SESSION_MS = 4000


def create(cluster: Cluster, topic: str, partitions: int = 3, min_isr: int = 2) -> None:
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    new = NewTopic(topic, partitions, 3, config={"min.insync.replicas": str(min_isr)})
    admin.create_topics([new], operation_timeout=30)[topic].result(60)
    cluster.wait_for(
        f"{topic} fully replicated",
        lambda: all(
            len(p.isr_nodes) == 3 and p.leader_id >= 0
            for p in cluster.metadata([topic]).topics[0].partitions
        ),
    )


def in_sync(cluster: Cluster, topic: str, broker_id: int) -> bool:
    return all(
        broker_id in p.isr_nodes and p.leader_id >= 0
        for p in cluster.metadata([topic]).topics[0].partitions
    )


def test_follower_killed_catches_up_and_rejoins_the_isr(
    cluster_factory: ClusterFactory, topic_name: str
) -> None:
    cluster = cluster_factory(3, {"replica.lag.time.max.ms": "3000"}, session_timeout_ms=SESSION_MS)
    create(cluster, topic_name, partitions=1)
    leader = cluster.leader(topic_name, 0)
    follower = next(b for b in cluster.brokers if b != leader)
    cluster.broker(follower).kill()
    cluster.wait_for(
        "the follower out of the ISR",
        lambda: follower not in cluster.partition(topic_name).isr_nodes,
        timeout_s=SESSION_MS / 1000 + 15,
    )
    p = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all", "linger.ms": 5})
    for i in range(2000):
        p.produce(topic_name, f"v{i}".encode(), partition=0)
        p.poll(0)
    assert p.flush(60) == 0
    cluster.broker(follower).start()
    cluster.wait_for(
        "the follower back in the ISR", lambda: in_sync(cluster, topic_name, follower), 60
    )
    # It holds every record: make it the only replica left, then read.
    for other in cluster.brokers:
        if other != follower:
            cluster.broker(other).stop()
    cluster.wait_for("the follower leading", lambda: cluster.leader(topic_name, 0) == follower)
    values = [r.value for r in read_all(cluster.bootstrap, topic_name, 1)]
    assert values == [f"v{i}".encode() for i in range(2000)]


def test_too_few_replicas_refuse_acks_all_until_one_returns(
    cluster_factory: ClusterFactory, topic_name: str
) -> None:
    cluster = cluster_factory(3, {"replica.lag.time.max.ms": "2000"}, session_timeout_ms=SESSION_MS)
    create(cluster, topic_name, partitions=1, min_isr=2)
    leader = cluster.leader(topic_name, 0)
    others = [b for b in cluster.brokers if b != leader]
    for b in others:
        cluster.broker(b).stop()
    cluster.wait_for(
        "an ISR of one", lambda: cluster.partition(topic_name).isr_nodes == [leader], 30
    )
    errors: list[KafkaError] = []
    p = Producer(
        {
            "bootstrap.servers": cluster.bootstrap,
            "acks": "all",
            "message.timeout.ms": 3000,
            "retries": 0,
        }
    )
    p.produce(topic_name, b"refused", partition=0, on_delivery=lambda err, msg: errors.append(err))
    p.flush(15)
    assert errors and errors[0] is not None
    assert errors[0].code() == KafkaError.NOT_ENOUGH_REPLICAS, errors[0]
    cluster.broker(others[0]).start()
    cluster.wait_for(
        "two replicas in sync",
        lambda: len(cluster.partition(topic_name).isr_nodes) == 2,
        timeout_s=30,
    )
    delivered: list[object] = []
    p2 = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all"})
    p2.produce(topic_name, b"accepted", partition=0, on_delivery=lambda e, m: delivered.append(e))
    assert p2.flush(30) == 0 and delivered == [None]


def test_consumers_fetch_from_the_replica_in_their_rack(
    cluster_factory: ClusterFactory, topic_name: str
) -> None:
    """KIP-392: the leader names the follower in the consumer's rack as its preferred read
    replica; that follower serves the fetch; a consumer with client.rack reads it all."""
    from confluent_kafka import Consumer

    from strom.protocol.generated.fetch import FetchRequest
    from strom.testing.wire import RawClient

    cluster = cluster_factory(
        3,
        {"replica.selector.class": "org.apache.kafka.common.replica.RackAwareReplicaSelector"},
        per_broker=lambda b: {"broker.rack": f"rack-{b}"},
    )
    create(cluster, topic_name, partitions=1, min_isr=1)
    produce = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all"})
    for i in range(50):
        produce.produce(topic_name, f"v{i}".encode(), partition=0)
    assert produce.flush(30) == 0
    part = cluster.partition(topic_name)
    leader = part.leader_id
    follower = next(r for r in part.replica_nodes if r != leader)
    topic_id = cluster.metadata([topic_name]).topics[0].topic_id

    def fetch(broker_id: int, max_wait_ms: int = 0, min_bytes: int = 1) -> FetchRequest:
        return FetchRequest(
            max_wait_ms=max_wait_ms,
            min_bytes=min_bytes,
            max_bytes=1 << 20,
            rack_id=f"rack-{follower}",
            topics=[
                FetchRequest.FetchTopic(
                    topic_name,
                    topic_id,
                    [FetchRequest.FetchPartition(0, -1, 0, -1, 0, 1 << 20)],
                )
            ],
        )

    # answered at once, not held for min_bytes (the client's 10 s timeout would fire)
    with RawClient(cluster.broker(leader).bootstrap) as c:
        at_leader = c.request(fetch(leader, 60_000, 1 << 20), 13).responses[0].partitions[0]
    assert at_leader.preferred_read_replica == follower
    # a follower whose last fetched epoch ends before its fetch offset is told where the
    # logs diverge, at once too (Kafka answers a diverging epoch without waiting)
    epoch = part.leader_epoch
    diverged = FetchRequest(
        replica_id=follower,
        max_wait_ms=60_000,
        min_bytes=1 << 20,
        max_bytes=1 << 20,
        topics=[
            FetchRequest.FetchTopic(
                topic_name, topic_id, [FetchRequest.FetchPartition(0, epoch, 60, epoch, 0, 1 << 20)]
            )
        ],
    )
    with RawClient(cluster.broker(leader).bootstrap) as c:
        answer = c.request(diverged, 13).responses[0].partitions[0]
    assert (answer.error_code, answer.diverging_epoch.epoch) == (0, epoch)
    assert answer.diverging_epoch.end_offset == 50

    def follower_serves() -> bool:  # once its high watermark has caught up
        with RawClient(cluster.broker(follower).bootstrap) as c:
            at_follower = c.request(fetch(follower), 13).responses[0].partitions[0]
        assert at_follower.error_code == 0, at_follower
        return at_follower.high_watermark == 50 and len(bytes(at_follower.records)) > 0

    cluster.wait_for("the follower to serve the fetch", follower_serves)
    consumer = Consumer(
        {
            "bootstrap.servers": cluster.bootstrap,
            "group.id": "rack-aware",
            "client.rack": f"rack-{follower}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic_name])
    got: list[bytes] = []
    deadline = time.monotonic() + 30
    while len(got) < 50 and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is not None and msg.error() is None:
            got.append(msg.value())
    consumer.close()
    assert got == [f"v{i}".encode() for i in range(50)]
