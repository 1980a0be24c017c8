"""Clusters coordinated by the real ZooKeeper: 3 broker processes, each test in its own
chroot. Clients see every broker, leader, replicas and ISR; the controller moves
leaderships when brokers die or stop, fails over when it dies itself, deletes topics
on every broker, reassigns partitions and elects preferred leaders."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, NewTopic
from kazoo.client import KazooClient

from strom.protocol.generated.alter_partition_reassignments import (
    AlterPartitionReassignmentsRequest as APR,
)
from strom.protocol.generated.elect_leaders import ElectLeadersRequest
from strom.protocol.generated.list_partition_reassignments import (
    ListPartitionReassignmentsRequest,
)
from strom.testing import Cluster
from strom.testing.kafka import produce_acked, read_all
from strom.testing.wire import RawClient

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("require_strom")]

ClusterFactory = Callable[..., Cluster]


def create(cluster: Cluster, topic: str, partitions: int, rf: int, **configs: str) -> None:
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    new = NewTopic(topic, partitions, rf, config=configs)
    admin.create_topics([new], operation_timeout=30)[topic].result(60)
    cluster.wait_for(
        f"{topic} to have leaders",
        lambda: all(p.leader_id >= 0 for p in cluster.metadata([topic]).topics[0].partitions),
    )


def zk_get(cluster: Cluster, path: str) -> bytes:
    zk = KazooClient(cluster.zookeeper_connect, timeout=5)
    zk.start(10)
    try:
        return zk.get(path)[0]  # type: ignore[no-any-return]
    finally:
        zk.stop()
        zk.close()


def controller_epoch(cluster: Cluster) -> int:
    return int(zk_get(cluster, "/controller_epoch"))


def zk_broker_epoch(cluster: Cluster, broker_id: int) -> int:
    """The broker epoch of a registration: the czxid of its /brokers/ids znode."""
    zk = KazooClient(cluster.zookeeper_connect, timeout=5)
    zk.start(10)
    try:
        return int(zk.get(f"/brokers/ids/{broker_id}")[1].czxid)
    finally:
        zk.stop()
        zk.close()


def test_every_broker_answers_with_the_whole_cluster(
    cluster_factory: ClusterFactory, topic_name: str
) -> None:
    cluster = cluster_factory(3)
    create(cluster, topic_name, 6, 3)
    for node_id in cluster.brokers:
        # each broker learns of the topic from the controller's UpdateMetadata, a moment
        # after the creation is answered (Kafka's metadata is eventually consistent too)
        cluster.wait_for(
            f"broker {node_id} to know {topic_name}",
            lambda n=node_id: len(cluster.metadata([topic_name], n).topics[0].partitions) == 6,  # type: ignore[misc]
        )
        md = cluster.metadata([topic_name], node_id)
        assert sorted(x.node_id for x in md.brokers) == [0, 1, 2]
        assert md.controller_id in (0, 1, 2)
        parts = md.topics[0].partitions
        assert len(parts) == 6
        assert {p.leader_id for p in parts} == {0, 1, 2}  # leaders spread over the brokers
        for p in parts:
            assert sorted(p.replica_nodes) == [0, 1, 2]
            assert sorted(p.isr_nodes) == [0, 1, 2]
            assert p.leader_id == p.replica_nodes[0]
    acked = produce_acked(
        cluster.bootstrap, topic_name, [(i % 6, None, f"v{i}".encode()) for i in range(60)]
    )
    assert len(read_all(cluster.bootstrap, topic_name, 6)) == len(acked) == 60


def test_kcat_kafka_python_and_aiokafka_use_a_cluster(
    cluster_factory: ClusterFactory, topic_name: str
) -> None:
    cluster = cluster_factory(3)
    create(cluster, topic_name, 3, 3)
    listing = subprocess.run(
        ["kcat", "-L", "-b", cluster.bootstrap, "-t", topic_name],
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    assert "3 brokers:" in listing and "isrs: " in listing
    produced = subprocess.run(
        ["kcat", "-P", "-b", cluster.bootstrap, "-t", topic_name, "-X", "acks=all"],
        input="a\nb\nc\n",
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert produced.returncode == 0, produced.stderr
    from kafka import KafkaConsumer, KafkaProducer

    producer = KafkaProducer(bootstrap_servers=cluster.bootstrap, acks="all")
    for i in range(10):
        producer.send(topic_name, f"kp{i}".encode()).get(30)
    producer.close()
    consumer = KafkaConsumer(
        topic_name,
        bootstrap_servers=cluster.bootstrap,
        auto_offset_reset="earliest",
        group_id="kp-group",
        consumer_timeout_ms=15000,
    )
    got = [m.value for m in consumer]
    consumer.close()
    assert sorted(got) == sorted([b"a", b"b", b"c"] + [f"kp{i}".encode() for i in range(10)])

    import asyncio

    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    async def aio() -> int:
        p = AIOKafkaProducer(bootstrap_servers=cluster.bootstrap, acks="all")
        await p.start()
        await p.send_and_wait(topic_name, b"aio")
        await p.stop()
        c = AIOKafkaConsumer(
            topic_name,
            bootstrap_servers=cluster.bootstrap,
            auto_offset_reset="earliest",
            group_id="aio-group",
        )
        await c.start()
        seen = 0
        try:
            while seen < 14:
                batch = await c.getmany(timeout_ms=15000)
                if not batch:
                    break
                seen += sum(len(v) for v in batch.values())
        finally:
            await c.stop()
        return seen

    assert asyncio.run(aio()) == 14


def test_killed_broker_loses_its_leaderships(
    cluster_factory: ClusterFactory, topic_name: str
) -> None:
    cluster = cluster_factory(3, session_timeout_ms=4000)
    create(cluster, topic_name, 3, 3)
    victim = cluster.leader(topic_name, 0)
    cluster.broker(victim).kill()
    took = cluster.wait_for(
        "the killed broker's partitions to get new leaders",
        lambda: all(
            p.leader_id not in (victim, -1) and victim not in p.isr_nodes
            for p in cluster.metadata([topic_name]).topics[0].partitions
        ),
        timeout_s=4 + 10,
    )
    md = cluster.metadata([topic_name])
    assert victim not in [b.node_id for b in md.brokers]
    assert took < 4 + 6
    acked = produce_acked(cluster.bootstrap, topic_name, [(0, None, b"after")])
    assert acked[0].offset >= 0


def test_sigterm_moves_leaderships_before_the_broker_exits(
    cluster_factory: ClusterFactory, topic_name: str
) -> None:
    cluster = cluster_factory(3, session_timeout_ms=20000)
    create(cluster, topic_name, 3, 3)
    victim = cluster.leader(topic_name, 0)
    assert cluster.broker(victim).stop() == 0
    # The session (20 s) has not expired: only controlled shutdown moved the leaders.
    parts = cluster.metadata([topic_name]).topics[0].partitions
    assert all(p.leader_id not in (victim, -1) for p in parts)
    assert "controlled shutdown succeeded" in cluster.broker(victim).log_path.read_text()


def test_controller_failover_bumps_the_epoch(
    cluster_factory: ClusterFactory, topic_name: str
) -> None:
    cluster = cluster_factory(3, session_timeout_ms=4000)
    create(cluster, topic_name, 3, 3)
    old = cluster.controller_id()
    epoch = controller_epoch(cluster)
    cluster.broker(old).kill()
    cluster.wait_for(
        "a new controller",
        lambda: cluster.controller_id() not in (old, -1) and controller_epoch(cluster) > epoch,
        timeout_s=4 + 10,
    )
    assert controller_epoch(cluster) == epoch + 1
    # the new controller works: the dead broker's leaderships moved
    cluster.wait_for(
        "leaders off the dead controller",
        lambda: all(
            p.leader_id != old for p in cluster.metadata([topic_name]).topics[0].partitions
        ),
    )
    cluster.broker(old).start()
    cluster.wait_for(
        "the old controller back in every ISR",
        lambda: all(
            old in p.isr_nodes for p in cluster.metadata([topic_name]).topics[0].partitions
        ),
        timeout_s=30,
    )


def test_topic_deletion_removes_the_data_on_every_broker(
    cluster_factory: ClusterFactory, topic_name: str
) -> None:
    cluster = cluster_factory(3)
    create(cluster, topic_name, 2, 3)
    produce_acked(cluster.bootstrap, topic_name, [(0, None, b"x"), (1, None, b"y")])
    dirs = [b.log_dir / f"{topic_name}-0" for b in cluster.brokers.values()]
    assert all(d.exists() for d in dirs)
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    admin.delete_topics([topic_name], operation_timeout=30)[topic_name].result(60)
    cluster.wait_for(
        "the topic's directories to go on every broker",
        lambda: (
            not any(
                (b.log_dir / f"{topic_name}-{p}").exists()
                for b in cluster.brokers.values()
                for p in (0, 1)
            )
        ),
    )
    assert cluster.metadata([topic_name]).topics[0].error_code == 3  # UNKNOWN_TOPIC_OR_PARTITION


def _controller_client(cluster: Cluster) -> RawClient:
    controller = cluster.controller_id()
    return RawClient(cluster.broker(controller).bootstrap)


def test_reassignment_moves_a_partition_and_preferred_election(
    cluster_factory: ClusterFactory, topic_name: str
) -> None:
    cluster = cluster_factory(4)
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    admin.create_topics(
        [NewTopic(topic_name, 1, replica_assignment=[[0, 1]])], operation_timeout=30
    )[topic_name].result(60)
    produce_acked(cluster.bootstrap, topic_name, [(0, None, f"v{i}".encode()) for i in range(20)])
    with _controller_client(cluster) as c:
        req = APR(
            topics=[APR.ReassignableTopic(topic_name, [APR.ReassignablePartition(0, [2, 3])])]
        )
        resp = c.request(req, 0)
    assert resp.error_code == 0
    assert resp.responses[0].partitions[0].error_code == 0
    cluster.wait_for(
        "the reassignment to complete",
        lambda: (
            sorted(cluster.partition(topic_name).replica_nodes) == [2, 3]
            and sorted(cluster.partition(topic_name).isr_nodes) == [2, 3]
        ),
        timeout_s=30,
    )
    with _controller_client(cluster) as c:
        listed = c.request(ListPartitionReassignmentsRequest(topics=None), 0)
    assert listed.error_code == 0 and listed.topics == []
    assert cluster.partition(topic_name).leader_id in (2, 3)
    cluster.wait_for(
        "the old replicas' logs deleted",
        lambda: (
            not (cluster.broker(0).log_dir / f"{topic_name}-0").exists()
            and not (cluster.broker(1).log_dir / f"{topic_name}-0").exists()
        ),
    )
    assert [r.value for r in read_all(cluster.bootstrap, topic_name, 1)] == [
        f"v{i}".encode() for i in range(20)
    ]
    # Preferred election: stop the preferred leader, bring it back, elect it again.
    preferred = cluster.partition(topic_name).replica_nodes[0]
    cluster.broker(preferred).stop()
    cluster.wait_for(
        "a leader", lambda: cluster.partition(topic_name).leader_id not in (preferred, -1)
    )
    cluster.broker(preferred).start()
    cluster.wait_for(
        "the preferred replica in sync",
        lambda: preferred in cluster.partition(topic_name).isr_nodes,
    )
    ER = ElectLeadersRequest
    with _controller_client(cluster) as c:
        resp = c.request(
            ER(
                election_type=0,
                topic_partitions=[ER.TopicPartitions(topic_name, [0])],
                timeout_ms=30000,
            ),
            2,
        )
    assert resp.replica_election_results[0].partition_result[0].error_code == 0
    assert cluster.partition(topic_name).leader_id == preferred


def test_a_live_broker_id_cannot_register_twice(
    cluster_factory: ClusterFactory, tmp_path: Path
) -> None:
    cluster = cluster_factory(1, session_timeout_ms=4000)
    argv = [
        sys.executable, "-m", "strom", "broker",
        "--override", "broker.id=0",
        "--override", f"zookeeper.connect={cluster.zookeeper_connect}",
        "--override", "zookeeper.session.timeout.ms=4000",
        "--override", f"log.dirs={tmp_path / 'log'}",
        "--override", "listeners=PLAINTEXT://127.0.0.1:0",
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "broker.id 0 is already registered" in done.stderr
    assert cluster.broker(0).is_running()


def test_brokers_register_again_after_zookeeper_restarts(tmp_path: Path, topic_name: str) -> None:
    with Cluster(tmp_path, 3, session_timeout_ms=4000) as cluster:
        create(cluster, topic_name, 3, 3)
        cluster.zookeeper.stop()

        time.sleep(5)  # past the session timeout: every session expires
        cluster.zookeeper.start()
        cluster.wait_for(
            "every broker registered again",
            lambda: len(cluster.metadata().brokers) == 3 and cluster.controller_id() >= 0,
            timeout_s=40,
        )
        zk = KazooClient(cluster.zookeeper_connect, timeout=5)
        zk.start(10)
        try:
            assert sorted(zk.get_children("/brokers/ids")) == ["0", "1", "2"]
        finally:
            zk.stop()
            zk.close()
        acked = produce_acked(cluster.bootstrap, topic_name, [(0, None, b"again")])
        assert acked[0].offset >= 0


def test_delete_records_reaches_every_replica(
    cluster_factory: ClusterFactory, topic_name: str
) -> None:
    from strom.protocol.generated.delete_records import DeleteRecordsRequest as DR
    from strom.testing.kafka import watermarks

    cluster = cluster_factory(3, session_timeout_ms=4000)
    create(cluster, topic_name, 1, 3)
    produce_acked(cluster.bootstrap, topic_name, [(0, None, f"v{i}".encode()) for i in range(10)])
    leader = cluster.leader(topic_name, 0)
    with RawClient(cluster.broker(leader).bootstrap) as c:
        req = DR(
            topics=[DR.DeleteRecordsTopic(topic_name, [DR.DeleteRecordsPartition(0, 7)])],
            timeout_ms=10000,
        )
        resp = c.request(req, 2)
    part = resp.topics[0].partitions[0]
    assert (part.error_code, part.low_watermark) == (0, 7)
    # every replica moved its log start: whichever leads next starts at 7
    for _ in range(2):
        leader = cluster.leader(topic_name, 0)
        cluster.broker(leader).stop()
        cluster.wait_for(
            "a new leader", lambda v=leader: cluster.leader(topic_name, 0) not in (v, -1)
        )
        assert watermarks(cluster.bootstrap, topic_name, 0)[0] == 7
        cluster.broker(leader).start()
        cluster.wait_for(
            "back in sync", lambda v=leader: v in cluster.partition(topic_name).isr_nodes
        )


def test_strom_client_produces_and_consumes_through_failover(
    cluster_factory: ClusterFactory, topic_name: str
) -> None:
    from strom.client import Consumer, Producer

    cluster = cluster_factory(3, session_timeout_ms=4000)
    create(cluster, topic_name, 3, 3)
    config = {
        "bootstrap.servers": cluster.bootstrap,
        "group.id": "strom-client",
        "auto.offset.reset": "earliest",
    }

    def consume(c: Consumer, n: int) -> list[bytes]:
        got: list[bytes] = []
        deadline = time.monotonic() + 60
        while len(got) < n and time.monotonic() < deadline:
            got += [r.value for r in c.poll(1.0) if r.value is not None]
        return got

    with (
        Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all"}) as p,
        Consumer(config) as c,
    ):
        c.subscribe([topic_name])
        for i in range(30):
            p.send(topic_name, f"a{i}".encode(), partition=i % 3).result(30)
        first = consume(c, 30)
        victim = cluster.leader(topic_name, 0)
        cluster.broker(victim).kill()
        for i in range(30):  # retried to the new leaders
            p.send(topic_name, f"b{i}".encode(), partition=i % 3).result(60)
        second = consume(c, 30)
    assert sorted(first) == sorted(f"a{i}".encode() for i in range(30))
    assert sorted(second) == sorted(f"b{i}".encode() for i in range(30))


def test_zookeeper_down_at_start_is_a_clear_error(tmp_path: Path) -> None:
    from strom.testing.broker import free_port

    argv = [
        sys.executable, "-m", "strom", "broker",
        "--override", f"zookeeper.connect=127.0.0.1:{free_port()}",
        "--override", "zookeeper.connection.timeout.ms=3000",
        "--override", f"log.dirs={tmp_path / 'log'}",
        "--override", "listeners=PLAINTEXT://127.0.0.1:0",
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "waiting for ZooKeeper at" in done.stderr
    assert "Timed out waiting for connection to ZooKeeper" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_log_dir_of_another_cluster_is_refused(
    cluster_factory: ClusterFactory, zookeeper: object, tmp_path: Path
) -> None:
    cluster = cluster_factory(1)
    b = cluster.broker(0)
    b.stop()
    argv = [
        sys.executable, "-m", "strom", "broker",
        "--override", "broker.id=0",
        "--override", f"zookeeper.connect={cluster.zookeeper.connect_string}/another-cluster",
        "--override", f"log.dirs={b.log_dir}",
        "--override", "listeners=PLAINTEXT://127.0.0.1:0",
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "doesn't match stored clusterId" in done.stderr


def test_new_partitions_and_config_changes_reach_every_broker(
    cluster_factory: ClusterFactory, topic_name: str
) -> None:
    from confluent_kafka import KafkaError, Producer
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, NewPartitions

    cluster = cluster_factory(3, {"replica.lag.time.max.ms": "2000"}, session_timeout_ms=4000)
    create(cluster, topic_name, 1, 3)
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    admin.create_partitions([NewPartitions(topic_name, 6)])[topic_name].result(60)
    cluster.wait_for(
        "six partitions with leaders",
        lambda: (
            len(parts := cluster.metadata([topic_name]).topics[0].partitions) == 6
            and all(p.leader_id >= 0 and len(p.isr_nodes) == 3 for p in parts)
        ),
    )
    res = ConfigResource(
        ConfigResource.Type.TOPIC,
        topic_name,
        incremental_configs=[
            ConfigEntry("min.insync.replicas", "3", incremental_operation=AlterConfigOpType.SET)
        ],
    )
    admin.incremental_alter_configs([res])[res].result(30)
    # Every leader now needs 3 in-sync replicas: stop one broker, and every partition
    # (whichever broker leads it) refuses acks=all writes.
    cluster.broker(0).stop()
    cluster.wait_for(
        "ISRs of two",
        lambda: all(
            len(p.isr_nodes) == 2 for p in cluster.metadata([topic_name]).topics[0].partitions
        ),
    )
    errors: list[object] = []
    p = Producer(
        {
            "bootstrap.servers": cluster.bootstrap,
            "acks": "all",
            "retries": 0,
            "message.timeout.ms": 5000,
        }
    )
    for part in range(6):
        p.produce(topic_name, b"x", partition=part, on_delivery=lambda e, m: errors.append(e))
    p.flush(30)
    assert len(errors) == 6
    assert all(e is not None and e.code() == KafkaError.NOT_ENOUGH_REPLICAS for e in errors), errors


@pytest.mark.slow
def test_a_paused_controller_is_fenced_when_it_resumes(
    cluster_factory: ClusterFactory, topic_name: str
) -> None:
    cluster = cluster_factory(3, session_timeout_ms=4000)
    create(cluster, topic_name, 3, 3)
    old = cluster.controller_id()
    epoch = controller_epoch(cluster)
    cluster.broker(old).pause()
    cluster.wait_for(
        "a new controller while the old one is paused",
        lambda: controller_epoch(cluster) > epoch,
        timeout_s=20,
    )
    new = cluster.controller_id()
    cluster.broker(old).resume()
    # asked of the new controller: the resumed broker's own image is stale until it has
    # resigned and registered again
    cluster.wait_for(
        "the old controller registered again as a plain broker",
        lambda: (
            old in [b.node_id for b in cluster.metadata(via=new).brokers]
            and cluster.controller_id(via=new) == new
            and cluster.controller_id(via=old) == new
            and "resigns as controller" in cluster.broker(old).log_path.read_text()
        ),
        timeout_s=30,
    )
    # no partition state was written with the old controller's epoch afterwards
    import json

    for p in range(3):
        state = json.loads(zk_get(cluster, f"/brokers/topics/{topic_name}/partitions/{p}/state"))
        assert state["controller_epoch"] != epoch or state["leader"] != old


def test_cluster_default_broker_configs_reach_every_broker(cluster_factory: ClusterFactory) -> None:
    from confluent_kafka.admin import ConfigResource

    from strom.protocol.generated.incremental_alter_configs import (
        IncrementalAlterConfigsRequest as IAC,
    )

    cluster = cluster_factory(3)
    req = IAC(
        resources=[
            IAC.AlterConfigsResource(4, "", [IAC.AlterableConfig("log.retention.ms", 0, "123456")])
        ]
    )
    with RawClient(cluster.broker(0).bootstrap) as c:  # the cluster-wide default ("")
        assert c.request(req, 1).responses[0].error_code == 0

    def applied(broker_id: int) -> bool:
        admin = AdminClient({"bootstrap.servers": cluster.broker(broker_id).bootstrap})
        target = ConfigResource(ConfigResource.Type.BROKER, str(broker_id))
        configs = admin.describe_configs([target])[target].result(30)
        return configs["log.retention.ms"].value == "123456"  # type: ignore[no-any-return]

    for b in cluster.brokers:
        cluster.wait_for(f"broker {b} to apply the cluster default", lambda b=b: applied(b), 20)


def test_requests_of_a_stale_controller_or_for_another_broker_epoch_are_refused(
    cluster_factory: ClusterFactory,
) -> None:
    from strom.protocol.generated.leader_and_isr import LeaderAndIsrRequest as LAIR
    from strom.protocol.generated.update_metadata import UpdateMetadataRequest as UMR

    cluster = cluster_factory(2)
    epoch = controller_epoch(cluster)
    with RawClient(cluster.broker(1).bootstrap) as c:
        stale = c.request(UMR(controller_id=0, controller_epoch=epoch - 1, broker_epoch=-1), 8)
        wrong_broker = c.request(UMR(controller_id=0, controller_epoch=epoch, broker_epoch=1), 8)
    assert stale.error_code == 11  # STALE_CONTROLLER_EPOCH
    assert wrong_broker.error_code == 77  # STALE_BROKER_EPOCH
    assert sorted(b.node_id for b in cluster.metadata().brokers) == [0, 1]  # nothing changed
    # A newer broker epoch is this broker's next registration, which the controller can
    # see before the broker does (a resumed broker whose session expired): Kafka takes it.
    # (Refusing it left a resumed ex-controller with the old image for a minute: R4.)
    newer = zk_broker_epoch(cluster, 1) + 1000
    with RawClient(cluster.broker(1).bootstrap) as c:
        ahead = c.request(LAIR(controller_id=0, controller_epoch=epoch, broker_epoch=newer), 5)
    assert ahead.error_code == 0
