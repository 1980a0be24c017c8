"""R1 and R4: the leader of a partition killed with kill -9 five times, and paused
with SIGSTOP then resumed, under acks=all idempotent load from confluent-kafka,
kafka-python and aiokafka (RF 3, min.insync.replicas 2). The checker reads every
partition back at both isolation levels: nothing acknowledged is lost, nothing is
duplicated or reordered, no offset holds two values.

(These were tests/integration/test_replication.py's leader-kill and paused-leader
tests, which compared acks with one read; they run here under the checker.)

Short form: 5 kills with 1 s of load between; a 6 s pause (past the 4 s ZooKeeper
session). Long form (STROM_FAULT_LONG=1): 20 kills; a 30 s pause.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable

import pytest

from strom.testing import Cluster
from tests.fault.scenario import (
    SESSION_MS,
    Workload,
    assert_clean,
    create_topic,
    in_every_isr,
    pick,
)

pytestmark = [pytest.mark.integration, pytest.mark.fault, pytest.mark.usefixtures("require_strom")]

ClusterFactory = Callable[..., Cluster]
FAILOVER_S = SESSION_MS / 1000 + 15


def test_r1_leader_killed_five_times_loses_and_duplicates_nothing(
    cluster_factory: ClusterFactory, topic_name: str
) -> None:
    cluster = cluster_factory(3, session_timeout_ms=SESSION_MS)
    create_topic(cluster, topic_name)
    kills = pick(5, 20)
    with Workload(cluster, topic_name, 3) as load:
        for _ in range(kills):
            time.sleep(1.0)  # load flows before each kill
            victim = cluster.leader(topic_name, 0)
            load.event(f"kill -9 broker {victim}")
            cluster.broker(victim).kill()
            cluster.wait_for(
                "a new leader",
                lambda v=victim: cluster.leader(topic_name, 0) not in (v, -1),
                timeout_s=FAILOVER_S,
            )
            cluster.broker(victim).start()
            cluster.wait_for(
                "the restarted broker back in every ISR",
                lambda v=victim: in_every_isr(cluster, topic_name, v),
                timeout_s=60,
            )
        load.stop()
    report = load.report("R1 leader kill -9 x" + str(kills))
    assert_clean(report, min_acked=500)
    for producer in load.loads:  # every client library kept producing through the failovers
        assert producer.acked, f"{producer.client}: no ack; errors {producer.errors[:3]}"
    epochs = [e for e in report.epochs if e.partition == 0]
    assert len(epochs) >= kills + 1, epochs  # acknowledged by each leader in turn


def test_r4_paused_leader_is_fenced_and_its_writes_truncated(
    cluster_factory: ClusterFactory, topic_name: str
) -> None:
    cluster = cluster_factory(3, session_timeout_ms=SESSION_MS)
    create_topic(cluster, topic_name, 1)
    pause_s = pick(6.0, 30.0)
    with Workload(cluster, topic_name, 1, rate=150) as load:
        time.sleep(1.0)
        victim = cluster.leader(topic_name, 0)
        epoch = cluster.partition(topic_name).leader_epoch
        paused_at = load.history.now()
        cluster.broker(victim).pause()
        try:
            cluster.wait_for(
                "a new leader while the old one is paused",
                lambda: cluster.leader(topic_name, 0) not in (victim, -1),
                timeout_s=FAILOVER_S,
            )
            time.sleep(max(0.0, pause_s - (load.history.now() - paused_at)))
        finally:
            cluster.broker(victim).resume()
        load.history.span(f"SIGSTOP broker {victim}", paused_at)
        cluster.wait_for(
            "the old leader back as an in-sync follower",
            lambda: (
                in_every_isr(cluster, topic_name, victim)
                and cluster.leader(topic_name, 0) != victim
            ),
            timeout_s=60,
        )
        time.sleep(1.0)
        load.stop()
    report = load.report(f"R4 leader SIGSTOP {pause_s:.0f} s")
    assert_clean(report)
    assert cluster.partition(topic_name).leader_epoch > epoch
    # the paused leader acknowledged nothing after its successor took over: every
    # acknowledged offset of its epoch lies below the first one of the next epoch
    epochs = sorted(report.epochs, key=lambda e: e.leader_epoch)
    for before, after in itertools.pairwise(epochs):
        assert before.last_offset < after.first_offset, epochs
    log = cluster.broker(victim).log_path.read_text()
    assert "ZooKeeper session" in log  # it noticed its session had expired
