"""Consumer groups against a real broker: confluent-kafka, kafka-python and aiokafka.

Each GroupMember polls in its own thread and records its assignment, the records
it was given and the offsets it committed synchronously. Raw-protocol checks use
strom's own connection class.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from strom.protocol.frame import RequestHeader, decode_response, encode_request
from strom.testing.broker import BrokerProcess
from strom.testing.kafka import create_topic, produce_acked

Partition = tuple[str, int]
KINDS = ("confluent", "kafka-python", "aiokafka")


class GroupMember(threading.Thread):
    def __init__(
        self,
        kind: str,
        bootstrap: str,
        group: str,
        topic: str,
        *,
        commit: bool = False,
        session_ms: int = 6000,
        strategy: str = "range,roundrobin",
        instance_id: str | None = None,
        reset: str = "earliest",
    ) -> None:
        super().__init__(daemon=True)
        self.kind, self.bootstrap, self.group, self.topic = kind, bootstrap, group, topic
        self.commit, self.session_ms, self.strategy = commit, session_ms, strategy
        self.instance_id, self.reset = instance_id, reset
        self.assignment: frozenset[Partition] = frozenset()
        self.delivered: list[tuple[int, int, bytes]] = []  # (partition, offset, value)
        self.committed: list[tuple[int, int]] = []
        self.assign_count = 0
        self.revoke_count = 0  # partitions revoked by a rebalance (confluent members)
        self.errors: list[str] = []
        self._stop_event = threading.Event()
        self.lock = threading.Lock()

    def stop(self) -> None:
        self._stop_event.set()
        self.join(30)

    def run(self) -> None:
        try:
            {
                "confluent": self._confluent,
                "kafka-python": self._kafka_python,
                "aiokafka": lambda: asyncio.run(self._aiokafka()),
            }[self.kind]()
        except Exception as e:  # reported by the test
            self.errors.append(repr(e))

    def _set_assignment(self, parts: Any) -> None:
        new = frozenset((p.topic, p.partition) for p in parts)
        with self.lock:
            if new != self.assignment:
                self.assign_count += 1
            self.assignment = new

    def _on_revoke(self, consumer: Any, parts: Any) -> None:
        with self.lock:
            self.revoke_count += 1

    def _record(self, partition: int, offset: int, value: bytes) -> None:
        with self.lock:
            self.delivered.append((partition, offset, value))

    def _confluent(self) -> None:
        from confluent_kafka import Consumer

        conf: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap,
            "group.id": self.group,
            "auto.offset.reset": self.reset,
            "enable.auto.commit": False,
            "session.timeout.ms": self.session_ms,
            "heartbeat.interval.ms": 300,
            "partition.assignment.strategy": self.strategy,
        }
        if self.instance_id is not None:
            conf["group.instance.id"] = self.instance_id
        c = Consumer(conf)
        c.subscribe([self.topic], on_revoke=self._on_revoke)
        try:
            while not self._stop_event.is_set():
                msg = c.poll(0.05)
                self._set_assignment(c.assignment())
                if msg is None:
                    continue
                if msg.error():
                    self.errors.append(str(msg.error()))
                    continue
                self._record(msg.partition(), msg.offset(), msg.value())
                if self.commit:
                    try:
                        c.commit(msg, asynchronous=False)
                    except Exception:
                        continue
                    with self.lock:
                        self.committed.append((msg.partition(), msg.offset()))
        finally:
            c.close()

    def _kafka_python(self) -> None:
        from kafka import KafkaConsumer
        from kafka.structs import OffsetAndMetadata

        c = KafkaConsumer(
            self.topic,
            bootstrap_servers=self.bootstrap,
            group_id=self.group,
            auto_offset_reset=self.reset,
            enable_auto_commit=False,
            session_timeout_ms=self.session_ms,
            heartbeat_interval_ms=300,
        )
        try:
            while not self._stop_event.is_set():
                batches = c.poll(timeout_ms=50)
                self._set_assignment(c.assignment())
                for tp, records in batches.items():
                    for r in records:
                        self._record(tp.partition, r.offset, r.value)
                        if self.commit:
                            c.commit({tp: OffsetAndMetadata(r.offset + 1, "", -1)})
                            with self.lock:
                                self.committed.append((tp.partition, r.offset))
        finally:
            c.close()

    async def _aiokafka(self) -> None:
        from aiokafka import AIOKafkaConsumer

        c = AIOKafkaConsumer(
            self.topic,
            bootstrap_servers=self.bootstrap,
            group_id=self.group,
            auto_offset_reset=self.reset,
            enable_auto_commit=False,
            session_timeout_ms=self.session_ms,
            heartbeat_interval_ms=300,
        )
        await c.start()
        try:
            while not self._stop_event.is_set():
                batches = await c.getmany(timeout_ms=50)
                self._set_assignment(c.assignment())
                for tp, records in batches.items():
                    for r in records:
                        self._record(tp.partition, r.offset, r.value)
        finally:
            await c.stop()


def wait_for(cond: Callable[[], bool], timeout_s: float, what: str, stable_s: float = 0.0) -> None:
    """Wait until ``cond()`` holds (continuously for ``stable_s``)."""
    deadline = time.monotonic() + timeout_s
    since: float | None = None
    while time.monotonic() < deadline:
        if cond():
            since = since or time.monotonic()
            if time.monotonic() - since >= stable_s:
                return
        else:
            since = None
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def state_of(members: list[GroupMember]) -> str:
    """Assignments and errors of each member, for failure messages."""
    return "; ".join(
        f"{m.kind}: {sorted(p for _, p in m.assignment)} errors={m.errors[:3]}" for m in members
    )


def covers_exactly(members: list[GroupMember], topic: str, partitions: int) -> bool:
    """Every partition owned by exactly one member, and every member that can own one does."""
    owned = [p for m in members for p in m.assignment]
    busy = sum(1 for m in members if m.assignment)
    exact = sorted(owned) == [(topic, p) for p in range(partitions)]
    return exact and busy == min(len(members), partitions)


# -- fixtures -----------------------------------------------------------------------------


pytestmark = pytest.mark.integration

OVERRIDES = {
    # Not 0: kafka-python 3.0.12 can hang for good (no more requests, no heartbeats) after
    # a SyncGroup when generations follow each other within milliseconds, as happens
    # when members join one by one with no initial delay (seen in broker request logs:
    # every request answered, then silence from that client). A short delay lets the
    # members join one generation, as they do with Kafka's default of 3 s.
    "group.initial.rebalance.delay.ms": "500",
    "group.min.session.timeout.ms": "1000",
    "offsets.topic.num.partitions": "5",
}
PARTITIONS = 6


@pytest.fixture(scope="module")
def broker_overrides() -> dict[str, str]:
    return dict(OVERRIDES)


@pytest.fixture
def topic6(broker: BrokerProcess, topic_name: str) -> str:
    create_topic(broker.bootstrap, topic_name, PARTITIONS)
    return topic_name


@pytest.fixture
def members() -> Any:
    started: list[GroupMember] = []

    def start(*args: Any, **kwargs: Any) -> GroupMember:
        m = GroupMember(*args, **kwargs)
        m.start()
        started.append(m)
        return m

    yield start
    for m in started:
        if m.is_alive():
            m.stop()


def group_name() -> str:
    return f"g-{uuid.uuid4().hex[:8]}"


def produce_spread(bootstrap: str, topic: str, n: int, tag: str = "v") -> None:
    records = [(i % PARTITIONS, None, f"{tag}{i}".encode()) for i in range(n)]
    produce_acked(bootstrap, topic, records)


def owned(ms: list[GroupMember]) -> list[frozenset[Partition]]:
    return [m.assignment for m in ms]


# -- membership ---------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 3, 6, 8])
def test_confluent_group_sizes(broker: BrokerProcess, topic6: str, members: Any, n: int) -> None:
    group = group_name()
    ms = [members("confluent", broker.bootstrap, group, topic6) for _ in range(n)]
    wait_for(lambda: covers_exactly(ms, topic6, PARTITIONS), 60, f"{n} members", stable_s=1.0)
    sizes = sorted(len(a) for a in owned(ms))
    assert sum(sizes) == PARTITIONS
    assert sizes.count(0) == max(0, n - PARTITIONS)
    assert max(sizes) - min(sizes) <= PARTITIONS  # range may be uneven; ownership is exclusive


@pytest.mark.parametrize("kind", ["kafka-python", "aiokafka"])
@pytest.mark.parametrize("n", [1, 3, 8])
def test_python_clients_group_sizes(
    broker: BrokerProcess, topic6: str, members: Any, kind: str, n: int
) -> None:
    group = group_name()
    ms = [members(kind, broker.bootstrap, group, topic6) for _ in range(n)]
    try:
        wait_for(lambda: covers_exactly(ms, topic6, PARTITIONS), 90, f"{n} {kind}", stable_s=1.0)
    except AssertionError as e:
        raise AssertionError(f"{e}: {state_of(ms)}") from None
    assert [len(a) for a in owned(ms)].count(0) == max(0, n - PARTITIONS)
    assert not [e for m in ms for e in m.errors]


def test_three_client_libraries_in_one_group(
    broker: BrokerProcess, topic6: str, members: Any
) -> None:
    group = group_name()
    ms = [members(kind, broker.bootstrap, group, topic6) for kind in KINDS]
    wait_for(lambda: covers_exactly(ms, topic6, PARTITIONS), 90, "mixed group", stable_s=1.0)
    assert all(len(a) == 2 for a in owned(ms))  # roundrobin: the one protocol all three offer
    assert not [e for m in ms for e in m.errors]


@pytest.mark.parametrize("strategy", ["range", "roundrobin", "cooperative-sticky"])
def test_confluent_assignment_strategies(
    broker: BrokerProcess, topic6: str, members: Any, strategy: str
) -> None:
    group = group_name()
    ms = [
        members("confluent", broker.bootstrap, group, topic6, strategy=strategy) for _ in range(3)
    ]
    wait_for(lambda: covers_exactly(ms, topic6, PARTITIONS), 60, strategy, stable_s=1.0)
    assert sorted(len(a) for a in owned(ms)) == [2, 2, 2]
    ms[0].stop()
    wait_for(lambda: covers_exactly(ms[1:], topic6, PARTITIONS), 30, "after leave", stable_s=0.5)


def test_clean_leave_rebalances_immediately(
    broker: BrokerProcess, topic6: str, members: Any
) -> None:
    group = group_name()
    a = members("confluent", broker.bootstrap, group, topic6, session_ms=30_000)
    b = members("confluent", broker.bootstrap, group, topic6, session_ms=30_000)
    wait_for(lambda: covers_exactly([a, b], topic6, PARTITIONS), 60, "two members", 0.5)
    started = time.monotonic()
    b.stop()
    wait_for(lambda: len(a.assignment) == PARTITIONS, 20, "takeover after leave")
    assert time.monotonic() - started < 10  # far below the 30 s session timeout


def test_a_group_is_deletable_as_soon_as_its_last_member_is_gone(
    broker: BrokerProcess, topic6: str
) -> None:
    # Kafka empties a group the moment its last member leaves or its session expires (the
    # rebalance that starts then completes at once). librdkafka's own admin test closes
    # static members (which send no LeaveGroup), sleeps their 6 s session timeout and
    # deletes the groups: the DeleteGroups must not see the group still rebalancing.
    from confluent_kafka import Consumer
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    produce_acked(broker.bootstrap, topic6, [(p, None, b"x") for p in range(PARTITIONS)])
    for static in (False, True):
        group = group_name()
        conf = {
            "bootstrap.servers": broker.bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": True,
            "auto.commit.interval.ms": 60_000,  # only the commit at close
        }
        if static:
            conf |= {"group.instance.id": "the-one", "session.timeout.ms": 6000}
        consumer = Consumer(conf)
        consumer.subscribe([topic6])
        got = 0

        def read(c: Any = consumer) -> bool:
            nonlocal got
            msg = c.poll(0.2)
            got += msg is not None and msg.error() is None
            return got == PARTITIONS

        wait_for(read, 30, "the records")
        # its last request, the commit of what it read, is answered before close returns:
        # the session of a static member ends session.timeout.ms after it
        consumer.close()
        if static:
            time.sleep(6.0)  # the session timeout: the member is due to expire now
        [deleted] = admin.delete_consumer_groups([group]).values()
        deleted.result(10)


CHILD = """
import sys, time
from confluent_kafka import Consumer
c = Consumer({"bootstrap.servers": sys.argv[1], "group.id": sys.argv[2],
              "session.timeout.ms": 3000, "heartbeat.interval.ms": 300})
