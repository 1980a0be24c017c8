"""R11: idempotent producers (confluent-kafka, kafka-python, aiokafka) go idle longer
than producer.id.expiration.ms, so every replica forgets their producer ids and
sequences, then resume with their next sequence numbers: the brokers take them (as
Kafka takes any sequence from a producer id it no longer knows), no producer gets
OUT_OF_ORDER_SEQUENCE or UNKNOWN_PRODUCER_ID, nothing is lost or duplicated.

Short form: producer.id.expiration.ms=3000 (checked every 500 ms) and 8 s idle, the
same path; long form (STROM_FAULT_LONG=1): the 10 minutes of the scenario, with
producer.id.expiration.ms=600000 checked every 30 s and 11 minutes idle.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from strom.protocol.generated.describe_producers import DescribeProducersRequest
from strom.testing import Cluster
from strom.testing.wire import RawClient
from tests.fault.scenario import Workload, assert_clean, create_topic, pick

pytestmark = [pytest.mark.integration, pytest.mark.fault, pytest.mark.usefixtures("require_strom")]

ClusterFactory = Callable[..., Cluster]
EXPIRATION_MS = pick(3000, 600_000)
CHECK_MS = pick(500, 30_000)
IDLE_S = pick(8.0, 660.0)


def active_producers(cluster: Cluster, topic: str, partition: int) -> int:
    leader = cluster.leader(topic, partition)
    req = DescribeProducersRequest([DescribeProducersRequest.TopicRequest(topic, [partition])])
    with RawClient(cluster.broker(leader).bootstrap) as c:
        return len(c.request(req, 0).topics[0].partitions[0].active_producers)


@pytest.mark.timeout(pick(300, 1200))
def test_r11_idle_idempotent_producers_resume_without_sequence_errors(
    cluster_factory: ClusterFactory, topic_name: str
) -> None:
    cluster = cluster_factory(
        3,
        {
            "producer.id.expiration.ms": str(EXPIRATION_MS),
            "producer.id.expiration.check.interval.ms": str(CHECK_MS),
        },
    )
    create_topic(cluster, topic_name)
    with Workload(cluster, topic_name, 3, rate=50) as load:
        time.sleep(3.0)
        assert all(active_producers(cluster, topic_name, p) == 3 for p in range(3))
        for producer in load.loads:
            producer.hold()
        idle_from = load.history.now()
        time.sleep(IDLE_S)
        forgotten = [active_producers(cluster, topic_name, p) for p in range(3)]
        for producer in load.loads:
            producer.release()
        load.history.span(f"producers idle {IDLE_S:.0f} s", idle_from)
        time.sleep(3.0)
    assert forgotten == [0, 0, 0], forgotten  # the producer ids had expired
    report = load.report(f"R11 idempotent producers idle {IDLE_S:.0f} s", gap_s=IDLE_S + 5)
    assert_clean(report, min_acked=300)
    assert report.failed == 0, load.errors()[:5]
    for producer in load.loads:
        resumed = [w for w in load.history.writes if w.writer == producer.writer]
        assert resumed[-1].acked, f"{producer.writer} did not resume: {producer.errors[:3]}"
