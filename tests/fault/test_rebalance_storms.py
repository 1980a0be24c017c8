"""R10: rebalance storms. Three chained groups, each consuming one topic and
producing what it reads to the next (t1 -> g1 -> t2 -> g2 -> t3 -> g3 -> t4): g1 of
dynamic members with the range assignor, g2 of static members (group.instance.id)
with cooperative-sticky, g3 of static and dynamic members with range. Members join,
leave and restart (a static one with its instance id) every 1.5 s while
the brokers hosting the groups' coordinators are bounced (kill -9, then SIGTERM).
Each member commits synchronously after producing what it read; t1 is written
during the whole storm.

No live member is told UNKNOWN_MEMBER_ID (librdkafka's group log, commit errors),
no record is delivered again after a commit that covers it, and every record of t1
reaches t4 (at least once: a record read but not committed before a rebalance may
be copied twice). One UNKNOWN_MEMBER_ID is Kafka's answer too and is counted apart:
the SyncGroup of a member whose coordinator moved after its JoinGroup response. A
generation is stored when its leader syncs; a coordinator killed before that leaves
the next one the previous generation, which does not have the member's new id
(GroupCoordinator.validateCurrentMember: UNKNOWN_MEMBER_ID), and the member rejoins.

Short form: about 18 s of storm, 2 coordinator bounces; long form
(STROM_FAULT_LONG=1): 120 s, 6 bounces.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaException, Producer

from strom.protocol.generated.find_coordinator import FindCoordinatorRequest
from strom.testing import Cluster
from strom.testing.kafka import read_all
from strom.testing.wire import RawClient
from tests.fault.scenario import create_topic, pick, record_row
from tests.integration.test_cluster_coordinators import SETTINGS, bounce

pytestmark = [pytest.mark.integration, pytest.mark.fault, pytest.mark.usefixtures("require_strom")]

ClusterFactory = Callable[..., Cluster]
PARTITIONS = 4
RECORDS = 2000
GROUPS = {  # group: (source, target, assignor, static members?)
    "g1": ("t1", "t2", "range", (False, False, False)),
    "g2": ("t2", "t3", "cooperative-sticky", (True, True)),
    "g3": ("t3", "t4", "range", (True, False)),
}
UNKNOWN = ("UNKNOWN_MEMBER_ID", "Unknown member")


@dataclass
class Shared:
    committed: dict[tuple[str, int], int] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    unknown_after_failover: list[str] = field(default_factory=list)  # see the docstring
    group_log_lines: int = 0
    lines: list[str] = field(default_factory=list)
    commits: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class Member:
    def __init__(
        self, shared: Shared, bootstrap: str, prefix: str, group: str, name: str, static: bool
    ) -> None:
        self.shared, self.group, self.name = shared, group, name
        source, target, assignor, _ = GROUPS[group]
        self.source, self.target = f"{prefix}-{source}", f"{prefix}-{target}"
        self.log = logging.getLogger(f"r10.{name}")
        self.log.propagate = False
        self.log.setLevel(logging.DEBUG)
        self.log.addHandler(_Watch(self))
        conf = {
            "bootstrap.servers": bootstrap,
            "group.id": f"{prefix}-{group}",
            "partition.assignment.strategy": assignor,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 30000,
            "client.id": name,
            "debug": "cgrp",
            "logger": self.log,
        }
        if static:
            conf["group.instance.id"] = name
        self.conf = conf
        self.stop_event = threading.Event()
        self.closing = False
        self.awaiting_sync = False  # between a JoinGroup response and the SyncGroup's
        self.coordinator_moved = False  # ... and the group's coordinator changed since
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        consumer = Consumer(self.conf)
        plog = logging.getLogger(f"r10.{self.name}.producer")  # kept, not watched
        plog.propagate = False
        plog.setLevel(logging.DEBUG)
        plog.addHandler(_Keep(self.shared, f"{self.name} producer"))
        producer = Producer({"bootstrap.servers": self.conf["bootstrap.servers"],
                             "enable.idempotence": True, "linger.ms": 5,
                             "logger": plog})  # fmt: skip
        consumer.subscribe([self.source])
        try:
            while not self.stop_event.is_set():
                msgs = [m for m in consumer.consume(100, timeout=0.3) if m.error() is None]
                if msgs:
                    self._copy(consumer, producer, msgs)
        finally:
            self.closing = True
            producer.flush(30)
            consumer.close()

    def _copy(self, consumer: Consumer, producer: Producer, msgs: list) -> None:  # type: ignore[type-arg]
        s = self.shared
        with s.lock:
            for m in msgs:
                floor = s.committed.get((self.group, m.partition()), 0)
                if m.offset() < floor:
                    s.violations.append(
                        f"{self.name}: {self.source}-{m.partition()}@{m.offset()} after a "
                        f"commit at {floor}"
                    )
        for m in msgs:
            producer.produce(self.target, m.value(), m.key(), partition=m.partition())
        started = time.monotonic()
        left = producer.flush(30)
        took = time.monotonic() - started
        if took > 5:  # in the kept log: where a member's silence went
            with s.lock:
                s.lines.append(
                    f"{_stamp(time.time())} {self.name}: flush {took:.1f} s, {left} left"
                )
        try:
            parts = consumer.commit(asynchronous=False)
        except KafkaException as exc:
            if any(u in str(exc) for u in UNKNOWN) and not self.closing:
                with s.lock:
                    s.unknown.append(f"{self.name} commit: {exc}")
            return  # not committed: a redelivery is allowed
        with s.lock:
            s.commits += 1
            for tp in parts or []:
                if tp.error is None and tp.offset >= 0:
                    key = (self.group, tp.partition)
                    s.committed[key] = max(s.committed.get(key, 0), tp.offset)

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(60)


def _stamp(t: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t)) + f".{int(t * 1000) % 1000:03d}"


class _Keep(logging.Handler):
    """librdkafka's log lines of a member's producer, kept beside the group log."""

    def __init__(self, shared: Shared, who: str) -> None:
        super().__init__()
        self.shared, self.who = shared, who

    def emit(self, record: logging.LogRecord) -> None:
        with self.shared.lock:
            self.shared.lines.append(f"{_stamp(record.created)} {self.who}: {record.getMessage()}")


class _Watch(logging.Handler):
    """librdkafka's log lines of one member: UNKNOWN_MEMBER_ID while it is live."""

    def __init__(self, member: Member) -> None:
        super().__init__()
        self.member = member

    def emit(self, record: logging.LogRecord) -> None:
        line = record.getMessage()
        with self.member.shared.lock:
            self.member.shared.group_log_lines += 1
            stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
            self.member.shared.lines.append(f"{stamp}.{int(record.msecs):03d} {line}")
            m = self.member
            if "JoinGroup response:" in line:
                m.awaiting_sync, m.coordinator_moved = True, False
            elif "changing coordinator" in line and m.awaiting_sync:
                m.coordinator_moved = True
            sync = "SyncGroup response:" in line or "synchronization failed" in line
            if any(u in line for u in UNKNOWN) and not m.closing:
                lost_generation = sync and m.coordinator_moved
                shared = m.shared.unknown_after_failover if lost_generation else m.shared.unknown
                shared.append(f"{m.name}: {line[:300]}")
            if "synchronization failed" in line or "SyncGroup response: Success" in line:
                m.awaiting_sync = False


