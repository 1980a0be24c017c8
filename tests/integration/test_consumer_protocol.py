"""The consumer rebalance protocol (KIP-848) against a real broker: confluent-kafka
(librdkafka, ``group.protocol=consumer``) and strom's own client.

Each Member polls in its own thread and records its assignment, the records it was
given and the offsets it committed synchronously. The broker runs with a short
heartbeat interval and session timeout so that groups settle in seconds.
"""

from __future__ import annotations

import asyncio
import re
import threading
import uuid
from typing import Any

import pytest

from strom.client.aio.admin import AIOAdmin
from strom.client.aio.client import AIOClient
from strom.client.aio.consumer import AIOConsumer
from strom.client.blocking import Consumer as BlockingConsumer
from strom.client.config import ClientConfig
from strom.common.types import TopicPartition
from strom.testing.broker import BrokerProcess
from strom.testing.kafka import create_topic, produce_acked
from tests.integration.test_groups import covers_exactly, state_of, wait_for

pytestmark = pytest.mark.integration
Partition = tuple[str, int]
PARTITIONS = 6
OVERRIDES = {
    "group.consumer.min.heartbeat.interval.ms": "100",
    "group.consumer.heartbeat.interval.ms": "300",
    "group.consumer.min.session.timeout.ms": "2000",
    "group.consumer.session.timeout.ms": "4000",
    "offsets.topic.num.partitions": "5",
}


class Member(threading.Thread):
    """One consumer of the group (``kind``: confluent, strom or strom-blocking)."""

    def __init__(
        self,
        kind: str,
        bootstrap: str,
        group: str,
        topics: list[str] | str,
        *,
        commit: bool = False,
        instance_id: str | None = None,
        assignor: str | None = None,
    ) -> None:
        super().__init__(daemon=True)
        self.kind, self.bootstrap, self.group, self.topics = kind, bootstrap, group, topics
        self.commit, self.instance_id, self.assignor = commit, instance_id, assignor
        self.assignment: frozenset[Partition] = frozenset()
        self.history: list[frozenset[Partition]] = []
        self.delivered: list[tuple[str, int, int]] = []
        self.committed: list[tuple[str, int, int]] = []
        self.errors: list[str] = []
        self.stop_event = threading.Event()
        self.lock = threading.Lock()

    def stop(self) -> None:
        self.stop_event.set()
        self.join(30)

    def run(self) -> None:
        try:
            if self.kind == "confluent":
                self._confluent()
            elif self.kind == "strom":
                asyncio.run(self._strom())
            else:
                self._strom_blocking()
        except Exception as e:  # reported by the test
            self.errors.append(repr(e))

    def _set_assignment(self, tps: Any) -> None:
        new = frozenset((tp.topic, tp.partition) for tp in tps)
        with self.lock:
            if new != self.assignment:
                self.history.append(new)
            self.assignment = new

    def _got(self, topic: str, partition: int, offset: int) -> None:
        with self.lock:
            self.delivered.append((topic, partition, offset))

    def _config(self) -> dict[str, Any]:
        conf: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap,
            "group.id": self.group,
            "group.protocol": "consumer",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
        if self.instance_id is not None:
            conf["group.instance.id"] = self.instance_id
        if self.assignor is not None:
            conf["group.remote.assignor"] = self.assignor
        return conf

    def _confluent(self) -> None:
        from confluent_kafka import Consumer

        c = Consumer(self._config())
        c.subscribe([self.topics] if isinstance(self.topics, str) else self.topics)
        try:
            while not self.stop_event.is_set():
                msg = c.poll(0.05)
                self._set_assignment(c.assignment())
                if msg is None:
                    continue
                if msg.error():
                    self.errors.append(str(msg.error()))
                    continue
                self._got(msg.topic(), msg.partition(), msg.offset())
                if self.commit:
                    try:
                        c.commit(msg, asynchronous=False)
                    except Exception:
                        continue
                    with self.lock:
                        self.committed.append((msg.topic(), msg.partition(), msg.offset()))
        finally:
            c.close()

    async def _strom(self) -> None:
        async with AIOConsumer(self._config()) as c:
            topics = self.topics
            c.subscribe(re.compile(topics) if isinstance(topics, str) else topics)
            while not self.stop_event.is_set():
                records = await c.poll(0.05)
                self._set_assignment(c.assignment())
                for r in records:
                    self._got(r.topic, r.partition, r.offset)
                    if self.commit:
                        await c.commit({TopicPartition(r.topic, r.partition): r.offset + 1})
                        with self.lock:
                            self.committed.append((r.topic, r.partition, r.offset))

    def _strom_blocking(self) -> None:
        with BlockingConsumer(self._config()) as c:
            c.subscribe(self.topics if isinstance(self.topics, list) else re.compile(self.topics))
            while not self.stop_event.is_set():
                for r in c.poll(0.05):
                    self._got(r.topic, r.partition, r.offset)
                self._set_assignment(c.assignment())


