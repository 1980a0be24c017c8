"""Helpers of the cluster tools' tests: clusters that serve, topics with explicit
replicas, the tools' output, Kafka's reassignment JSON."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable

from strom.client.admin_types import AlterConfigOp, ConfigResource, ConfigResourceType, NewTopic
from strom.client.sync import Admin
from strom.protocol.generated.metadata import MetadataRequest
from strom.testing import Cluster
from strom.testing.wire import RawClient
from tests.integration.cli_helpers import strom

ClusterFactory = Callable[..., Cluster]
NO_REBALANCE = {"auto.leader.rebalance.enable": "false"}


def serving(cluster: Cluster) -> Cluster:
    """``cluster`` once every broker's Metadata lists every broker and a controller."""
    n = len(cluster.brokers)

    def serves(bootstrap: str) -> bool:
        with RawClient(bootstrap, timeout_s=5) as c:
            md = c.request(MetadataRequest(topics=[], allow_auto_topic_creation=False), 12)
        return len(md.brokers) == n and md.controller_id >= 0

    cluster.wait_for(
        "every broker to know the cluster",
        lambda: all(serves(b.bootstrap) for b in cluster.brokers.values() if b.is_running()),
    )
    return cluster


def create(cluster: Cluster, topic: str, assignments: dict[int, list[int]], **configs: str) -> None:
    """A topic with explicit replicas, waited for until every partition has its leader."""
    with Admin({"bootstrap.servers": cluster.bootstrap}) as admin:
        admin.create_topics([NewTopic(topic, configs=configs, assignments=assignments)])
    cluster.wait_for(
        f"{topic} to have leaders",
        lambda: all(
            p.leader_id >= 0 and len(p.isr_nodes) == len(p.replica_nodes)
            for p in cluster.metadata([topic]).topics[0].partitions
        ),
    )


def tool(cluster: Cluster, name: str, *args: str) -> subprocess.CompletedProcess[str]:
    return strom(name, "--bootstrap-server", cluster.bootstrap, *args)


def ok(r: subprocess.CompletedProcess[str]) -> list[str]:
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stderr == "", r.stderr
    return r.stdout.splitlines()


def reassignment_json(parts: dict[tuple[str, int], list[int]]) -> str:
    """Kafka's formatAsReassignmentJson for these partitions (compact, sorted)."""
    return json.dumps(
        {
            "version": 1,
            "partitions": [
                {"topic": t, "partition": p, "replicas": r, "log_dirs": ["any"] * len(r)}
                for (t, p), r in sorted(parts.items())
            ],
        },
        separators=(",", ":"),
    )


def replicas(cluster: Cluster, topic: str) -> dict[int, list[int]]:
    return {
        p.partition_index: list(p.replica_nodes)
        for p in cluster.metadata([topic]).topics[0].partitions
    }


def set_min_isr(cluster: Cluster, topic: str, value: str) -> None:
    """min.insync.replicas of ``topic``, waited for until every broker describes it.
    (Set with IncrementalAlterConfigs: the brokers that are not the controller do not
    see a config given at creation, see the report.)"""
    resource = ConfigResource(ConfigResourceType.TOPIC, topic)
    with Admin({"bootstrap.servers": cluster.bootstrap}) as admin:
        admin.incremental_alter_configs({resource: [AlterConfigOp("min.insync.replicas", value)]})

    def described(bootstrap: str) -> str | None:
        with Admin({"bootstrap.servers": bootstrap}) as admin:
            entries = admin.describe_configs([resource])[resource]
        return next(e.value for e in entries if e.name == "min.insync.replicas")

    cluster.wait_for(
        "every broker to describe the config",
        lambda: all(described(b.bootstrap) == value for b in cluster.brokers.values()),
    )
