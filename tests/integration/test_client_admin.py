"""strom's admin client (strom.client.sync.Admin) against a real broker: every public
method, with the results and error codes Kafka gives.

Tests that need an API the broker's ApiVersions lacks skip on the reference broker
(STROM_TEST_BROKER=reference), naming it, and fail on strom's; the few where the
reference broker is known to answer wrongly skip on it too.
The groups with a member share one consumer (module fixture ``active``): the reference
broker takes ~20 s per join.
"""

from __future__ import annotations

import dataclasses
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from strom.client.admin_types import (
    AlterConfigOp,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigResourceType,
    ConfigSource,
    ConfigSynonym,
    LogDirDescription,
    NewTopic,
    OffsetAndTimestamp,
    OffsetSpec,
)
from strom.client.blocking import Consumer, Producer
from strom.client.errors import KafkaTimeoutError
from strom.client.group_types import GroupListing, OffsetAndMetadata, PartitionLag
from strom.client.metadata import BrokerMetadata
from strom.client.sync import Admin
from strom.common.types import TopicPartition
from strom.protocol.api_versions import ApiKey
from strom.protocol.errors import ErrorCode, KafkaError
from strom.testing import BrokerProcess
from strom.testing.broker import free_port
from tests.integration.test_client_support import lacks, require_apis

pytestmark = pytest.mark.integration

TIMEOUT_S = 60.0
GROUP_APIS = [ApiKey.FIND_COORDINATOR, ApiKey.JOIN_GROUP, ApiKey.SYNC_GROUP, ApiKey.HEARTBEAT]
# Kafka's topic defaults (no broker overrides apply to them in this module).
KAFKA_TOPIC_DEFAULTS = {
    "cleanup.policy": "delete",
    "compression.type": "producer",
    "max.message.bytes": "1048588",
    "min.insync.replicas": "1",
    "retention.bytes": "-1",
    "retention.ms": "604800000",
    "segment.bytes": "1073741824",
}


@pytest.fixture(scope="module")
def broker_overrides() -> dict[str, str]:
    return {"group.initial.rebalance.delay.ms": "0", "offsets.topic.num.partitions": "5"}


def _cfg(broker: BrokerProcess, **extra: Any) -> dict[str, Any]:
    return {
        "bootstrap.servers": broker.bootstrap,
        **{k.replace("_", "."): v for k, v in extra.items()},
    }


@pytest.fixture
def admin(broker: BrokerProcess) -> Iterator[Admin]:
    with Admin(_cfg(broker)) as a:
        yield a


def _require(broker: BrokerProcess, broker_kind: str, *keys: ApiKey) -> None:
    require_apis(broker.bootstrap, broker_kind, *keys)


def _not_on_reference(broker_kind: str, differs: str) -> None:
    """Stop here on the reference broker: from this point on it is known to differ
    from Kafka (``differs`` says how)."""
    if broker_kind == "reference":
        pytest.skip(f"the reference broker {differs}")


def _code(exc: pytest.ExceptionInfo[KafkaError]) -> ErrorCode:
    return exc.value.code


def _node(admin: Admin) -> int:
    return admin.describe_cluster().brokers[0].node_id


def _create(admin: Admin, name: str, partitions: int = 1, **configs: str) -> None:
    admin.create_topics([NewTopic(name, partitions, 1, configs)])


def _produce(broker: BrokerProcess, topic: str, counts: dict[int, int]) -> None:
    """``counts[p]`` records to partition p, one acknowledged batch each (the reference
    broker's ListOffsets LATEST counts a batch of several records as one)."""
    with Producer(_cfg(broker, linger_ms=0)) as p:
        for part, n in counts.items():
            for i in range(n):
                p.send(topic, b"v%d" % i, partition=part).result(TIMEOUT_S)


def _commit(broker: BrokerProcess, group: str, offsets: dict[TopicPartition, int]) -> None:
    """Commit ``offsets`` for ``group`` as a consumer with manual assignment does."""
    with Consumer(_cfg(broker, group_id=group, enable_auto_commit=False)) as c:
        c.assign(list(offsets))
        c.commit(offsets)