@pytest.fixture(scope="module")
def broker_overrides() -> dict[str, str]:
    return dict(OVERRIDES)


@pytest.fixture
def topic6(broker: BrokerProcess, topic_name: str) -> str:
    create_topic(broker.bootstrap, topic_name, PARTITIONS)
    return topic_name


@pytest.fixture
def members() -> Any:
    started: list[Member] = []

    def start(*args: Any, **kwargs: Any) -> Member:
        m = Member(*args, **kwargs)
        m.start()
        started.append(m)
        return m

    yield start
    for m in started:
        if m.is_alive():
            m.stop()


def group_name() -> str:
    return f"cg-{uuid.uuid4().hex[:8]}"


def balanced(ms: list[Member], topic: str) -> bool:
    sizes = [len(m.assignment) for m in ms]
    return covers_exactly(ms, topic, PARTITIONS) and max(sizes) - min(sizes) <= 1  # type: ignore[arg-type]


def describe(bootstrap: str, group: str) -> Any:
    async def go() -> Any:
        client = AIOClient(ClientConfig.from_dict({"bootstrap.servers": bootstrap}))
        try:
            await client.bootstrap()
            return (await AIOAdmin(client).describe_groups([group]))[group]
        finally:
            await client.close()

    return asyncio.run(go())


# -- membership ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["confluent", "strom"])
@pytest.mark.parametrize("n", [1, 3, 8])
def test_group_sizes(broker: BrokerProcess, topic6: str, members: Any, kind: str, n: int) -> None:
    group = group_name()
    ms = [members(kind, broker.bootstrap, group, [topic6]) for _ in range(n)]
    try:
        wait_for(lambda: balanced(ms, topic6), 60, f"{n} {kind} members", stable_s=1.0)
    except AssertionError as e:
        raise AssertionError(f"{e}: {state_of(ms)}") from None  # type: ignore[arg-type]
    assert not [e for m in ms for e in m.errors]
    d = describe(broker.bootstrap, group)
    assert d.group_type == "Consumer" and d.state == "Stable" and len(d.members) == n
    assert d.group_epoch == d.target_assignment_epoch
    assert {m.member_epoch for m in d.members} == {d.target_assignment_epoch}


def test_leave_and_join_move_only_what_they_must(
    broker: BrokerProcess, topic6: str, members: Any
) -> None:
    group = group_name()
    ms = [members("confluent", broker.bootstrap, group, [topic6]) for _ in range(3)]
    wait_for(lambda: balanced(ms, topic6), 60, "three members", stable_s=1.0)
    before = {id(m): m.assignment for m in ms}
    ms[2].stop()
    rest = ms[:2]
    wait_for(lambda: balanced(rest, topic6), 30, "after a leave", stable_s=1.0)
    for m in rest:
        assert before[id(m)] <= m.assignment, state_of(rest)  # type: ignore[arg-type]
    before = {id(m): m.assignment for m in rest}
    newcomer = members("confluent", broker.bootstrap, group, [topic6])
    everyone = [*rest, newcomer]
    wait_for(lambda: balanced(everyone, topic6), 30, "after a join", stable_s=1.0)
    for m in rest:
        assert m.assignment <= before[id(m)], state_of(everyone)  # type: ignore[arg-type]
        # revoked only: never a partition it did not have before the newcomer came
        assert all(h <= before[id(m)] for h in m.history[-2:])


