"""A three-broker ZooKeeper cluster whose inter-broker listener is SASL_SSL (PLAIN, as
the super user), with the ACL authorizer on: brokers authenticate to each other and to
the controller, replicate and elect leaders as before. ACLs and SCRAM credentials
written through one broker reach every broker through ZooKeeper's notifications."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from strom.client.admin_types import NewTopic
from strom.client.aio.admin import AIOAdmin
from strom.common.acl import (
    AccessControlEntry,
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    PatternType,
    ResourcePattern,
    ResourceType,
)
from strom.testing import Cluster
from strom.testing.broker import free_port
from strom.testing.certs import CertificateAuthority
from strom.testing.cluster import broker_host
from strom.testing.zookeeper import ZooKeeperProcess
from tests.integration import security_helpers as sh

pytestmark = [pytest.mark.integration, pytest.mark.slow]
BROKERS = 3


def _cluster(tmp: Path, zookeeper: ZooKeeperProcess) -> tuple[Cluster, dict[int, str]]:
    ca = CertificateAuthority(tmp / "certs")
    cert = ca.issue("broker", {"CN": "broker"})
    plain = {i: free_port(broker_host(i)) for i in range(BROKERS)}
    secure = {i: free_port(broker_host(i)) for i in range(BROKERS)}
    jaas = sh.plain_jaas("admin")
    common = {
        "inter.broker.listener.name": "SASL_SSL",
        "sasl.mechanism.inter.broker.protocol": "PLAIN",
        "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256",
        "listener.name.sasl_ssl.plain.sasl.jaas.config": jaas,
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(cert.keystore),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(ca.ca_path),
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": "User:admin",
        "default.replication.factor": "3",
        "offsets.topic.replication.factor": "2",
    }

    def per_broker(i: int) -> dict[str, str]:
        host = broker_host(i)
        return {"listeners": f"PLAINTEXT://{host}:{plain[i]},SASL_SSL://{host}:{secure[i]}"}

    cluster = Cluster(
        tmp / "cluster", BROKERS, common, zookeeper=zookeeper, per_broker=per_broker,
        ports=plain, session_timeout_ms=4000,
    )  # fmt: skip
    cluster.ca = ca  # type: ignore[attr-defined]
    try:
        cluster.start()
    except BaseException:
        cluster.stop()  # brokers that did start are not left running
        raise
    return cluster, {i: f"{broker_host(i)}:{secure[i]}" for i in range(BROKERS)}


def _conf(
    cluster: Cluster, bootstrap: str, user: str = "admin", mechanism: str = "PLAIN"
) -> dict[str, Any]:
    password = sh.PASSWORDS[user]
    module = sh.PLAIN_MODULE if mechanism == "PLAIN" else sh.SCRAM_MODULE
    return {
        "bootstrap.servers": bootstrap,
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": mechanism,
        "sasl.jaas.config": f'{module} required username="{user}" password="{password}";',
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(cluster.ca.ca_path),  # type: ignore[attr-defined]
    }


def test_sasl_ssl_between_brokers(
    tmp_path: Path, zookeeper: ZooKeeperProcess, request: pytest.FixtureRequest
) -> None:
    from confluent_kafka import Consumer, Producer

    cluster, secure = _cluster(tmp_path, zookeeper)
    request.addfinalizer(cluster.stop)
    topic = sh.unique("replicated")
    admin_conf = _conf(cluster, ",".join(secure.values()))

    async def admin_call(conf: dict[str, Any], work: Any) -> Any:
        async with AIOAdmin(conf) as admin:
            return await work(admin)

    def call(work: Any, conf: dict[str, Any] = admin_conf) -> Any:
        return asyncio.run(admin_call(conf, work))

    call(lambda a: a.create_topics([NewTopic(topic, 2, 3)]))

    def in_sync() -> bool:
        described = call(lambda a: a.describe_topics([topic]))
        parts = described[topic].partitions
        return all(p.leader >= 0 and len(p.isr) == 3 for p in parts)

    cluster.wait_for("every replica in sync over SASL_SSL", in_sync, 60)

    # ACLs and a SCRAM user written through broker 0 reach broker 2
    binding = AclBinding(
        ResourcePattern(ResourceType.TOPIC, topic, PatternType.LITERAL),
        AccessControlEntry("User:alice", "*", AclOperation.ALL, AclPermissionType.ALLOW),
    )
    group = AclBinding(
        ResourcePattern(ResourceType.GROUP, "g-", PatternType.PREFIXED),
        AccessControlEntry("User:alice", "*", AclOperation.READ, AclPermissionType.ALLOW),
    )
    call(lambda a: a.create_acls([binding, group]), _conf(cluster, secure[0]))
    call(
        lambda a: a.alter_user_scram_credentials(
            [("alice", "SCRAM-SHA-256", "alice-secret", 4096)]
        ),
        _conf(cluster, secure[0]),
    )
    on_two = _conf(cluster, secure[2])
    started = time.monotonic()
    cluster.wait_for(
        "the ACLs on broker 2",
        lambda: (
            set(call(lambda a: a.describe_acls(AclBindingFilter()), on_two)) >= {binding, group}
        ),
        30,
    )
    propagated_s = time.monotonic() - started
    assert propagated_s < 30

    alice = _conf(cluster, secure[2], "alice", "SCRAM-SHA-256")
    confluent = {
        "bootstrap.servers": alice["bootstrap.servers"],
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-256",
        "sasl.username": "alice",
        "sasl.password": "alice-secret",
        "ssl.ca.location": alice["ssl.truststore.location"],
    }
    p = Producer({**confluent, "acks": "all"})
    for i in range(20):
        p.produce(topic, f"a{i}".encode(), partition=i % 2)
    assert p.flush(30) == 0

    # the leader of partition 0 dies: a new one is elected, replicated data is all there
    leader = call(lambda a: a.describe_topics([topic]))[topic].partitions[0].leader
    cluster.broker(leader).kill()
    cluster.wait_for(
        "a new leader",
        lambda: (
            call(lambda a: a.describe_topics([topic]), _conf(cluster, secure[(leader + 1) % 3]))[
                topic
            ]
            .partitions[0]
            .leader
            not in (leader, -1)
        ),
        60,
    )
    survivors = ",".join(v for k, v in secure.items() if k != leader)
    confluent["bootstrap.servers"] = survivors
    for i in range(20):
        p.produce(topic, f"b{i}".encode(), partition=i % 2)
    assert p.flush(60) == 0
    c = Consumer({**confluent, "group.id": sh.unique("g-"), "auto.offset.reset": "earliest"})
    got: list[bytes] = []
    try:
        c.subscribe([topic])
        deadline = time.monotonic() + 60
        while len(got) < 40 and time.monotonic() < deadline:
            m = c.poll(1.0)
            if m is not None and m.error() is None:
                got.append(m.value())
    finally:
        c.close()
    expected = [f"a{i}".encode() for i in range(20)] + [f"b{i}".encode() for i in range(20)]
    assert sorted(got) == sorted(expected)