def _wait(pred: Callable[[], bool], step: Callable[[], Any], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        step()
        if pred():
            return True
    return False


def _configs(admin: Admin, topic: str, *, synonyms: bool = False) -> dict[str, ConfigEntry]:
    resource = ConfigResource(ConfigResourceType.TOPIC, topic)
    found = admin.describe_configs([resource], include_synonyms=synonyms)
    assert list(found) == [resource]
    return {e.name: e for e in found[resource]}


# -- topics ---------------------------------------------------------------------------------


def test_create_topics_with_partitions_and_configs(
    admin: Admin, broker_kind: str, topic_name: str
) -> None:
    a, b = f"{topic_name}-a", f"{topic_name}-b"
    overrides = {"cleanup.policy": "compact", "retention.ms": "3600000"}
    created = admin.create_topics([NewTopic(a, 3, 1, overrides), NewTopic(b, 2, 1)])
    assert sorted(created) == [a, b]
    assert (created[a].name, created[a].num_partitions, created[a].replication_factor) == (a, 3, 1)
    assert (created[b].name, created[b].num_partitions, created[b].replication_factor) == (b, 2, 1)
    ids = {created[a].topic_id, created[b].topic_id}
    assert len(ids) == 2 and all(len(i) == 16 and i != bytes(16) for i in ids)

    described = admin.describe_topics([a, b])
    assert {n: d.topic_id for n, d in described.items()} == {n: created[n].topic_id for n in (a, b)}
    assert [p.partition for p in described[a].partitions] == [0, 1, 2]
    assert [p.partition for p in described[b].partitions] == [0, 1]

    configs = _configs(admin, a)
    assert {n: configs[n].value for n in overrides} == overrides
    _not_on_reference(broker_kind, "reports topic overrides with source DEFAULT_CONFIG")
    assert {(configs[n].source, configs[n].is_default) for n in overrides} == {
        (ConfigSource.DYNAMIC_TOPIC_CONFIG, False)
    }
    assert _configs(admin, b)["cleanup.policy"].source == ConfigSource.DEFAULT_CONFIG


def test_create_topics_with_broker_defaults(
    admin: Admin, broker_kind: str, topic_name: str
) -> None:
    _not_on_reference(broker_kind, "creates 3 partitions by default (Kafka's num.partitions: 1)")
    # -1, -1: the broker's num.partitions and default.replication.factor
    created = admin.create_topics([NewTopic(topic_name)])[topic_name]
    assert (created.num_partitions, created.replication_factor) == (1, 1)
    assert len(admin.describe_topics([topic_name])[topic_name].partitions) == 1


def test_create_topics_with_replica_assignments(
    admin: Admin, broker_kind: str, topic_name: str
) -> None:
    _not_on_reference(broker_kind, "ignores replica assignments in CreateTopics")
    node = _node(admin)
    created = admin.create_topics([NewTopic(topic_name, assignments={0: [node], 1: [node]})])
    assert (created[topic_name].num_partitions, created[topic_name].replication_factor) == (2, 1)
    parts = admin.describe_topics([topic_name])[topic_name].partitions
    assert [(p.partition, p.leader, p.replicas) for p in parts] == [
        (0, node, (node,)),
        (1, node, (node,)),
    ]


def test_create_topics_validate_only_creates_nothing(
    admin: Admin, broker_kind: str, topic_name: str
) -> None:
    _not_on_reference(broker_kind, "creates the topic of a validate-only CreateTopics")
    created = admin.create_topics([NewTopic(topic_name, 2, 1)], validate_only=True)
    assert (created[topic_name].num_partitions, created[topic_name].replication_factor) == (2, 1)
    assert topic_name not in admin.list_topics()


@pytest.mark.parametrize(
    ("new", "code"),
    [
        (lambda t: NewTopic("bad name!"), ErrorCode.INVALID_TOPIC_EXCEPTION),
        (lambda t: NewTopic(".."), ErrorCode.INVALID_TOPIC_EXCEPTION),
        (lambda t: NewTopic("x" * 250), ErrorCode.INVALID_TOPIC_EXCEPTION),
        (lambda t: NewTopic(t, 0, 1), ErrorCode.INVALID_PARTITIONS),
        (lambda t: NewTopic(t, 1, 3), ErrorCode.INVALID_REPLICATION_FACTOR),
        (lambda t: NewTopic(t, 1, 1, {"cleanup.policy": "bogus"}), ErrorCode.INVALID_CONFIG),
        (lambda t: NewTopic(t, 1, 1, {"retention.ms": "soon"}), ErrorCode.INVALID_CONFIG),
        (lambda t: NewTopic(t, 1, 1, {"no.such.config": "1"}), ErrorCode.INVALID_CONFIG),
    ],
    ids=[
        "bad-char",
        "dots",
        "too-long",
        "zero-partitions",
        "replication-3",
        "bad-policy",
        "bad-number",
        "unknown-config",
    ],
)
def test_create_topics_errors(
    admin: Admin,
    broker_kind: str,
    topic_name: str,
    new: Callable[[str], NewTopic],
    code: ErrorCode,
) -> None:
    _not_on_reference(
        broker_kind, "accepts any name, partition count, replication factor and config"
    )
    topic = new(topic_name)
    with pytest.raises(KafkaError) as exc:
        admin.create_topics([topic])
    assert _code(exc) == code
    assert topic.name in str(exc.value)
    assert topic.name not in admin.list_topics()


def test_create_existing_topic_is_topic_already_exists(admin: Admin, topic_name: str) -> None:
    _create(admin, topic_name, 2)
    with pytest.raises(KafkaError) as exc:
        admin.create_topics([NewTopic(topic_name, 4, 1)])
    assert _code(exc) == ErrorCode.TOPIC_ALREADY_EXISTS
    assert len(admin.describe_topics([topic_name])[topic_name].partitions) == 2


def test_delete_topics(admin: Admin, topic_name: str) -> None:
    names = [f"{topic_name}-{i}" for i in range(2)]
    admin.create_topics([NewTopic(n, 1, 1) for n in names])
    assert set(names) <= set(admin.list_topics())
    admin.delete_topics(names)
    assert not set(names) & set(admin.list_topics())
    with pytest.raises(KafkaError) as exc:
        admin.describe_topics([names[0]])
    assert _code(exc) == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    with pytest.raises(KafkaError) as exc:
        admin.delete_topics([names[0]])
    assert _code(exc) == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    assert names[0] in str(exc.value)


def test_list_topics_and_internal_topics(admin: Admin, broker_kind: str, topic_name: str) -> None:
    _create(admin, topic_name)
    admin.find_coordinator(f"g-{topic_name}")  # Kafka creates __consumer_offsets for it
    public = admin.list_topics()
    everything = admin.list_topics(include_internal=True)
    assert topic_name in public and public == sorted(public)
    assert "__consumer_offsets" not in public
    assert everything == sorted(everything)
    if "__consumer_offsets" not in everything:
        lacks(broker_kind, "shows no __consumer_offsets topic in its metadata")
    assert set(everything) - set(public) == {"__consumer_offsets"}
    internal = admin.describe_topics(["__consumer_offsets"])["__consumer_offsets"]
    assert internal.is_internal
    assert len(internal.partitions) == 5  # offsets.topic.num.partitions


def test_describe_topics(admin: Admin, topic_name: str) -> None:
    created = admin.create_topics([NewTopic(topic_name, 3, 1)])[topic_name]
    node = _node(admin)
    described = admin.describe_topics([topic_name])
    assert list(described) == [topic_name]
    d = described[topic_name]
    assert (d.name, d.topic_id, d.is_internal) == (topic_name, created.topic_id, False)
    assert [
        (p.partition, p.leader, p.replicas, p.isr, p.offline_replicas) for p in d.partitions
    ] == [(i, node, (node,), (node,), ()) for i in range(3)]
    assert all(p.leader_epoch >= 0 for p in d.partitions)
    assert admin.describe_topics()[topic_name] == d  # None: every topic

    unknown = f"{topic_name}-nope"
    with pytest.raises(KafkaError) as exc:
        admin.describe_topics([unknown])
    assert _code(exc) == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    assert unknown not in admin.list_topics()  # describing does not auto-create


def test_create_partitions(
    admin: Admin, broker: BrokerProcess, broker_kind: str, topic_name: str
) -> None:
    _require(broker, broker_kind, ApiKey.CREATE_PARTITIONS)
    _create(admin, topic_name, 1)
    admin.create_partitions({topic_name: 3})
    parts = admin.describe_topics([topic_name])[topic_name].partitions
    assert [p.partition for p in parts] == [0, 1, 2]
    _produce(broker, topic_name, {2: 4})
    tps = [TopicPartition(topic_name, p) for p in range(3)]
    assert admin.log_end_offsets(tps) == dict(zip(tps, [0, 0, 4], strict=True))

    admin.create_partitions({topic_name: 5}, validate_only=True)
    assert len(admin.describe_topics([topic_name])[topic_name].partitions) == 3
    for count in (2, 3):  # fewer, or as many as it has
        with pytest.raises(KafkaError) as exc:
            admin.create_partitions({topic_name: count})
        assert _code(exc) == ErrorCode.INVALID_PARTITIONS
    with pytest.raises(KafkaError) as exc:
        admin.create_partitions({f"{topic_name}-nope": 2})
    assert _code(exc) == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    assert len(admin.describe_topics([topic_name])[topic_name].partitions) == 3


# -- configs --------------------------------------------------------------------------------


def test_describe_configs_overrides_and_kafka_defaults(
    admin: Admin, broker_kind: str, topic_name: str
) -> None:
    _create(admin, topic_name, 1, **{"retention.ms": "3600000"})
    configs = _configs(admin, topic_name)
    r = configs["retention.ms"]
    assert r.value == "3600000"
    _not_on_reference(broker_kind, "describes only overrides, with source DEFAULT_CONFIG")
    assert (r.value, r.source, r.is_default, r.read_only, r.is_sensitive, r.synonyms) == (
        "3600000",
        ConfigSource.DYNAMIC_TOPIC_CONFIG,
        False,
        False,
        False,
        (),
    )
    for name, value in KAFKA_TOPIC_DEFAULTS.items():
        if name == "retention.ms":
            continue
        e = configs[name]
        assert (name, e.value, e.source, e.is_default) == (
            name,
            value,
            ConfigSource.DEFAULT_CONFIG,
            True,
        )

    unknown = ConfigResource(ConfigResourceType.TOPIC, f"{topic_name}-nope")
    with pytest.raises(KafkaError) as exc:
        admin.describe_configs([unknown])
    assert _code(exc) == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION


def test_describe_configs_synonyms(admin: Admin, broker_kind: str, topic_name: str) -> None:
    """Kafka lists a topic config's override, then its broker synonyms that have a value
    (dynamic, static, then Kafka's default), from the broker config of the same name on."""
    _not_on_reference(broker_kind, "returns no config synonyms")
    _create(admin, topic_name, 1, **{"retention.ms": "3600000", "segment.bytes": "1048576"})
    with_synonyms = _configs(admin, topic_name, synonyms=True)
    # log.retention.ms, retention.ms's broker config, has no default (only
    # log.retention.hours has): the override is the only synonym
    assert with_synonyms["retention.ms"].synonyms == (
        ConfigSynonym("retention.ms", "3600000", ConfigSource.DYNAMIC_TOPIC_CONFIG),
    )
    assert with_synonyms["segment.bytes"].synonyms == (
        ConfigSynonym("segment.bytes", "1048576", ConfigSource.DYNAMIC_TOPIC_CONFIG),
        ConfigSynonym("log.segment.bytes", "1073741824", ConfigSource.DEFAULT_CONFIG),
    )
    assert with_synonyms["cleanup.policy"].synonyms == (
        ConfigSynonym("log.cleanup.policy", "delete", ConfigSource.DEFAULT_CONFIG),
    )
    assert with_synonyms["cleanup.policy"].source == ConfigSource.DEFAULT_CONFIG


def test_describe_broker_configs(admin: Admin, broker_kind: str) -> None:
    node = _node(admin)
    resource = ConfigResource(ConfigResourceType.BROKER, str(node))
    found = admin.describe_configs([resource])
    assert list(found) == [resource]
    entries = {e.name: e for e in found[resource]}
    _not_on_reference(broker_kind, "describes no broker configs")
    delay = entries["group.initial.rebalance.delay.ms"]
    assert (delay.value, delay.source, delay.is_default) == (
        "0",
        ConfigSource.STATIC_BROKER_CONFIG,
        False,
    )
    parts = entries["num.partitions"]
    assert (parts.value, parts.source, parts.is_default) == ("1", ConfigSource.DEFAULT_CONFIG, True)


def test_incremental_alter_configs_set_and_delete(
    admin: Admin, broker_kind: str, topic_name: str
) -> None:
    _create(admin, topic_name, 1, **{"retention.ms": "3600000"})
    resource = ConfigResource(ConfigResourceType.TOPIC, topic_name)
    admin.incremental_alter_configs(
        {
            resource: [
                AlterConfigOp("cleanup.policy", "compact"),
                AlterConfigOp("max.message.bytes", "2000", AlterConfigOpType.SET),
                AlterConfigOp("retention.ms", None, AlterConfigOpType.DELETE),
            ]
        }
    )
    configs = _configs(admin, topic_name)
    assert (configs["cleanup.policy"].value, configs["max.message.bytes"].value) == (
        "compact",
        "2000",
    )
    _not_on_reference(broker_kind, "describes only overrides, with source DEFAULT_CONFIG")
    got = {
        n: (configs[n].value, configs[n].source) for n in ("cleanup.policy", "max.message.bytes")
    }
    assert got == {
        "cleanup.policy": ("compact", ConfigSource.DYNAMIC_TOPIC_CONFIG),
        "max.message.bytes": ("2000", ConfigSource.DYNAMIC_TOPIC_CONFIG),
    }
    r = configs["retention.ms"]
    assert (r.value, r.source, r.is_default) == ("604800000", ConfigSource.DEFAULT_CONFIG, True)

    # validate_only changes nothing
    admin.incremental_alter_configs(
        {resource: [AlterConfigOp("cleanup.policy", "delete")]}, validate_only=True
    )
    assert _configs(admin, topic_name)["cleanup.policy"].value == "compact"

    # APPEND / SUBTRACT work on list-valued configs
    admin.incremental_alter_configs(
        {resource: [AlterConfigOp("cleanup.policy", "delete", AlterConfigOpType.APPEND)]}
    )
    assert _configs(admin, topic_name)["cleanup.policy"].value == "compact,delete"
    admin.incremental_alter_configs(
        {resource: [AlterConfigOp("cleanup.policy", "compact", AlterConfigOpType.SUBTRACT)]}
    )
    assert _configs(admin, topic_name)["cleanup.policy"].value == "delete"

    # deleting the last override brings back the default
    admin.incremental_alter_configs(
        {resource: [AlterConfigOp("max.message.bytes", None, AlterConfigOpType.DELETE)]}
    )
    m = _configs(admin, topic_name)["max.message.bytes"]
    assert (m.value, m.source) == ("1048588", ConfigSource.DEFAULT_CONFIG)


@pytest.mark.parametrize(
    ("op", "code"),
    [
        (AlterConfigOp("retention.ms", "soon"), ErrorCode.INVALID_CONFIG),
        (AlterConfigOp("cleanup.policy", "bogus"), ErrorCode.INVALID_CONFIG),
        (AlterConfigOp("no.such.config", "1"), ErrorCode.INVALID_CONFIG),
    ],
    ids=["bad-number", "bad-policy", "unknown-config"],
)
def test_incremental_alter_configs_errors(
    admin: Admin, broker_kind: str, topic_name: str, op: AlterConfigOp, code: ErrorCode
) -> None:
    _not_on_reference(broker_kind, "accepts any config name and value")
    _create(admin, topic_name, 1)
    resource = ConfigResource(ConfigResourceType.TOPIC, topic_name)
    with pytest.raises(KafkaError) as exc:
        admin.incremental_alter_configs({resource: [op]})
    assert _code(exc) == code
    assert topic_name in str(exc.value)
    configs = _configs(admin, topic_name)
    assert {n: configs[n].value for n in KAFKA_TOPIC_DEFAULTS} == KAFKA_TOPIC_DEFAULTS


def test_incremental_alter_configs_unknown_topic(
    admin: Admin, broker_kind: str, topic_name: str
) -> None:
    _not_on_reference(broker_kind, "alters the configs of topics that do not exist")
    resource = ConfigResource(ConfigResourceType.TOPIC, topic_name)
    with pytest.raises(KafkaError) as exc:
        admin.incremental_alter_configs({resource: [AlterConfigOp("retention.ms", "1000")]})
    assert _code(exc) == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION


# -- offsets and records --------------------------------------------------------------------


def test_list_offsets_earliest_and_latest(
    admin: Admin, broker: BrokerProcess, broker_kind: str, topic_name: str
) -> None:
    other = f"{topic_name}-other"
    admin.create_topics([NewTopic(topic_name, 2, 1), NewTopic(other, 1, 1)])
    _produce(broker, topic_name, {0: 10})
    _produce(broker, other, {0: 2})
    p0, p1, o0 = (
        TopicPartition(topic_name, 0),
        TopicPartition(topic_name, 1),
        TopicPartition(other, 0),
    )
    earliest = admin.list_offsets(dict.fromkeys([p0, p1, o0], OffsetSpec.EARLIEST))
    latest = admin.list_offsets(dict.fromkeys([p0, p1, o0], OffsetSpec.LATEST))
    assert {tp: o.offset for tp, o in earliest.items()} == {p0: 0, p1: 0, o0: 0}
    assert {tp: o.offset for tp, o in latest.items()} == {p0: 10, p1: 0, o0: 2}
    with pytest.raises(KafkaError) as exc:
        admin.list_offsets({TopicPartition(topic_name, 7): OffsetSpec.LATEST})
    assert _code(exc) == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    _not_on_reference(broker_kind, "gives EARLIEST a timestamp (Kafka: -1)")
    assert {o.timestamp for o in [*earliest.values(), *latest.values()]} == {-1}


def test_list_offsets_by_timestamp(
    admin: Admin, broker: BrokerProcess, broker_kind: str, topic_name: str
) -> None:
    _not_on_reference(broker_kind, "answers ListOffsets by timestamp with offset 0 (wrongly)")
    _create(admin, topic_name, 3)
    p0, p1, p2 = (TopicPartition(topic_name, p) for p in range(3))
    with Producer(_cfg(broker, linger_ms=0)) as p:
        for i in range(10):
            p.send(topic_name, b"%d" % i, partition=0, timestamp=1_000_000 + i * 10).result(
                TIMEOUT_S
            )
        for ts in (5_000, 9_000, 7_000):  # the newest timestamp is not the last record's
            p.send(topic_name, b"x", partition=1, timestamp=ts).result(TIMEOUT_S)

    found = admin.list_offsets({p0: 1_000_035, p1: 6_000, p2: 0})
    assert {tp: (o.offset, o.timestamp) for tp, o in found.items()} == {
        p0: (4, 1_000_040),
        p1: (1, 9_000),
        p2: (-1, -1),  # no record at all
    }
    exact = admin.list_offsets({p0: 1_000_000})[p0]
    assert (exact.offset, exact.timestamp) == (0, 1_000_000)
    after_all = admin.list_offsets({p0: 2_000_000})[p0]
    assert (after_all.offset, after_all.timestamp) == (-1, -1)
    newest = admin.list_offsets({p0: OffsetSpec.MAX_TIMESTAMP, p1: OffsetSpec.MAX_TIMESTAMP})
    assert {tp: (o.offset, o.timestamp) for tp, o in newest.items()} == {
        p0: (9, 1_000_090),
        p1: (1, 9_000),
    }


def test_list_offsets_by_timestamp_without_a_match(
    admin: Admin, broker: BrokerProcess, broker_kind: str, topic_name: str
) -> None:
    """Kafka answers "no record at or after the timestamp" with offset, timestamp and
    leader epoch all unknown (-1), as ReplicaManager.fetchOffset's buildErrorResponse."""
    _not_on_reference(broker_kind, "answers ListOffsets by timestamp with offset 0 (wrongly)")
    _create(admin, topic_name, 2)
    p0, p1 = TopicPartition(topic_name, 0), TopicPartition(topic_name, 1)
    with Producer(_cfg(broker, linger_ms=0)) as p:
        p.send(topic_name, b"x", partition=0, timestamp=1_000).result(TIMEOUT_S)
    found = admin.list_offsets({p0: 2_000, p1: 0})
    assert found == {p0: OffsetAndTimestamp(-1, -1, -1), p1: OffsetAndTimestamp(-1, -1, -1)}


def test_delete_records_moves_the_earliest_offset(
    admin: Admin, broker: BrokerProcess, broker_kind: str, topic_name: str
) -> None:
    _require(broker, broker_kind, ApiKey.DELETE_RECORDS)
    _not_on_reference(broker_kind, "closes the connection on DeleteRecords")
    _create(admin, topic_name, 2)
    _produce(broker, topic_name, {0: 10, 1: 5})
    p0, p1 = TopicPartition(topic_name, 0), TopicPartition(topic_name, 1)

    assert admin.delete_records({p0: 4, p1: -1}) == {p0: 4, p1: 5}  # -1: the high watermark
    earliest = admin.list_offsets({p0: OffsetSpec.EARLIEST, p1: OffsetSpec.EARLIEST})
    latest = admin.list_offsets({p0: OffsetSpec.LATEST, p1: OffsetSpec.LATEST})
    assert {tp: o.offset for tp, o in earliest.items()} == {p0: 4, p1: 5}
    assert {tp: o.offset for tp, o in latest.items()} == {p0: 10, p1: 5}
    with Consumer(_cfg(broker, auto_offset_reset="earliest")) as c:
        c.assign([p0])
        records: list[Any] = []
        _wait(lambda: len(records) >= 6, lambda: records.extend(c.poll(0.2)), TIMEOUT_S)
    assert [r.offset for r in records] == [4, 5, 6, 7, 8, 9]

    assert admin.delete_records({p0: 2}) == {p0: 4}  # below the start: nothing moves
    with pytest.raises(KafkaError) as exc:
        admin.delete_records({p0: 11})  # past the high watermark
    assert _code(exc) == ErrorCode.OFFSET_OUT_OF_RANGE
    assert admin.list_offsets({p0: OffsetSpec.EARLIEST})[p0].offset == 4


def test_log_end_offsets(admin: Admin, broker: BrokerProcess, topic_name: str) -> None:
    _create(admin, topic_name, 3)
    _produce(broker, topic_name, {0: 7, 1: 3})
    tps = [TopicPartition(topic_name, p) for p in range(3)]
    absent = [TopicPartition(topic_name, 9), TopicPartition(f"{topic_name}-nope", 0)]
    assert admin.log_end_offsets([*tps, *absent]) == dict(zip(tps, [7, 3, 0], strict=True))
    assert admin.log_end_offsets([]) == {}


def test_log_end_offsets_read_committed_stops_at_open_transactions(
    admin: Admin, broker: BrokerProcess, broker_kind: str, topic_name: str
) -> None:
    _require(
        broker, broker_kind, ApiKey.INIT_PRODUCER_ID, ApiKey.ADD_PARTITIONS_TO_TXN, ApiKey.END_TXN
    )
    _not_on_reference(broker_kind, "answers a read_committed ListOffsets LATEST with 0")
    _create(admin, topic_name, 1)
    _produce(broker, topic_name, {0: 3})
    tp = TopicPartition(topic_name, 0)
    with Producer(_cfg(broker, transactional_id=f"t-{topic_name}")) as p:
        p.init_transactions()
        p.begin_transaction()
        p.send(topic_name, b"a", partition=0).result(TIMEOUT_S)
        p.send(topic_name, b"b", partition=0).result(TIMEOUT_S)
        assert admin.log_end_offsets([tp], isolation_level=0) == {tp: 5}
        assert admin.log_end_offsets([tp], isolation_level=1) == {tp: 3}
        assert admin.list_offsets({tp: OffsetSpec.LATEST}, isolation_level=1)[tp].offset == 3
        p.commit_transaction()
    # the commit marker takes offset 5
    assert admin.log_end_offsets([tp], isolation_level=1) == {tp: 6}
    assert admin.log_end_offsets([tp]) == {tp: 6}


# -- cluster --------------------------------------------------------------------------------


def test_admin_close_stops_its_thread(broker: BrokerProcess) -> None:
    def admin_threads() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name == "strom-admin"]

    before = admin_threads()
    with Admin(_cfg(broker)) as a:
        assert len(admin_threads()) == len(before) + 1
        a.list_topics()
    assert admin_threads() == before

    # no broker: the constructor raises and stops its thread too
    with pytest.raises(KafkaTimeoutError):
        Admin({"bootstrap.servers": f"127.0.0.1:{free_port()}", "request.timeout.ms": 300})
    assert admin_threads() == before