@pytest.mark.parametrize(
    "kinds", [("confluent", "confluent", "confluent"), ("strom", "strom", "confluent")]
)
def test_committed_records_are_never_delivered_again(
    broker: BrokerProcess, topic6: str, members: Any, kinds: tuple[str, ...]
) -> None:
    group = group_name()
    total = 600
    produce_acked(broker.bootstrap, topic6, [(i % PARTITIONS, None, b"v") for i in range(total)])
    ms = [members(kinds[0], broker.bootstrap, group, [topic6], commit=True)]
    wait_for(lambda: len(ms[0].committed) >= 50, 60, "first commits")
    ms.append(members(kinds[1], broker.bootstrap, group, [topic6], commit=True))
    wait_for(lambda: sum(len(m.committed) for m in ms) >= 250, 60, "more commits")
    ms[0].stop()
    ms.append(members(kinds[2], broker.bootstrap, group, [topic6], commit=True))

    def all_consumed() -> bool:
        return len({(t, p, o) for m in ms for t, p, o in list(m.delivered)}) == total

    wait_for(all_consumed, 90, "every record consumed")
    for m in ms:
        m.stop()
    assert not [e for m in ms for e in m.errors]
    committed = [c for m in ms for c in m.committed]
    deliveries = [d for m in ms for d in m.delivered]
    for c in committed:
        assert deliveries.count(c) == 1, f"{c} was committed and delivered again"


def test_static_member_gets_its_partitions_back(
    broker: BrokerProcess, topic6: str, members: Any
) -> None:
    group = group_name()
    a = members("confluent", broker.bootstrap, group, [topic6], instance_id="a")
    b = members("confluent", broker.bootstrap, group, [topic6], instance_id="b")
    wait_for(lambda: balanced([a, b], topic6), 60, "static group", stable_s=1.0)
    mine, theirs, b_changes = a.assignment, b.assignment, len(b.history)
    a.stop()  # leaves with epoch -2: its partitions wait for it
    a2 = members("confluent", broker.bootstrap, group, [topic6], instance_id="a")
    wait_for(lambda: a2.assignment == mine, 30, "same partitions back")
    assert b.assignment == theirs and len(b.history) == b_changes


def test_regex_subscription_picks_up_a_topic_created_later(
    broker: BrokerProcess, members: Any
) -> None:
    prefix = f"rx{uuid.uuid4().hex[:6]}"
    create_topic(broker.bootstrap, f"{prefix}-1", 2)
    group = group_name()
    confluent = members("confluent", broker.bootstrap, group, [f"^{prefix}-.*"])
    strom = members("strom", broker.bootstrap, group, f"{prefix}-.*")
    ms = [confluent, strom]
    wait_for(lambda: sum(len(m.assignment) for m in ms) == 2, 60, "the first topic")
    create_topic(broker.bootstrap, f"{prefix}-2", 2)
    produce_acked(broker.bootstrap, f"{prefix}-2", [(p, None, b"x") for p in range(2)])
    wait_for(lambda: sum(len(m.assignment) for m in ms) == 4, 60, "the second topic")
    wait_for(
        lambda: (
            {(t, p) for m in ms for t, p, _ in list(m.delivered)}
            == {(f"{prefix}-2", 0), (f"{prefix}-2", 1)}
        ),
        30,
        "its records",
    )
    assert not [e for m in ms for e in m.errors]


def test_range_assignor_chosen_by_the_members(
    broker: BrokerProcess, topic6: str, members: Any
) -> None:
    group = group_name()
    ms = [members("strom", broker.bootstrap, group, [topic6], assignor="range") for _ in range(2)]
    wait_for(lambda: balanced(ms, topic6), 60, "range group", stable_s=1.0)
    parts = sorted(sorted(p for _, p in m.assignment) for m in ms)
    assert parts == [[0, 1, 2], [3, 4, 5]]
    assert describe(broker.bootstrap, group).partition_assignor == "range"


