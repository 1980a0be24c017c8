"""pytest fixtures for testing code against a real Kafka-compatible broker: strom's.

Installed with strom and registered through the ``pytest11`` entry point ``strom``, so
any project that installs strom gets the fixtures (``-p no:strom`` turns them off):

``strom_broker`` (session)
    a :class:`strom.testing.EmbeddedBroker`: a broker in the test process, on its own
    thread, on a free port, its log in pytest's temporary directory (or in memory with
    ``strom_in_memory = true``); started on first use, stopped at the end of the session.
``strom_bootstrap`` (session)
    the bootstrap servers string for any client (confluent-kafka, kafka-python, aiokafka,
    strom.client); with ``--strom-bootstrap HOST:PORT``, that cluster instead (then no
    broker is started: run the same tests against Apache Kafka).
``strom_topic``
    a fresh topic for each test (its name), deleted after it. Shape it with a marker:
    ``@pytest.mark.strom_topic(partitions=3, config={"cleanup.policy": "compact"})``.
``strom_reader`` (session)
    a :class:`strom.testing.topic_reader.TopicReader`: ``read(topic)``, ``values(topic)``,
    ``assert_values(topic, [...])``, ``assert_records(topic, [(key, value), ...])``.
``strom_admin`` (session)
    strom's blocking admin client (:class:`strom.client.sync.Admin`) on the bootstrap.
``strom_cluster`` (session)
    ``strom_cluster_size`` broker processes (3 unless that fixture is overridden) with
    the real Apache ZooKeeper (Debian's ``zookeeper`` package): a
    :class:`strom.testing.Cluster`, ``.bootstrap`` for clients.

Broker configs: the ini option ``strom_broker_config`` (one ``key=value`` a line),
``--strom-broker-config key=value`` (repeatable), or override the ``strom_broker_config``
fixture (session scope) in a conftest.py. Guide: docs/testing.md.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from strom.client.sync import Admin
    from strom.testing.cluster import Cluster
    from strom.testing.embedded import EmbeddedBroker
    from strom.testing.topic_reader import TopicReader

TOPIC_MARKER = "strom_topic"
# Kafka's defaults, but for one: a consumer group's first rebalance waits 3 s for more
# members in Kafka (group.initial.rebalance.delay.ms); a test would wait for nothing.
TEST_BROKER_DEFAULTS = {"group.initial.rebalance.delay.ms": "0"}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("strom", "strom: a Kafka-compatible broker for tests")
    group.addoption(
        "--strom-bootstrap",
        metavar="HOST:PORT",
        help="run the strom_* fixtures against this running cluster instead of an "
        "embedded strom broker",
    )
    group.addoption(
        "--strom-broker-config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a broker config of the embedded strom broker (repeatable)",
    )
    parser.addini(
        "strom_broker_config",
        type="linelist",
        default=[],
        help="broker configs of the embedded strom broker, one key=value a line",
    )
    parser.addini(
        "strom_in_memory",
        type="bool",
        default=False,
        help="keep the embedded strom broker's log on tmpfs (/dev/shm) where there is one",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{TOPIC_MARKER}(partitions=1, replication_factor=1, config=None): the topic "
        "that the strom_topic fixture creates for the test",
    )


def _key_values(lines: list[str], where: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in lines:
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise pytest.UsageError(f"{where}: expected key=value, got {line!r}")
        out[key.strip()] = value.strip()
    return out


@pytest.fixture(scope="session")
def strom_broker_config(pytestconfig: pytest.Config) -> dict[str, str]:
    """Broker configs of ``strom_broker`` (server.properties keys): Kafka's defaults but
    group.initial.rebalance.delay.ms=0, then the ini option strom_broker_config, then
    --strom-broker-config. Override to set them in code."""
    configs = dict(TEST_BROKER_DEFAULTS)
    configs.update(_key_values(pytestconfig.getini("strom_broker_config"), "strom_broker_config"))
    configs.update(
        _key_values(pytestconfig.getoption("strom_broker_config"), "--strom-broker-config")
    )
    return configs


@pytest.fixture(scope="session")
def strom_broker(
    strom_broker_config: dict[str, str],
    pytestconfig: pytest.Config,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[EmbeddedBroker]:
    """A strom broker in this process for the whole session (see the module)."""
    from strom.testing.embedded import EmbeddedBroker, memory_dir_parent

    memory = bool(pytestconfig.getini("strom_in_memory")) and memory_dir_parent() is not None
    log_dir = None if memory else tmp_path_factory.mktemp("strom-broker")
    with EmbeddedBroker(strom_broker_config, log_dir=log_dir, memory=memory) as broker:
        yield broker


@pytest.fixture(scope="session")
def strom_bootstrap(pytestconfig: pytest.Config, request: pytest.FixtureRequest) -> str:
    """bootstrap.servers of the cluster under test: ``--strom-bootstrap`` if given,
    else the embedded ``strom_broker``'s."""
    external: str | None = pytestconfig.getoption("strom_bootstrap")
    if external:
        return external
    broker: EmbeddedBroker = request.getfixturevalue("strom_broker")
    return broker.bootstrap