def test_describe_cluster(admin: Admin, broker: BrokerProcess, topic_name: str) -> None:
    cluster = admin.describe_cluster()
    assert isinstance(cluster.cluster_id, str) and cluster.cluster_id
    assert len(cluster.brokers) == 1
    node = cluster.brokers[0]
    assert (node.host, node.port, node.rack) == ("127.0.0.1", broker.port, None)
    assert cluster.controller_id == node.node_id
    assert admin.describe_cluster() == cluster
    _create(admin, topic_name)
    assert admin.describe_topics([topic_name])[topic_name].partitions[0].leader == node.node_id


def test_describe_log_dirs(
    admin: Admin, broker: BrokerProcess, broker_kind: str, topic_name: str
) -> None:
    _require(broker, broker_kind, ApiKey.DESCRIBE_LOG_DIRS)
    _create(admin, topic_name, 2)
    _produce(broker, topic_name, {0: 20})
    node = _node(admin)
    dirs = admin.describe_log_dirs()
    assert list(dirs) == [node]

    def steady(found: dict[int, list[LogDirDescription]]) -> dict[int, list[Any]]:
        # usable_bytes is the file system's free space, which other tests move meanwhile
        return {n: [dataclasses.replace(d, usable_bytes=0) for d in ds] for n, ds in found.items()}

    assert steady(admin.describe_log_dirs([node])) == steady(dirs)
    assert len(dirs[node]) == 1
    d = dirs[node][0]
    assert d.error_code == 0
    p0, p1 = TopicPartition(topic_name, 0), TopicPartition(topic_name, 1)
    assert (d.replicas[p1].size, d.replicas[p1].offset_lag, d.replicas[p1].is_future) == (
        0,
        0,
        False,
    )
    assert (d.replicas[p0].offset_lag, d.replicas[p0].is_future) == (0, False)
    assert d.replicas[p0].size > 0
    if broker_kind == "strom":  # where strom keeps its log (tests/conftest.py)
        log_dir = broker.data_dir / "log"
        assert Path(d.log_dir) == log_dir
        on_disk = sum(f.stat().st_size for f in (log_dir / f"{topic_name}-0").glob("*.log"))
        assert d.replicas[p0].size == on_disk  # Kafka: the sum of the segments' sizes
        assert d.total_bytes == shutil.disk_usage(log_dir).total
        assert 0 < d.usable_bytes <= d.total_bytes