c.subscribe([sys.argv[3]])
while True:
    c.poll(0.1)
    if c.assignment():
        print("assigned", flush=True)
"""


def test_killed_member_loses_partitions_after_session_timeout(
    broker: BrokerProcess, topic6: str, members: Any
) -> None:
    group = group_name()
    a = members("confluent", broker.bootstrap, group, topic6, session_ms=3000)
    wait_for(lambda: len(a.assignment) == PARTITIONS, 60, "first member")
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, broker.bootstrap, group, topic6],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == b"assigned"
        wait_for(lambda: 0 < len(a.assignment) < PARTITIONS, 30, "shared", stable_s=0.5)
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        killed_at = time.monotonic()
        wait_for(lambda: len(a.assignment) == PARTITIONS, 30, "takeover after session timeout")
        assert time.monotonic() - killed_at >= 2.0  # waited for the 3 s session to run out
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if child.stdout is not None:
            child.stdout.close()


def test_sync_committed_records_never_redelivered(
    broker: BrokerProcess, topic6: str, members: Any
) -> None:
    group = group_name()
    total = 600
    produce_spread(broker.bootstrap, topic6, total)
    ms = [members("confluent", broker.bootstrap, group, topic6, commit=True)]
    wait_for(lambda: len(ms[0].committed) >= 50, 60, "first commits")
    ms.append(members("confluent", broker.bootstrap, group, topic6, commit=True))
    wait_for(lambda: sum(len(m.committed) for m in ms) >= 250, 60, "more commits")
    ms[0].stop()
    ms.append(members("kafka-python", broker.bootstrap, group, topic6, commit=True))

    def all_consumed() -> bool:
        seen = {(p, o) for m in ms for p, o, _ in list(m.delivered)}
        return len(seen) == total

    wait_for(all_consumed, 90, "every record consumed")
    for m in ms:
        m.stop()
    committed = [c for m in ms for c in m.committed]
    assert len(committed) == len(set(committed))
    deliveries = [(p, o) for m in ms for p, o, _ in m.delivered]
    for c in committed:
        assert deliveries.count(c) == 1, f"{c} was committed and delivered again"


def test_static_member_restart_without_rebalance(
    broker: BrokerProcess, topic6: str, members: Any
) -> None:
    group = group_name()
    a = members("confluent", broker.bootstrap, group, topic6, instance_id="a", session_ms=20_000)
    b = members("confluent", broker.bootstrap, group, topic6, instance_id="b", session_ms=20_000)
    wait_for(lambda: covers_exactly([a, b], topic6, PARTITIONS), 60, "static group", 1.0)
    before, b_assigns, b_revokes = a.assignment, b.assign_count, b.revoke_count
    a.stop()  # a static member does not leave on close
    time.sleep(0.5)
    a2 = members("confluent", broker.bootstrap, group, topic6, instance_id="a", session_ms=20_000)
    wait_for(lambda: a2.assignment == before, 30, "same partitions back")
    # A rebalance would have made b revoke its partitions and rejoin before a2 could get
    # any assignment (the group waits for every member), so b's count is final here.
    assert b.revoke_count == b_revokes and b.assign_count == b_assigns
    assert covers_exactly([a2, b], topic6, PARTITIONS)


# -- offsets --------------------------------------------------------------------------------


def _commit_with_metadata(broker: BrokerProcess, group: str, topic: str) -> None:
    from strom.protocol.generated.find_coordinator import FindCoordinatorRequest
    from strom.protocol.generated.offset_commit import OffsetCommitRequest as R

    parts = [
        R.OffsetCommitRequestPartition(p, 10 + p, committed_metadata=f"meta-{p} ✓")
        for p in range(PARTITIONS)
    ]
    commit = R(group_id=group, topics=[R.OffsetCommitRequestTopic(topic, parts)])
    _, resp = raw(broker, (FindCoordinatorRequest(key=group), 3), (commit, 8))
    assert [p.error_code for p in resp.topics[0].partitions] == [0] * PARTITIONS


class RawConnection:
    """One plain connection speaking strom's codec (no negotiation; the test picks versions)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer, self.correlation_id = reader, writer, 0

    @classmethod
    async def open(cls, bootstrap: str) -> RawConnection:
        host, port = bootstrap.split(":")
        return cls(*await asyncio.open_connection(host, int(port)))

    async def send(self, request: Any, version: int) -> Any:
        self.correlation_id += 1
        header = RequestHeader(request.API_KEY, version, self.correlation_id, "raw-test")
        self.writer.write(encode_request(header, request))
        size = int.from_bytes(await self.reader.readexactly(4), "big")
        frame = await self.reader.readexactly(size)
        correlation_id, response = decode_response(request.API_KEY, version, frame)
        assert correlation_id == self.correlation_id
        return response

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