def feed(bootstrap: str, topic: str, seconds: float) -> None:
    """RECORDS records into ``topic``, spread over ``seconds``."""
    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5})
    started = time.monotonic()
    for i in range(RECORDS):
        p.produce(topic, b"r%06d" % i, partition=i % PARTITIONS)
        p.poll(0)
        time.sleep(max(0.0, started + seconds * i / RECORDS - time.monotonic()))
    assert p.flush(60) == 0


def coordinator(cluster: Cluster, group: str) -> int:
    with RawClient(cluster.bootstrap.split(",")[0]) as c:
        found = c.request(FindCoordinatorRequest(key_type=0, coordinator_keys=[group]), 4)
    return int(found.coordinators[0].node_id)


def test_r10_rebalance_storms_while_coordinators_are_bounced(
    cluster_factory: ClusterFactory, topic_name: str, tmp_path: Path
) -> None:
    cluster = cluster_factory(3, SETTINGS, session_timeout_ms=4000)
    prefix = topic_name[-30:]
    for t in ("t1", "t2", "t3", "t4"):
        create_topic(cluster, f"{prefix}-{t}", PARTITIONS)
    storm_s, bounces = pick(18.0, 120.0), pick(2, 6)
    feeder = threading.Thread(target=feed, args=(cluster.bootstrap, f"{prefix}-t1", storm_s))
    feeder.start()  # t1 fills during the whole storm
    shared, rng = Shared(), random.Random(10)
    serial = iter(range(1000))

    def member(group: str, static: bool, name: str | None = None) -> Member:
        name = name or f"{group}-{'s' if static else 'd'}{next(serial)}"
        return Member(shared, cluster.bootstrap, prefix, group, name, static)

    members = [member(g, s) for g, spec in GROUPS.items() for s in spec[3]]
    started = time.monotonic()
    next_bounce = 1
    try:
        while time.monotonic() - started < storm_s:
            time.sleep(1.5)
            _churn(rng, members, member)
            due = started + storm_s * next_bounce / (bounces + 1)
            if next_bounce <= bounces and time.monotonic() >= due:
                group = f"{prefix}-{rng.choice(list(GROUPS))}"
                bounce(cluster, coordinator(cluster, group), kill=next_bounce % 2 == 1)
                next_bounce += 1
        cluster.wait_for(
            "every record of t1 in t4",
            lambda: (
                len({r.value for r in read_all(cluster.bootstrap, f"{prefix}-t4", PARTITIONS)})
                == RECORDS
            ),
            timeout_s=120,
        )
    finally:
        feeder.join(60)
        for m in members:
            m.stop_event.set()
        for m in members:
            m.stop()
    print(
        f"R10: {len(members)} members at the end, {shared.commits} commits, "
        f"{shared.group_log_lines} group log lines watched, {next_bounce - 1} bounces"
    )
    (tmp_path / "group-log.txt").write_text("\n".join(shared.lines))
    assert shared.group_log_lines > 100 and shared.commits > 30  # the watch watched
    assert shared.violations == [], shared.violations[:10]
    assert shared.unknown == [], _with_context(shared)
    copied = read_all(cluster.bootstrap, f"{prefix}-t4", PARTITIONS)
    values = {r.value for r in copied}
    assert values == {b"r%06d" % i for i in range(RECORDS)}
    record_row(
        "R10 rebalance storms, 3 chained groups",
        records=RECORDS,
        copied_to_t4=len(copied),
        commits=shared.commits,
        redelivered_after_commit=len(shared.violations),
        unknown_member_id=len(shared.unknown),
        unknown_member_id_sync_after_failover=len(shared.unknown_after_failover),
        lost=RECORDS - len(values),
        coordinator_bounces=next_bounce - 1,
    )