@pytest.fixture(scope="session")
def strom_admin(strom_bootstrap: str) -> Iterator[Admin]:
    """strom's blocking admin client on ``strom_bootstrap``."""
    from strom.client.sync import Admin

    with Admin({"bootstrap.servers": strom_bootstrap}) as admin:
        yield admin


@pytest.fixture(scope="session")
def strom_reader(strom_bootstrap: str) -> Iterator[TopicReader]:
    """Reads topics back and asserts on them (:class:`strom.testing.topic_reader.TopicReader`)."""
    from strom.testing.topic_reader import TopicReader

    with TopicReader(strom_bootstrap) as reader:
        yield reader


def topic_name_for(node_name: str) -> str:
    """A topic name unique to one test: its name, made legal, and a random suffix."""
    base = re.sub(r"[^A-Za-z0-9._-]", "-", node_name)[:200]
    return f"{base}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def strom_topic(strom_admin: Admin, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh topic for this test (its name); shaped by the strom_topic marker."""
    from strom.client.admin_types import NewTopic

    marker = request.node.get_closest_marker(TOPIC_MARKER)
    options: dict[str, Any] = dict(marker.kwargs) if marker is not None else {}
    unknown = set(options) - {"partitions", "replication_factor", "config"}
    if unknown:
        raise pytest.UsageError(f"strom_topic marker: unknown options {sorted(unknown)}")
    name = topic_name_for(request.node.name)
    new = NewTopic(
        name,
        int(options.get("partitions", 1)),
        int(options.get("replication_factor", 1)),
        {k: str(v) for k, v in (options.get("config") or {}).items()},
    )
    strom_admin.create_topics([new])
    yield name
    from strom.protocol.errors import ErrorCode, KafkaError

    try:
        strom_admin.delete_topics([name])
    except KafkaError as exc:  # the test deleted it itself
        if exc.code != ErrorCode.UNKNOWN_TOPIC_OR_PARTITION:
            raise


@pytest.fixture(scope="session")
def strom_cluster_size() -> int:
    """How many brokers ``strom_cluster`` has; override to change it."""
    return 3


@pytest.fixture(scope="session")
def strom_cluster_config() -> dict[str, str]:
    """Broker configs of every broker of ``strom_cluster``; override to change them."""
    return {}


@pytest.fixture(scope="session")
def strom_cluster(
    strom_cluster_size: int,
    strom_cluster_config: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Cluster]:
    """A strom cluster: ``strom_cluster_size`` broker processes and a real ZooKeeper
    (Debian's zookeeper package; without it the fixture fails saying how to install it)."""
    from strom.testing.cluster import Cluster
    from strom.testing.zookeeper import INSTALL_HINT, zookeeper_installed

    if not zookeeper_installed():
        pytest.fail(f"strom_cluster needs Apache ZooKeeper: {INSTALL_HINT}", pytrace=False)
    cluster = Cluster(
        tmp_path_factory.mktemp("strom-cluster"), strom_cluster_size, strom_cluster_config
    )
    with cluster:
        yield cluster