async def _raw(bootstrap: str, requests: list[tuple[Any, int]]) -> list[Any]:
    conn = await RawConnection.open(bootstrap)
    try:
        return [await conn.send(req, v) for req, v in requests]
    finally:
        await conn.close()


def raw(broker: BrokerProcess, *requests: tuple[Any, int]) -> list[Any]:
    return asyncio.run(_raw(broker.bootstrap, list(requests)))


def fetch_committed(broker: BrokerProcess, group: str, topic: str) -> dict[int, tuple[int, str]]:
    from strom.protocol.generated.offset_fetch import OffsetFetchRequest

    req = OffsetFetchRequest(
        group_id=group,
        topics=[OffsetFetchRequest.OffsetFetchRequestTopic(topic, list(range(PARTITIONS)))],
    )
    [resp] = raw(broker, (req, 7))
    assert resp.error_code == 0
    return {
        p.partition_index: (p.committed_offset, p.metadata)
        for t in resp.topics
        for p in t.partitions
    }


@pytest.mark.parametrize("clean", [True, False], ids=["clean", "kill-9"])
def test_committed_offsets_and_metadata_survive_restart(
    broker_factory: Any, topic_name: str, clean: bool
) -> None:
    b = broker_factory(OVERRIDES)
    create_topic(b.bootstrap, topic_name, PARTITIONS)
    group = group_name()
    _commit_with_metadata(b, group, topic_name)
    expected = {p: (10 + p, f"meta-{p} ✓") for p in range(PARTITIONS)}
    assert fetch_committed(b, group, topic_name) == expected
    b.restart(clean=clean)
    assert fetch_committed(b, group, topic_name) == expected
    b.restart(clean=clean)
    assert fetch_committed(b, group, topic_name) == expected