def test_blocking_client_joins_with_the_consumer_protocol(
    broker: BrokerProcess, topic6: str, members: Any
) -> None:
    group = group_name()
    ms = [members("strom-blocking", broker.bootstrap, group, [topic6]) for _ in range(2)]
    wait_for(lambda: balanced(ms, topic6), 60, "blocking group", stable_s=1.0)
    assert not [e for m in ms for e in m.errors]


def test_broker_restart_keeps_the_group(broker_factory: Any, topic_name: str, members: Any) -> None:
    broker = broker_factory(OVERRIDES)
    create_topic(broker.bootstrap, topic_name, PARTITIONS)
    group = group_name()
    ms = [
        members("confluent", broker.bootstrap, group, [topic_name], commit=True) for _ in range(2)
    ]
    wait_for(lambda: balanced(ms, topic_name), 60, "group", stable_s=1.0)
    produce_acked(broker.bootstrap, topic_name, [(p, None, b"a") for p in range(PARTITIONS)])
    wait_for(lambda: sum(len(m.committed) for m in ms) == PARTITIONS, 30, "commits")
    before = describe(broker.bootstrap, group)
    broker.restart()
    after = describe(broker.bootstrap, group)
    assert after.group_type == "Consumer" and after.group_epoch >= before.group_epoch
    assert {m.member_id for m in after.members} == {m.member_id for m in before.members}
    produce_acked(broker.bootstrap, topic_name, [(p, None, b"b") for p in range(PARTITIONS)])
    wait_for(lambda: sum(len(m.committed) for m in ms) == 2 * PARTITIONS, 60, "after restart")
    wait_for(lambda: balanced(ms, topic_name), 30, "group after restart", stable_s=1.0)
    deliveries = [d for m in ms for d in m.delivered]
    assert len(deliveries) == len(set(deliveries)) == 2 * PARTITIONS


# -- online migration ---------------------------------------------------------------------


@pytest.mark.parametrize("classic_kind", ["kafka-python", "aiokafka"])
def test_mixed_classic_and_consumer_members_under_migration(
    broker: BrokerProcess, topic6: str, members: Any, classic_kind: str
) -> None:
    from tests.integration.test_groups import GroupMember

    group = group_name()
    total = 300
    produce_acked(broker.bootstrap, topic6, [(i % PARTITIONS, None, b"v") for i in range(total)])
    classic = [GroupMember(classic_kind, broker.bootstrap, group, topic6) for _ in range(2)]
    for m in classic:
        m.start()
    try:
        wait_for(lambda: covers_exactly(classic, topic6, PARTITIONS), 60, "classic group", 1.0)
        upgrade = members("confluent", broker.bootstrap, group, [topic6])  # upgrades the group
        everyone = [*classic, upgrade]
        wait_for(lambda: covers_exactly(everyone, topic6, PARTITIONS), 60, "mixed group", 1.0)
        d = describe(broker.bootstrap, group)
        assert d.group_type == "Consumer" and len(d.members) == 3
        assert sorted(m.upgraded for m in d.members) == [False, False, True]
        upgrade.stop()  # the last consumer-protocol member: back to a classic group
        wait_for(lambda: covers_exactly(classic, topic6, PARTITIONS), 60, "classic again", 1.0)
        assert describe(broker.bootstrap, group).group_type == "Classic"
        seen = {(p, o) for m in classic for p, o, _ in list(m.delivered)}
        seen |= {(p, o) for _, p, o in upgrade.delivered}
        assert len(seen) == total
        assert not [e for m in classic for e in m.errors] and not upgrade.errors
    finally:
        for m in classic:
            m.stop()


# -- the APIs over the raw protocol -------------------------------------------------------


