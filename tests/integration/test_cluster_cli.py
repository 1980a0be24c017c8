"""``strom cluster``, ``strom leader-election`` and the partition reports of ``strom topics
--describe`` against real 3-broker clusters (ZooKeeper, broker processes), their output
compared with what Kafka's kafka-cluster.sh, kafka-leader-election.sh and kafka-topics.sh
print (ClusterTool, LeaderElectionCommand, TopicCommand)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.integration.cli_helpers import strom
from tests.integration.cluster_helpers import (
    NO_REBALANCE,
    ClusterFactory,
    create,
    ok,
    serving,
    set_min_isr,
    tool,
)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("require_strom")]


# -- strom cluster ----------------------------------------------------------------------


def test_cluster_id_describe_and_unregister(cluster_factory: ClusterFactory) -> None:
    cluster = serving(cluster_factory(3))
    md = cluster.metadata([])
    assert ok(tool(cluster, "cluster", "cluster-id")) == [f"Cluster ID: {md.cluster_id}"]
    short = strom("cluster", "cluster-id", "-b", cluster.broker(1).bootstrap)
    assert ok(short) == [f"Cluster ID: {md.cluster_id}"]

    lines = ok(strom("cluster", "describe", "--bootstrap-server", cluster.bootstrap))
    assert lines[:2] == [f"Cluster ID: {md.cluster_id}", f"Controller: {md.controller_id}"]
    rows = [line.split() for line in lines[2:]]
    assert rows[0] == ["BROKER", "HOST:PORT", "RACK", "CONTROLLER"]
    assert rows[1:] == [
        [str(i), b.bootstrap, "-", "yes" if i == md.controller_id else "no"]
        for i, b in sorted(cluster.brokers.items())
    ]

    unregister = strom("cluster", "unregister", "--id", "1", "-b", cluster.bootstrap)
    assert ok(unregister) == ["The target cluster does not support the broker unregistration API."]
    missing = strom("cluster", "cluster-id")
    assert missing.returncode == 1
    assert missing.stderr.strip() == "Error: Please specify --bootstrap-server."


# -- strom leader-election ----------------------------------------------------------------


def test_preferred_and_unclean_elections(
    cluster_factory: ClusterFactory, topic_name: str, tmp_path: Path
) -> None:
    cluster = serving(cluster_factory(3, NO_REBALANCE, session_timeout_ms=4000))
    controller = cluster.controller_id()
    preferred = next(i for i in (2, 1, 0) if i != controller)
    other = next(i for i in (0, 1, 2) if i not in (preferred, controller))
    create(cluster, topic_name, {0: [preferred, other], 1: [preferred, controller]})
    elect = ("leader-election", "--bootstrap-server", cluster.bootstrap)

    assert ok(strom(*elect, "--election-type", "PREFERRED", "--all-topic-partitions")) == []
    cluster.broker(preferred).stop()
    cluster.wait_for(
        "leaders off the stopped broker",
        lambda: all(
            p.leader_id not in (preferred, -1)
            for p in cluster.metadata([topic_name]).topics[0].partitions
        ),
    )
    cluster.broker(preferred).start()
    cluster.wait_for(
        "the preferred replica back in sync",
        lambda: all(
            preferred in p.isr_nodes for p in cluster.metadata([topic_name]).topics[0].partitions
        ),
        timeout_s=30,
    )
    one = ok(
        strom(*elect, "--election-type", "preferred", "--topic", topic_name, "--partition", "0")
    )
    assert one == [
        f"Successfully completed leader election (PREFERRED) for partitions {topic_name}-0"
    ]
    assert cluster.leader(topic_name, 0) == preferred
    listing = tmp_path / "elect.json"
    listing.write_text(
        json.dumps({"partitions": [{"topic": topic_name, "partition": p} for p in (0, 1, 7)]})
    )
    r = strom(*elect, "--election-type", "PREFERRED", "--path-to-json-file", str(listing))
    assert r.returncode == 1
    assert r.stdout.splitlines()[:2] == [
        f"Successfully completed leader election (PREFERRED) for partitions {topic_name}-1",
        f"Valid replica already elected for partitions {topic_name}-0",
    ]
    assert re.fullmatch(
        rf"Error completing leader election \(PREFERRED\) for partition: {topic_name}-7: "
        r"org\.apache\.kafka\.common\.errors\.UnknownTopicOrPartitionException: .+",
        r.stdout.splitlines()[2],
    )
    assert r.stderr.strip() == "Error: 1 replica(s) could not be elected"
    assert cluster.leader(topic_name, 1) == preferred

    unclean = strom(*elect, "--election-type", "UNCLEAN", "--topic", topic_name, "--partition", "0")
    assert ok(unclean) == [f"Valid replica already elected for partitions {topic_name}-0"]


def test_leader_election_refuses_bad_arguments() -> None:
    base = ("leader-election", "--bootstrap-server", "127.0.0.1:1")
    cases = {
        ("leader-election", "--topic", "t", "--partition", "0"): (
            "Missing required option(s): bootstrap-server, election-type"
        ),
        (*base, "--election-type", "preferred"): (
            "One and only one of the following options is required: topic, "
            "all-topic-partitions, path-to-json-file"
        ),
        (*base, "--election-type", "preferred", "--topic", "t", "--all-topic-partitions"): (
            "One and only one of the following options is required: topic, "
            "all-topic-partitions, path-to-json-file"
        ),
        (*base, "--election-type", "preferred", "--topic", "t"): (
            "Missing required option(s): partition"
        ),
        (*base, "--election-type", "unclean", "--all-topic-partitions", "--partition", "1"): (
            "Option partition is only allowed if topic is used"
        ),
    }
    for args, message in cases.items():
        r = strom(*args)
        assert (r.returncode, r.stderr.strip()) == (1, f"Error: {message}"), args


# -- strom topics --describe reports ----------------------------------------------------


def test_topics_describe_reports(cluster_factory: ClusterFactory, topic_name: str) -> None:
    cluster = serving(cluster_factory(3, NO_REBALANCE, session_timeout_ms=4000))
    controller = cluster.controller_id()
    victim = next(i for i in (2, 1, 0) if i != controller)
    wide, narrow = f"{topic_name}-wide", f"{topic_name}-narrow"
    create(cluster, wide, {0: [0, 1, 2], 1: [1, 2, 0]})
    set_min_isr(cluster, wide, "2")
    create(cluster, narrow, {0: [victim]})
    both = f"{wide}|{narrow}"

    def report(*flags: str) -> list[str]:
        return ok(tool(cluster, "topics", "--describe", "--topic", both, *flags))

    def line(topic: str, partition: int, leader: str, replicas: str, isr: str) -> str:
        return (
            f"\tTopic: {topic}\tPartition: {partition}\tLeader: {leader}\t"
            f"Replicas: {replicas}\tIsr: {isr}\tElr: \tLastKnownElr: "
        )

    for flag in ("--under-replicated-partitions", "--unavailable-partitions"):
        assert report(flag) == []
    assert report("--under-min-isr-partitions") == []
    # one replica in sync, min.insync.replicas 1: at the minimum
    narrow_line = line(narrow, 0, str(victim), str(victim), str(victim))
    assert report("--at-min-isr-partitions") == [narrow_line]
    overrides = report("--topics-with-overrides")
    assert len(overrides) == 1
    assert re.fullmatch(
        rf"Topic: {wide}\tTopicId: \S+\tPartitionCount: 2\tReplicationFactor: 3\t"
        r"Configs: min.insync.replicas=2",
        overrides[0],
    )

    cluster.broker(victim).stop()
    cluster.wait_for(
        "the stopped broker out of every ISR",
        lambda: all(
            victim not in p.isr_nodes for p in cluster.metadata([wide]).topics[0].partitions
        ),
    )
    wide_lines = []
    for p in cluster.metadata([wide]).topics[0].partitions:
        ids = [str(i) for i in p.replica_nodes]
        isr = [str(i) for i in p.isr_nodes]
        wide_lines.append(
            line(wide, p.partition_index, str(p.leader_id), ",".join(ids), ",".join(isr))
        )
    # the offline partition keeps its last ISR, as Kafka's controller leaves it
    offline = line(narrow, 0, "none", str(victim), str(victim))
    assert report("--under-replicated-partitions") == wide_lines
    assert report("--at-min-isr-partitions") == [offline, *wide_lines]
    assert report("--unavailable-partitions") == [offline]
    assert report("--under-min-isr-partitions") == [offline]
    # several reports: the partitions that match any of them, each once
    assert report("--unavailable-partitions", "--under-replicated-partitions") == [
        offline,
        *wide_lines,
    ]
    wrong = tool(cluster, "topics", "--list", "--under-replicated-partitions")
    assert (wrong.returncode, wrong.stderr.strip()) == (
        1,
        'Error: Option "[under-replicated-partitions]" can\'t be used with option "[list]"',
    )
    both_kinds = tool(
        cluster, "topics", "--describe", "--at-min-isr-partitions", "--topics-with-overrides"
    )
    assert both_kinds.stderr.strip() == (
        'Error: Option "[at-min-isr-partitions]" can\'t be used with option '
        '"[topics-with-overrides]"'
    )