def test_group_resumes_from_committed_offsets_after_restart(
    broker_factory: Any, topic_name: str, members: Any
) -> None:
    b = broker_factory(OVERRIDES)
    create_topic(b.bootstrap, topic_name, PARTITIONS)
    produce_spread(b.bootstrap, topic_name, 60)
    group = group_name()
    m = members("confluent", b.bootstrap, group, topic_name, commit=True)
    wait_for(lambda: len(m.committed) == 60, 60, "all committed")
    m.stop()
    b.restart(clean=False)
    produce_spread(b.bootstrap, topic_name, 12, tag="after")
    m2 = members("confluent", b.bootstrap, group, topic_name)
    after = {f"after{i}".encode() for i in range(12)}
    wait_for(lambda: after <= {v for _, _, v in m2.delivered}, 60, "new records")
    # Had the committed offsets been lost, old records would come first in each
    # partition: everything before the new records has been delivered by now.
    assert sorted(v for _, _, v in m2.delivered) == sorted(after)


@pytest.mark.parametrize("kind", KINDS)
def test_auto_offset_reset_earliest_and_latest(
    broker: BrokerProcess, topic6: str, members: Any, kind: str
) -> None:
    produce_spread(broker.bootstrap, topic6, 12, tag="old")
    early = members(kind, broker.bootstrap, group_name(), topic6, reset="earliest")
    wait_for(lambda: len(early.delivered) == 12, 60, "earliest reads all")
    late = members(kind, broker.bootstrap, group_name(), topic6, reset="latest")
    wait_for(lambda: len(late.assignment) == PARTITIONS, 60, "latest assigned", stable_s=2.0)
    produce_spread(broker.bootstrap, topic6, 6, tag="new")
    wait_for(lambda: len(late.delivered) == 6, 60, "latest reads new only")
    assert all(v.startswith(b"new") for _, _, v in late.delivered)