def _send(bootstrap: str, *requests: Any, version: int | None = None) -> list[Any]:
    from strom.net.connection import BrokerConnection

    async def go() -> list[Any]:
        host, port = bootstrap.rsplit(":", 1)
        conn = await BrokerConnection.open(host, int(port))
        try:
            return [await conn.send(r, version=version) for r in requests]
        finally:
            await conn.close()

    return asyncio.run(go())


def test_a_consumer_that_only_assigns_commits_again_and_again(
    broker: BrokerProcess, topic6: str
) -> None:
    # librdkafka's KIP-848 consumer commits without subscribing with generation -1 and a
    # member id of its own; the first commit makes an empty classic group, which must take
    # the next ones too (Kafka's validateOffsetCommit; confluent-kafka-python's own suite
    # does this in test_consumer_topicpartition_metadata)
    from confluent_kafka import Consumer
    from confluent_kafka import TopicPartition as CkTopicPartition

    group = group_name()
    conf = {"bootstrap.servers": broker.bootstrap, "group.id": group}
    consumer = Consumer({**conf, "group.protocol": "consumer"})
    try:
        for offset in (1, 2, 3):
            [committed] = consumer.commit(
                offsets=[CkTopicPartition(topic6, 0, offset)], asynchronous=False
            )
            assert committed.error is None, committed.error
        [got] = consumer.committed([CkTopicPartition(topic6, 0)], timeout=10)
        assert got.offset == 3
    finally:
        consumer.close()


def test_heartbeat_and_describe_errors(broker: BrokerProcess) -> None:
    from strom.protocol.errors import ErrorCode
    from strom.protocol.generated.consumer_group_describe import ConsumerGroupDescribeRequest
    from strom.protocol.generated.consumer_group_heartbeat import ConsumerGroupHeartbeatRequest
    from strom.protocol.generated.find_coordinator import FindCoordinatorRequest

    group = f"nope-{uuid.uuid4().hex[:6]}"
    wait_for(
        lambda: (
            _send(broker.bootstrap, FindCoordinatorRequest(key=group), version=3)[0].error_code == 0
        ),
        30,
        "the group coordinator",
    )
    hb, described = _send(
        broker.bootstrap,
        ConsumerGroupHeartbeatRequest(group_id="", member_id="m", member_epoch=0),
        ConsumerGroupDescribeRequest(group_ids=["", group]),
        version=1,
    )
    assert hb.error_code == ErrorCode.INVALID_GROUP_ID
    assert [g.error_code for g in described.groups] == [
        ErrorCode.INVALID_GROUP_ID,
        ErrorCode.GROUP_ID_NOT_FOUND,
    ]


def test_the_consumer_protocol_can_be_switched_off(broker_factory: Any) -> None:
    from strom.protocol.errors import ErrorCode
    from strom.protocol.generated.consumer_group_heartbeat import ConsumerGroupHeartbeatRequest

    broker = broker_factory({**OVERRIDES, "group.coordinator.rebalance.protocols": "classic"})
    request = ConsumerGroupHeartbeatRequest(
        group_id="g", member_id="m", member_epoch=0, rebalance_timeout_ms=1000,
        subscribed_topic_names=["t"], topic_partitions=[],
    )  # fmt: skip
    (resp,) = _send(broker.bootstrap, request, version=1)
    assert resp.error_code == ErrorCode.UNSUPPORTED_VERSION
    # and ApiVersions stops advertising its APIs, as Kafka's ApiVersionManager does, so
    # clients fall back to the classic protocol instead of being refused
    from strom.protocol.generated.api_versions import ApiVersionsRequest

    (versions,) = _send(broker.bootstrap, ApiVersionsRequest(), version=3)
    advertised = {k.api_key for k in versions.api_keys}
    assert advertised.isdisjoint({68, 69}) and {0, 1, 11} <= advertised
    (default,) = _send(_default_broker(broker_factory), ApiVersionsRequest(), version=3)
    assert {68, 69} <= {k.api_key for k in default.api_keys}


def _default_broker(broker_factory: Any) -> str:
    return str(broker_factory(OVERRIDES).bootstrap)