# -- consumer groups ------------------------------------------------------------------------


@pytest.fixture
def groups(broker: BrokerProcess, broker_kind: str) -> None:
    _require(broker, broker_kind, *GROUP_APIS)


@dataclass
class ActiveGroup:
    """A group with one member that owns both partitions of ``topic``; it has
    consumed 5 records of partition 0 and 3 of partition 1, and committed 4 on 0."""

    group: str
    topic: str
    consumer: Consumer
    client_id: str


@pytest.fixture(scope="module")
def active(broker: BrokerProcess, broker_kind: str) -> Iterator[ActiveGroup]:
    require_apis(broker.bootstrap, broker_kind, *GROUP_APIS)
    suffix = uuid.uuid4().hex[:8]
    topic, group, client_id = f"active-{suffix}", f"g-active-{suffix}", f"admin-test-{suffix}"
    with Admin(_cfg(broker)) as a:
        _create(a, topic, 2)
    _produce(broker, topic, {0: 5, 1: 3})
    cfg = _cfg(
        broker,
        group_id=group,
        client_id=client_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    consumer = Consumer(cfg)
    try:
        consumer.subscribe([topic])
        records: list[Any] = []
        limit = 180.0 if broker_kind == "reference" else TIMEOUT_S
        assert _wait(
            lambda: len(records) == 8, lambda: records.extend(consumer.poll(0.2)), limit
        ), len(records)
        consumer.commit({TopicPartition(topic, 0): 4})
        yield ActiveGroup(group, topic, consumer, client_id)
    finally:
        consumer.close()


def test_find_coordinators(admin: Admin, broker: BrokerProcess, groups: None) -> None:
    node = _node(admin)
    expected = BrokerMetadata(node, "127.0.0.1", broker.port)
    assert admin.find_coordinator("g-one") == expected
    found = admin.find_coordinators(["g-one", "g-two", "g-one"])
    assert found == {"g-one": expected, "g-two": expected}
    assert list(found) == ["g-one", "g-two"]


def test_list_groups(
    admin: Admin,
    broker: BrokerProcess,
    broker_kind: str,
    topic_name: str,
    groups: None,
    active: ActiveGroup,
) -> None:
    _create(admin, topic_name)
    empty = f"g-{topic_name}"
    _commit(broker, empty, {TopicPartition(topic_name, 0): 1})
    listed = admin.list_groups()
    assert [g.group_id for g in listed] == sorted(g.group_id for g in listed)
    by_id = {g.group_id: g for g in listed}
    assert (by_id[active.group].protocol_type, by_id[active.group].is_consumer_group) == (
        "consumer",
        True,
    )
    assert empty in by_id
    _not_on_reference(broker_kind, "lists groups with state Unknown")
    assert by_id[active.group] == GroupListing(active.group, "consumer", "Stable", "classic")
    stable = {g.group_id for g in admin.list_groups(["stable"])}  # any case
    assert active.group in stable and empty not in stable
    # committed by a consumer that never joined: no protocol type (still a consumer group)
    assert by_id[empty] == GroupListing(empty, "", "Empty", "classic")
    assert by_id[empty].is_consumer_group
    empties = {g.group_id for g in admin.list_groups(["Empty"])}
    assert empty in empties and active.group not in empties
    assert {g.group_id for g in admin.list_groups(["Empty", "STABLE"])} >= {empty, active.group}


def test_describe_groups(
    admin: Admin,
    broker: BrokerProcess,
    broker_kind: str,
    topic_name: str,
    groups: None,
    active: ActiveGroup,
) -> None:
    _create(admin, topic_name)
    empty, unknown = f"g-{topic_name}", f"g-{topic_name}-nope"
    _commit(broker, empty, {TopicPartition(topic_name, 0): 1})
    coordinator = BrokerMetadata(_node(admin), "127.0.0.1", broker.port)
    found = admin.describe_groups([active.group, empty, unknown])
    assert sorted(found) == sorted([active.group, empty, unknown])

    g = found[active.group]
    assert (g.group_id, g.state, g.protocol_type, g.coordinator) == (
        active.group,
        "Stable",
        "consumer",
        coordinator,
    )
    assert g.exists and g.is_active
    assert len(g.members) == 1
    m = g.members[0]
    assert m.group_instance_id is None
    e = found[empty]
    assert (e.state, e.protocol_type, e.partition_assignor, e.members) == ("Empty", "", "", ())
    assert e.exists and not e.is_active

    _not_on_reference(
        broker_kind,
        "describes members without client id, host or assignment, a Stable group without "
        "its protocol and unknown groups as Empty",
    )
    assert sorted(m.assignment) == [
        TopicPartition(active.topic, 0),
        TopicPartition(active.topic, 1),
    ]
    assert (m.client_id, m.client_host) == (active.client_id, "/127.0.0.1")
    assert m.member_id.startswith(f"{active.client_id}-")  # Kafka: client id, '-', a UUID
    assert g.partition_assignor == "range"  # the protocol chosen: the member's first
    u = found[unknown]
    assert (u.state, u.members) == ("Dead", ())
    assert not u.exists


def test_delete_groups(
    admin: Admin,
    broker: BrokerProcess,
    broker_kind: str,
    topic_name: str,
    groups: None,
    active: ActiveGroup,
) -> None:
    _create(admin, topic_name)
    empty, other, unknown = f"g-{topic_name}", f"g2-{topic_name}", f"g-{topic_name}-nope"
    tp = TopicPartition(topic_name, 0)
    _commit(broker, empty, {tp: 1})
    _commit(broker, other, {tp: 2})
    assert admin.delete_groups([empty]) == {empty: None}
    assert admin.list_group_offsets(empty) == {}
    _not_on_reference(
        broker_kind, "deletes groups that have members and reports no error for unknown ones"
    )
    assert admin.describe_groups([empty])[empty].state == "Dead"
    assert empty not in {g.group_id for g in admin.list_groups()}

    result = admin.delete_groups([other, active.group, unknown, empty])
    assert sorted(result) == sorted([other, active.group, unknown, empty])
    assert result[other] is None
    codes = {g: e.code for g, e in result.items() if e is not None}
    assert codes == {
        active.group: ErrorCode.NON_EMPTY_GROUP,
        unknown: ErrorCode.GROUP_ID_NOT_FOUND,
        empty: ErrorCode.GROUP_ID_NOT_FOUND,  # deleted already
    }
    assert active.group in str(result[active.group])
    after = admin.describe_groups([other, active.group])
    assert (after[other].state, after[active.group].state) == ("Dead", "Stable")
    assert list(admin.list_group_offsets(active.group)) == [TopicPartition(active.topic, 0)]


def test_list_group_offsets(
    admin: Admin,
    broker: BrokerProcess,
    broker_kind: str,
    topic_name: str,
    groups: None,
    active: ActiveGroup,
) -> None:
    _create(admin, topic_name, 3)
    p0, p1, p2 = (TopicPartition(topic_name, p) for p in range(3))
    g1, g2, unknown = f"g1-{topic_name}", f"g2-{topic_name}", f"g-{topic_name}-nope"
    _commit(broker, g1, {p0: 5, p1: 2})
    _commit(broker, g2, {p1: 7})

    mine = admin.list_group_offsets(g1)
    assert {tp: o.offset for tp, o in mine.items()} == {p0: 5, p1: 2}
    assert list(admin.list_group_offsets(g1, [p0, p2])) == [p0]  # p2: nothing committed
    assert admin.list_group_offsets(unknown) == {}

    many = admin.list_groups_offsets({g1: None, g2: [p1, p2], unknown: None})
    assert sorted(many) == sorted([g1, g2, unknown])
    assert many[g1] == mine
    assert {tp: o.offset for tp, o in many[g2].items()} == {p1: 7}
    assert many[unknown] == {}

    a0 = TopicPartition(active.topic, 0)
    assert {tp: o.offset for tp, o in admin.list_group_offsets(active.group).items()} == {a0: 4}
    _not_on_reference(broker_kind, "returns the empty metadata of a commit as null")
    assert mine == {p0: OffsetAndMetadata(5, "", -1), p1: OffsetAndMetadata(2, "", -1)}


def test_alter_group_offsets(
    admin: Admin,
    broker: BrokerProcess,
    broker_kind: str,
    topic_name: str,
    groups: None,
    active: ActiveGroup,
) -> None:
    _create(admin, topic_name, 2)
    p0, p1 = TopicPartition(topic_name, 0), TopicPartition(topic_name, 1)
    group = f"g-{topic_name}"
    admin.alter_group_offsets(group, {p0: OffsetAndMetadata(5, "five"), p1: 2})
    altered = admin.list_group_offsets(group)
    assert {tp: o.offset for tp, o in altered.items()} == {p0: 5, p1: 2}
    _not_on_reference(broker_kind, "drops the metadata of committed offsets")
    assert altered == {p0: OffsetAndMetadata(5, "five", -1), p1: OffsetAndMetadata(2, "", -1)}
    admin.alter_group_offsets(group, {p1: 0})
    assert {tp: o.offset for tp, o in admin.list_group_offsets(group).items()} == {p0: 5, p1: 0}
    assert admin.describe_groups([group])[group].state == "Empty"

    with pytest.raises(KafkaError) as exc:
        admin.alter_group_offsets(group, {TopicPartition(f"{topic_name}-nope", 0): 1})
    assert _code(exc) == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION

    a0 = TopicPartition(active.topic, 0)
    with pytest.raises(KafkaError) as exc:
        admin.alter_group_offsets(active.group, {a0: 0})
    assert _code(exc) == ErrorCode.UNKNOWN_MEMBER_ID
    assert "empty" in str(exc.value)
    assert admin.list_group_offsets(active.group)[a0].offset == 4


def test_delete_group_offsets(
    admin: Admin,
    broker: BrokerProcess,
    broker_kind: str,
    topic_name: str,
    groups: None,
    active: ActiveGroup,
) -> None:
    _require(broker, broker_kind, ApiKey.OFFSET_DELETE)
    _create(admin, topic_name, 3)
    p0, p1, p2 = (TopicPartition(topic_name, p) for p in range(3))
    group = f"g-{topic_name}"
    _commit(broker, group, {p0: 5, p1: 2})
    assert admin.delete_group_offsets(group, [p0, p2]) == {p0: None, p2: None}
    assert {tp: o.offset for tp, o in admin.list_group_offsets(group).items()} == {p1: 2}

    with pytest.raises(KafkaError) as exc:
        admin.delete_group_offsets(f"g-{topic_name}-nope", [p0])
    assert _code(exc) == ErrorCode.GROUP_ID_NOT_FOUND

    a0 = TopicPartition(active.topic, 0)
    result = admin.delete_group_offsets(active.group, [a0])
    assert list(result) == [a0]
    err = result[a0]
    assert err is not None and err.code == ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC
    assert admin.list_group_offsets(active.group)[a0].offset == 4


def test_consumer_group_lag_of_an_empty_group(
    admin: Admin, broker: BrokerProcess, broker_kind: str, topic_name: str, groups: None
) -> None:
    _create(admin, topic_name, 3)
    _produce(broker, topic_name, {0: 10, 1: 6})
    p0, p1 = TopicPartition(topic_name, 0), TopicPartition(topic_name, 1)
    group = f"g-{topic_name}"
    _commit(broker, group, {p0: 7, p1: 2})  # nothing committed on partition 2
    lag = admin.consumer_group_lag(group)
    assert (lag.description.group_id, lag.description.state) == (group, "Empty")
    assert lag.partitions == [PartitionLag(p0, 7, 10, 3), PartitionLag(p1, 2, 6, 4)]

    _not_on_reference(broker_kind, "describes unknown groups as Empty (Kafka: Dead)")
    unknown = admin.consumer_group_lag(f"{group}-nope")
    assert (unknown.description.state, unknown.partitions) == ("Dead", [])


def test_consumer_group_lag_with_a_member(
    admin: Admin, broker_kind: str, groups: None, active: ActiveGroup
) -> None:
    lag = admin.consumer_group_lag(active.group)
    assert lag.description.state == "Stable"
    member = lag.description.members[0]
    a0, a1 = TopicPartition(active.topic, 0), TopicPartition(active.topic, 1)
    row = lag.partitions[0]
    assert (row.topic_partition, row.committed_offset, row.log_end_offset, row.lag) == (a0, 4, 5, 1)
    _not_on_reference(broker_kind, "describes members without their assignment")
    owner = (member.member_id, "/127.0.0.1", active.client_id)
    assert lag.partitions == [
        PartitionLag(a0, 4, 5, 1, None, *owner),
        PartitionLag(a1, None, 3, None, None, *owner),  # nothing committed: no lag
    ]