def test_auto_offset_reset_none_is_an_error(broker: BrokerProcess, topic6: str) -> None:
    from confluent_kafka import Consumer

    produce_spread(broker.bootstrap, topic6, 6)
    c = Consumer(
        {
            "bootstrap.servers": broker.bootstrap,
            "group.id": group_name(),
            "auto.offset.reset": "error",
        }
    )
    c.subscribe([topic6])
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            msg = c.poll(0.2)
            if msg is not None:
                assert msg.error() is not None, "a record was delivered without an offset"
                assert "offset" in str(msg.error()).lower()
                return
        raise AssertionError("no auto.offset.reset error")
    finally:
        c.close()


# -- bad input over the raw protocol ----------------------------------------------------------


def test_bad_input_gets_kafkas_error_codes(broker: BrokerProcess, topic6: str) -> None:
    from strom.protocol.generated.delete_groups import DeleteGroupsRequest
    from strom.protocol.generated.describe_groups import DescribeGroupsRequest
    from strom.protocol.generated.find_coordinator import FindCoordinatorRequest
    from strom.protocol.generated.heartbeat import HeartbeatRequest
    from strom.protocol.generated.join_group import JoinGroupRequest
    from strom.protocol.generated.offset_commit import OffsetCommitRequest
    from strom.protocol.generated.sync_group import SyncGroupRequest

    group = group_name()
    proto = [JoinGroupRequest.JoinGroupRequestProtocol("range", b"\x00\x00\x00\x00\x00\x00")]

    def join(member: str, **kw: Any) -> JoinGroupRequest:
        return JoinGroupRequest(
            group_id=group,
            session_timeout_ms=10_000,
            rebalance_timeout_ms=10_000,
            member_id=member,
            protocol_type="consumer",
            protocols=proto,
            **kw,
        )

    def commit(meta: str, topic: str = topic6, gen: int = -1, member: str = "") -> Any:
        P = OffsetCommitRequest.OffsetCommitRequestPartition
        return OffsetCommitRequest(
            group_id=group,
            generation_id_or_member_epoch=gen,
            member_id=member,
            topics=[
                OffsetCommitRequest.OffsetCommitRequestTopic(
                    topic, [P(0, 5, committed_metadata=meta)]
                )
            ],
        )

    [found, hb, unknown_join, first] = raw(
        broker,
        (FindCoordinatorRequest(key_type=0, coordinator_keys=[group, "x", ""]), 4),
        (HeartbeatRequest(group, 1, "nobody"), 4),
        (join("nobody"), 5),
        (join(""), 5),
    )
    assert [c.error_code for c in found.coordinators] == [0, 0, 0]
    assert hb.error_code == 25 and unknown_join.error_code == 25  # UNKNOWN_MEMBER_ID
    assert first.error_code == 79 and first.member_id  # MEMBER_ID_REQUIRED
    [txn, joined, bad_gen, synced, too_big, no_topic, ok, non_empty, missing, dead] = raw(
        broker,
        (FindCoordinatorRequest(key="t", key_type=1), 3),
        (join(first.member_id), 5),
        (SyncGroupRequest(group_id=group, generation_id=99, member_id=first.member_id), 3),
        (SyncGroupRequest(group_id=group, generation_id=1, member_id=first.member_id), 3),
        (commit("x" * 5000, gen=1, member=first.member_id), 8),
        (commit("m", topic="no-such-topic", gen=1, member=first.member_id), 8),
        (commit("m", gen=1, member=first.member_id), 8),
        (DeleteGroupsRequest([group]), 2),
        (DeleteGroupsRequest(["never-" + group]), 2),
        (DescribeGroupsRequest(["never-" + group]), 5),
    )
    assert txn.error_code in (0, 15)  # key type 1 belongs to the transaction coordinator
    assert joined.error_code == 0 and joined.generation_id == 1 and joined.leader == first.member_id
    assert bad_gen.error_code == 22  # ILLEGAL_GENERATION
    assert synced.error_code == 0
    assert too_big.topics[0].partitions[0].error_code == 12  # OFFSET_METADATA_TOO_LARGE
    assert no_topic.topics[0].partitions[0].error_code == 3  # UNKNOWN_TOPIC_OR_PARTITION
    assert ok.topics[0].partitions[0].error_code == 0
    assert non_empty.results[0].error_code == 68  # NON_EMPTY_GROUP
    assert missing.results[0].error_code == 69  # GROUP_ID_NOT_FOUND
    assert dead.groups[0].group_state == "Dead"


