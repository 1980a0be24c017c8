"""strom's pytest plugin, used as a user would: its fixtures in this suite's own tests
(registered by the package's pytest11 entry point, not by a conftest), with four client
libraries; docs/testing.md's example and the cluster fixture in a separate pytest run."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from types import ModuleType

import pytest

from strom.client.sync import Admin
from strom.testing import BrokerProcess, EmbeddedBroker
from strom.testing.topic_reader import TopicReader

pytestmark = pytest.mark.integration

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "testing.md"


def test_the_plugin_is_registered_by_the_entry_point(pytestconfig: pytest.Config) -> None:
    from importlib.metadata import entry_points

    import strom.testing.pytest_plugin as plugin

    names = {ep.name: ep.value for ep in entry_points(group="pytest11")}
    assert names.get("strom") == "strom.testing.pytest_plugin"
    registered: ModuleType | None = pytestconfig.pluginmanager.get_plugin("strom")
    assert registered is plugin


def test_fixtures_with_confluent_kafka(
    strom_broker: EmbeddedBroker, strom_bootstrap: str, strom_topic: str, strom_reader: TopicReader
) -> None:
    from confluent_kafka import Producer

    assert strom_bootstrap == strom_broker.bootstrap
    producer = Producer({"bootstrap.servers": strom_bootstrap, "linger.ms": 5})
    for i in range(50):
        producer.produce(strom_topic, key=b"k%d" % (i % 5), value=b"v%d" % i)
    assert producer.flush(10) == 0
    records = strom_reader.assert_values(strom_topic, [b"v%d" % i for i in range(50)])
    assert [r.offset for r in records] == list(range(50))
    assert {r.partition for r in records} == {0}


@pytest.mark.strom_topic(partitions=3, config={"cleanup.policy": "compact"})
def test_marker_shapes_the_topic_with_kafka_python(
    strom_bootstrap: str, strom_topic: str, strom_admin: Admin, strom_reader: TopicReader
) -> None:
    from kafka import KafkaProducer

    from strom.client.admin_types import ConfigResource, ConfigResourceType

    described = strom_admin.describe_topics([strom_topic])[strom_topic]
    assert len(described.partitions) == 3
    resource = ConfigResource(ConfigResourceType.TOPIC, strom_topic)
    entries = {e.name: e.value for e in strom_admin.describe_configs([resource])[resource]}
    assert entries["cleanup.policy"] == "compact"
    producer = KafkaProducer(bootstrap_servers=strom_bootstrap)
    try:
        for i in range(30):
            producer.send(strom_topic, key=b"key-%d" % (i % 4), value=b"%d" % i)
        producer.flush(10)
    finally:
        producer.close()
    expected = [(b"key-%d" % (i % 4), b"%d" % i) for i in range(30)]
    records = strom_reader.assert_records(strom_topic, expected)
    assert len({r.partition for r in records}) > 1  # keys spread over the partitions


def test_fixtures_with_aiokafka_and_strom_client(
    strom_bootstrap: str, strom_topic: str, strom_reader: TopicReader
) -> None:
    from aiokafka import AIOKafkaProducer

    from strom.client import Consumer, Producer

    async def produce() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=strom_bootstrap)
        await producer.start()
        try:
            for i in range(3):
                await producer.send_and_wait(strom_topic, b"aio-%d" % i)
        finally:
            await producer.stop()

    asyncio.run(produce())
    with Producer({"bootstrap.servers": strom_bootstrap}) as producer:
        producer.send(strom_topic, b"strom").result(10)
    strom_reader.assert_values(strom_topic, [b"aio-0", b"aio-1", b"aio-2", b"strom"])
    got = []
    with Consumer(
        {"bootstrap.servers": strom_bootstrap, "group.id": "g", "auto.offset.reset": "earliest"}
    ) as consumer:
        consumer.subscribe([strom_topic])
        deadline = time.monotonic() + 20
        while len(got) < 4 and time.monotonic() < deadline:
            got += [r.value for r in consumer.poll(1.0)]
    assert got == [b"aio-0", b"aio-1", b"aio-2", b"strom"]


def test_reader_reports_what_differs(strom_bootstrap: str, strom_topic: str) -> None:
    from strom.client import Producer

    with Producer({"bootstrap.servers": strom_bootstrap}) as producer:
        producer.send(strom_topic, b"one").result(10)
        producer.send(strom_topic, b"two").result(10)
    with TopicReader(strom_bootstrap) as reader:
        with pytest.raises(AssertionError, match=r"#1: expected b'three', read b'two'"):
            reader.assert_values(strom_topic, ["one", "three"], timeout_s=1)
        with pytest.raises(AssertionError, match="has 2 records after"):
            reader.read(strom_topic, min_records=3, timeout_s=0.3)
        reader.assert_values(strom_topic, ["two", "one"], ordered=False)


# -- the embedded broker itself ------------------------------------------------------------


def test_embedded_broker_async_context_manager_and_memory_dir() -> None:
    async def main() -> tuple[Path, str]:
        async with EmbeddedBroker(memory=True) as broker:
            assert broker.log_dir is not None
            assert broker.log_dir.is_dir()
            with Admin({"bootstrap.servers": broker.bootstrap}) as admin:
                assert admin.describe_cluster().brokers[0].port == broker.port
            return broker.log_dir, repr(broker)

    log_dir, shown = asyncio.run(main())
    assert "running on 127.0.0.1:" in shown
    if Path("/dev/shm").is_dir():
        assert log_dir.parent == Path("/dev/shm")
    assert not log_dir.exists()  # removed at stop


def test_embedded_broker_keeps_a_given_log_dir_and_restarts_on_it(tmp_path: Path) -> None:
    from strom.client import Producer

    with (
        EmbeddedBroker(log_dir=tmp_path) as broker,
        Producer({"bootstrap.servers": broker.bootstrap}) as producer,
    ):
        producer.send("kept", b"x").result(10)
    assert (tmp_path / "kept-0").is_dir()
    with EmbeddedBroker(log_dir=tmp_path) as again:
        assert TopicReader(again.bootstrap).values("kept") == [b"x"]


def test_embedded_broker_bad_config_fails_at_start() -> None:
    from strom.testing import EmbeddedBrokerError

    broker = EmbeddedBroker({"num.partitions": "0"})
    with pytest.raises(EmbeddedBrokerError, match=r"num\.partitions"):
        broker.start()
    assert not broker.running
    assert broker.log_dir is not None and not broker.log_dir.exists()


def test_embedded_broker_port_in_use_fails_at_start(strom_broker: EmbeddedBroker) -> None:
    from strom.testing import EmbeddedBrokerError

    broker = EmbeddedBroker(port=strom_broker.port)
    with pytest.raises(EmbeddedBrokerError, match="cannot bind"):
        broker.start()
    assert not broker.running
    assert broker.log_dir is not None and not broker.log_dir.exists()
    broker.stop()  # harmless after a failed start


# -- as a user's separate pytest run ---------------------------------------------------------


def _guide_example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", GUIDE.read_text(), re.S)
    return blocks[0]


def test_the_guide_example_runs(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_orders=_guide_example())
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=120)
    result.assert_outcomes(passed=3)


def test_strom_bootstrap_option_uses_that_cluster(
    pytester: pytest.Pytester, broker: BrokerProcess, require_strom: None
) -> None:
    pytester.makepyfile(
        test_external="""
        def test_it(strom_bootstrap, strom_topic, strom_reader, request):
            assert strom_bootstrap == "BOOTSTRAP"
            assert "strom_broker" not in request.fixturenames
            from strom.client import Producer
            with Producer({"bootstrap.servers": strom_bootstrap}) as p:
                p.send(strom_topic, b"external").result(10)
            strom_reader.assert_values(strom_topic, [b"external"])
        """.replace("BOOTSTRAP", broker.bootstrap)
    )
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--strom-bootstrap", broker.bootstrap, timeout=120
    )
    result.assert_outcomes(passed=1)


@pytest.mark.slow
def test_strom_cluster_fixture(pytester: pytest.Pytester) -> None:
    """Three broker processes and a real ZooKeeper: a replicated topic, acks=all."""
    pytester.makepyfile(
        test_cluster="""
        import pytest

        @pytest.mark.strom_topic(partitions=2, replication_factor=3)
        def test_replicated(strom_cluster, strom_topic, strom_reader):
            from confluent_kafka import Producer

            assert len(strom_cluster.bootstrap.split(",")) == 3
            p = Producer({"bootstrap.servers": strom_cluster.bootstrap, "acks": "all"})
            for i in range(20):
                p.produce(strom_topic, b"r%d" % i, partition=i % 2)
            assert p.flush(30) == 0
            strom_reader.assert_values(strom_topic, [b"r%d" % i for i in range(20)], ordered=False)
            for part in strom_cluster.metadata([strom_topic]).topics[0].partitions:
                assert len(part.replica_nodes) == 3 and len(part.isr_nodes) == 3
        """
    )
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture(scope="session")
        def strom_bootstrap(strom_cluster):
            return strom_cluster.bootstrap
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=240)
    result.assert_outcomes(passed=1)