def _with_context(shared: Shared) -> str:
    """The unknown-member lines, then each such member's last kept lines before its first
    one (its group log and its producer's), so that CI's output says what led to it."""
    out = list(shared.unknown[:10])
    for name in dict.fromkeys(u.split(" ")[0].rstrip(":") for u in shared.unknown):
        mine = [
            i for i, line in enumerate(shared.lines) if f"[{name}#" in line or f" {name}" in line
        ]
        first = next((i for i in mine if any(u in shared.lines[i] for u in UNKNOWN)), None)
        before = [shared.lines[i][:240] for i in mine if first is None or i <= first]
        out += [f"--- {name}, the last kept lines before:", *before[-40:]]
    return "\n".join(out)


def _churn(rng: random.Random, members: list[Member], member: Callable[..., Member]) -> None:
    """One membership change: a member joins, leaves, or (static) restarts."""
    victim = rng.choice(members)
    same_group = [m for m in members if m.group == victim.group]
    action = rng.choice(["join", "leave", "restart"])
    static = "group.instance.id" in victim.conf
    if action == "leave" and len(same_group) > 1:
        members.remove(victim)
        victim.stop()
    elif action == "restart" and static:
        members.remove(victim)
        victim.stop()
        members.append(member(victim.group, True, victim.name))
    else:
        members.append(member(victim.group, static))