def test_a_thousand_members_join_with_max_size(broker_factory: Any, topic_name: str) -> None:
    from strom.protocol.generated.find_coordinator import FindCoordinatorRequest
    from strom.protocol.generated.heartbeat import HeartbeatRequest
    from strom.protocol.generated.join_group import JoinGroupRequest

    b = broker_factory(
        {**OVERRIDES, "group.max.size": "300", "group.initial.rebalance.delay.ms": "1500"}
    )
    create_topic(b.bootstrap, topic_name, PARTITIONS)
    proto = [JoinGroupRequest.JoinGroupRequestProtocol("range", b"meta")]

    def join(member: str) -> JoinGroupRequest:
        return JoinGroupRequest(
            group_id="big",
            session_timeout_ms=30_000,
            rebalance_timeout_ms=20_000,
            member_id=member,
            protocol_type="consumer",
            protocols=proto,
        )

    async def one() -> Any:
        conn = await RawConnection.open(b.bootstrap)
        try:
            first = await conn.send(join(""), 5)
            if first.error_code == 81:  # the group already formed at its maximum size
                return first
            assert first.error_code == 79
            return await conn.send(join(first.member_id), 5)
        finally:
            await conn.close()

    async def many() -> tuple[list[Any], float]:
        await _raw(b.bootstrap, [(FindCoordinatorRequest(key="big"), 3)])  # creates the topic
        tasks = [asyncio.create_task(one()) for _ in range(1000)]
        await asyncio.sleep(0.5)
        started = time.monotonic()
        other = await RawConnection.open(b.bootstrap)  # another group is not disturbed
        hb = await other.send(HeartbeatRequest("other", 1, "m"), 4)
        await other.close()
        assert hb.error_code == 25
        return await asyncio.gather(*tasks), time.monotonic() - started

    results, other_s = asyncio.run(many())
    assert other_s < 5
    codes = sorted(r.error_code for r in results)
    assert codes.count(0) == 300 and codes.count(81) == 700  # GROUP_MAX_SIZE_REACHED
    accepted = [r for r in results if r.error_code == 0]
    assert len({r.generation_id for r in accepted}) == 1
    leaders = [r for r in accepted if r.member_id == r.leader]
    assert len(leaders) == 1 and len(leaders[0].members) == 300
