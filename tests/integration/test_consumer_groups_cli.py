"""``strom consumer-groups`` and the admin client's group API against a live broker,
with real confluent-kafka consumers forming the groups.

The tests skip themselves while the broker under test does not advertise
JoinGroup (strom's group coordinator not there yet), and run as soon as it does.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from strom.client.aio.connection import BrokerConnection
from strom.client.sync import Admin
from strom.common.types import TopicPartition
from strom.protocol.api_versions import ApiKey
from strom.testing.broker import BrokerProcess
from tests.integration.test_client_support import lacks

pytestmark = pytest.mark.integration

TIMEOUT_S = 60.0
OFFSETS_HEADER = ["GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG"]
OFFSETS_HEADER += ["CONSUMER-ID", "HOST", "CLIENT-ID"]


@pytest.fixture(scope="module")
def broker_overrides() -> dict[str, str]:
    return {
        "group.initial.rebalance.delay.ms": "0",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "5",
    }


async def _advertises_join_group(host: str, port: int) -> bool:
    conn = await BrokerConnection.open(host, port)
    try:
        return ApiKey.JOIN_GROUP in conn.versions
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def bootstrap(broker: BrokerProcess, broker_kind: str) -> str:
    host, port = broker.bootstrap.rsplit(":", 1)
    if not asyncio.run(_advertises_join_group(host, int(port))):
        lacks(broker_kind, "does not advertise JoinGroup: no group coordinator")
    return broker.bootstrap


@pytest.fixture(scope="module")
def admin(bootstrap: str) -> Iterator[Admin]:
    with Admin({"bootstrap.servers": bootstrap}) as a:
        yield a


def cg(bootstrap: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "strom", "consumer-groups", "--bootstrap-server", bootstrap, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )


def names() -> tuple[str, str]:
    tag = uuid.uuid4().hex[:8]
    return f"cg-topic-{tag}", f"cg-group-{tag}"


def create_topic_with(bootstrap: str, topic: str, counts: list[int]) -> None:
    """A topic with len(counts) partitions holding counts[p] records each (one per batch)."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

    admin = AdminClient({"bootstrap.servers": bootstrap})  # kept alive until the result
    new = NewTopic(topic, num_partitions=len(counts), replication_factor=1)
    admin.create_topics([new])[topic].result(TIMEOUT_S)
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "enable.idempotence": False})
    for partition, n in enumerate(counts):
        for i in range(n):
            p.produce(topic, value=f"{partition}-{i}".encode(), partition=partition)
            assert p.flush(TIMEOUT_S) == 0


def group_consumer(bootstrap: str, group: str, topic: str) -> Any:
    from confluent_kafka import Consumer

    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "client.id": f"client-{group}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "enable.partition.eof": False,
        }
    )
    c.subscribe([topic])
    return c


def wait_assigned(c: Any) -> None:
    """Poll until partitions are assigned (records polled meanwhile are dropped)."""
    deadline = time.monotonic() + TIMEOUT_S
    while not c.assignment():
        assert time.monotonic() < deadline, "no assignment"
        c.poll(0.2)


def consume_and_commit(c: Any, m: int) -> Counter[int]:
    """Consume ``m`` records, committing each synchronously; records per partition."""
    counts: Counter[int] = Counter()
    deadline = time.monotonic() + TIMEOUT_S
    while sum(counts.values()) < m:
        assert time.monotonic() < deadline, f"consumed only {sum(counts.values())} of {m}"
        msg = c.poll(0.5)
        if msg is None:
            continue
        assert msg.error() is None, msg.error()
        assert msg.offset() == counts[msg.partition()], "records arrive in order from 0"
        c.commit(message=msg, asynchronous=False)
        counts[msg.partition()] += 1
    return counts


def table(stdout: str) -> list[list[str]]:
    """Whitespace-split rows of a Kafka table (blank lines dropped)."""
    return [line.split() for line in stdout.splitlines() if line.strip()]


def columns(stdout: str) -> list[dict[str, str]]:
    """Rows of a Kafka table cut at the header's column starts (values may be empty)."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    names = lines[0].split()
    starts = [lines[0].index(f"{n} ") if n != names[-1] else lines[0].rindex(n) for n in names]
    bounds = [*starts[1:], None]
    return [
        {n: line[a:b].strip() for n, a, b in zip(names, starts, bounds, strict=True)}
        for line in lines[1:]
    ]


def stopped_group(bootstrap: str, counts: list[int], consume: int) -> tuple[str, str, Counter[int]]:
    topic, group = names()
    create_topic_with(bootstrap, topic, counts)
    c = group_consumer(bootstrap, group, topic)
    try:
        consumed = consume_and_commit(c, consume)
    finally:
        c.close()
    return topic, group, consumed


# -- describe and lag ----------------------------------------------------------


def test_describe_shows_exact_lag_for_active_and_stopped_group(bootstrap: str) -> None:
    topic, group = names()
    produced = [7, 11, 5]
    create_topic_with(bootstrap, topic, produced)
    c = group_consumer(bootstrap, group, topic)
    try:
        consumed = consume_and_commit(c, 12)
        member_id = c.memberid()
        r = cg(bootstrap, "--describe", "--group", group)
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith("\nGROUP ")
        assert table(r.stdout)[0] == OFFSETS_HEADER
        rows = columns(r.stdout)
        assert [(row["GROUP"], row["TOPIC"], row["PARTITION"]) for row in rows] == [
            (group, topic, str(p)) for p in range(3)
        ]
        for p, row in enumerate(rows):
            current = str(consumed[p]) if consumed[p] else "-"
            lag = str(produced[p] - consumed[p]) if consumed[p] else "-"
            assert [row["CURRENT-OFFSET"], row["LOG-END-OFFSET"], row["LAG"]] == [
                current,
                str(produced[p]),
                lag,
            ]
            assert row["CONSUMER-ID"] == member_id
            assert row["CLIENT-ID"] == f"client-{group}"
            assert row["HOST"] == "/127.0.0.1"  # Kafka's form: "/" + the client's address
        # Columns line up under their headers, as Kafka's %-Ns layout does.
        lines = [line for line in r.stdout.splitlines() if line.strip()]
        for name in ("LOG-END-OFFSET", "CONSUMER-ID", "HOST"):
            column = lines[0].index(name)
            assert all(line[column - 1] == " " for line in lines[1:])

        members = cg(bootstrap, "--describe", "--group", group, "--members")
        assert members.returncode == 0, members.stderr
        (member,) = columns(members.stdout)
        assert (member["GROUP"], member["CONSUMER-ID"], member["#PARTITIONS"]) == (
            group,
            member_id,
            "3",
        )

        state = cg(bootstrap, "--describe", "--group", group, "--state")
        assert state.returncode == 0, state.stderr
        assert table(state.stdout)[1][-2:] == ["Stable", "1"]
    finally:
        c.close()

    r = cg(bootstrap, "--describe", "--group", group, "--offsets")
    assert r.returncode == 0, r.stderr
    assert f"Consumer group '{group}' has no active members." in r.stderr
    rows = columns(r.stdout)
    committed = [p for p in range(3) if consumed[p]]
    assert [row["PARTITION"] for row in rows] == [str(p) for p in committed]
    for row in rows:
        p = int(row["PARTITION"])
        assert [row["CURRENT-OFFSET"], row["LOG-END-OFFSET"], row["LAG"]] == [
            str(consumed[p]),
            str(produced[p]),
            str(produced[p] - consumed[p]),
        ]
        assert [row["CONSUMER-ID"], row["HOST"], row["CLIENT-ID"]] == ["-", "-", "-"]


def test_admin_consumer_group_lag(bootstrap: str, admin: Admin) -> None:
    produced = [9, 4]
    _, group, consumed = stopped_group(bootstrap, produced, 6)
    lag = admin.consumer_group_lag(group)
    assert lag.description.state == "Empty"
    by_partition = {r.topic_partition.partition: r for r in lag.partitions}
    for p, n in consumed.items():
        row = by_partition[p]
        assert (row.committed_offset, row.log_end_offset, row.lag) == (
            n,
            produced[p],
            produced[p] - n,
        )
    offsets = admin.list_group_offsets(group)
    assert {tp.partition: om.offset for tp, om in offsets.items()} == dict(consumed)
    many = admin.list_groups_offsets({group: None, "cg-no-such-group": None})
    assert many[group] == offsets and many["cg-no-such-group"] == {}


def test_describe_unknown_group(bootstrap: str) -> None:
    r = cg(bootstrap, "--describe", "--group", "cg-never-existed")
    assert r.returncode == 1
    assert r.stderr.strip() == "Error: Consumer group 'cg-never-existed' does not exist."
    assert "Traceback" not in r.stderr


# -- list ----------------------------------------------------------------------


def test_list_with_state(bootstrap: str) -> None:
    topic, active = names()
    create_topic_with(bootstrap, topic, [3])
    _, idle, _ = stopped_group(bootstrap, [2], 1)
    c = group_consumer(bootstrap, active, topic)
    try:
        wait_assigned(c)
        listed = cg(bootstrap, "--list")
        assert listed.returncode == 0, listed.stderr
        assert {active, idle} <= set(listed.stdout.split())

        states = cg(bootstrap, "--list", "--state")
        assert states.returncode == 0, states.stderr
        rows = table(states.stdout)
        assert rows[0] == ["GROUP", "STATE"]
        assert [active, "Stable"] in rows and [idle, "Empty"] in rows

        stable = cg(bootstrap, "--list", "--state", "stable")
        assert [active, "Stable"] in table(stable.stdout)
        assert idle not in stable.stdout
        empty = cg(bootstrap, "--list", "--state", "Empty,dead")
        assert [idle, "Empty"] in table(empty.stdout) and active not in empty.stdout

        bad = cg(bootstrap, "--list", "--state", "sleepy")
        assert bad.returncode == 1 and bad.stderr.startswith("Error: Invalid state list 'sleepy'")
    finally:
        c.close()


# -- reset offsets -------------------------------------------------------------


def first_offsets(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    """The first offset a new member of ``group`` reads on each partition."""
    c = group_consumer(bootstrap, group, topic)
    seen: dict[int, int] = {}
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while len(seen) < partitions:
            assert time.monotonic() < deadline, f"only saw {seen}"
            msg = c.poll(0.5)
            if msg is not None and msg.error() is None:
                seen.setdefault(msg.partition(), msg.offset())
    finally:
        c.close()
    return seen


def test_reset_offsets_moves_a_stopped_group(bootstrap: str, admin: Admin) -> None:
    topic, group, consumed = stopped_group(bootstrap, [10, 10], 20)
    assert consumed == {0: 10, 1: 10}

    dry = cg(bootstrap, "--reset-offsets", "--group", group, "--topic", topic, "--to-earliest")
    assert dry.returncode == 0, dry.stderr
    assert table(dry.stdout) == [
        ["GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"],
        [group, topic, "0", "0"],
        [group, topic, "1", "0"],
    ]
    assert {tp.partition: o.offset for tp, o in admin.list_group_offsets(group).items()} == {
        0: 10,
        1: 10,
    }

    run = cg(
        bootstrap, "--reset-offsets", "--group", group, "--topic", f"{topic}:0",
        "--to-offset", "3", "--execute",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert table(run.stdout)[1] == [group, topic, "0", "3"]
    shift = cg(
        bootstrap, "--reset-offsets", "--group", group, "--topic", f"{topic}:1",
        "--shift-by", "-4", "--execute",
    )  # fmt: skip
    assert shift.returncode == 0, shift.stderr
    assert table(shift.stdout)[1] == [group, topic, "1", "6"]
    assert first_offsets(bootstrap, group, topic, 2) == {0: 3, 1: 6}

    clamp = cg(
        bootstrap, "--reset-offsets", "--group", group, "--all-topics", "--to-offset", "99",
        "--dry-run",
    )  # fmt: skip
    assert clamp.returncode == 0, clamp.stderr
    assert [row[3] for row in table(clamp.stdout)[1:]] == ["10", "10"]
    assert "is higher than latest offset" in clamp.stderr


def test_reset_offsets_export_and_from_file(bootstrap: str, admin: Admin, tmp_path: Path) -> None:
    """--export prints the plan as CSV; --from-file applies such a file (clamped to the
    log's range with Kafka's warning); several groups use group,topic,partition,offset."""
    topic, group, _ = stopped_group(bootstrap, [6, 6], 12)
    exported = cg(
        bootstrap, "--reset-offsets", "--group", group, "--all-topics", "--to-offset", "2",
        "--dry-run", "--export",
    )  # fmt: skip
    assert exported.returncode == 0, exported.stderr
    assert exported.stdout == f"{topic},0,2\n{topic},1,2\n\n"
    plan = tmp_path / "plan.csv"
    plan.write_text(f"{topic},0,4\n{topic},1,99\n")
    applied = cg(
        bootstrap, "--reset-offsets", "--group", group, "--from-file", str(plan), "--execute",
    )  # fmt: skip
    assert applied.returncode == 0, applied.stderr
    assert table(applied.stdout)[1:] == [[group, topic, "0", "4"], [group, topic, "1", "6"]]
    assert "is higher than latest offset" in applied.stderr
    assert {tp.partition: o.offset for tp, o in admin.list_group_offsets(group).items()} == {
        0: 4,
        1: 6,
    }
    other = tmp_path / "groups.csv"
    other.write_text(f"{group},{topic},1,1\nsomeone-else,{topic},0,0\n")
    both = cg(
        bootstrap, "--reset-offsets", "--group", group, "--group", f"{group}-absent",
        "--from-file", str(other), "--dry-run",
    )  # fmt: skip
    assert both.returncode == 1
    assert table(both.stdout)[1:] == [[group, topic, "1", "1"]]
    assert f"No reset plan for group {group}-absent found" in both.stderr
    bad = tmp_path / "bad.csv"
    bad.write_text("not,a,number\n")
    broken = cg(bootstrap, "--reset-offsets", "--group", group, "--from-file", str(bad))
    assert broken.returncode == 1 and "Invalid reset plan line 1" in broken.stderr


def test_reset_offsets_by_time(bootstrap: str, require_strom: None) -> None:
    topic, group, _ = stopped_group(bootstrap, [4], 4)
    future = cg(
        bootstrap, "--reset-offsets", "--group", group, "--topic", topic,
        "--to-datetime", "2999-01-01T00:00:00.000", "--dry-run",
    )  # fmt: skip
    assert future.returncode == 0, future.stderr
    assert table(future.stdout)[1] == [group, topic, "0", "4"]
    past = cg(
        bootstrap, "--reset-offsets", "--group", group, "--topic", topic,
        "--by-duration", "P3650D", "--execute",
    )  # fmt: skip
    assert past.returncode == 0, past.stderr
    assert table(past.stdout)[1] == [group, topic, "0", "0"]


def test_reset_offsets_refused_while_active(bootstrap: str) -> None:
    topic, group = names()
    create_topic_with(bootstrap, topic, [2])
    c = group_consumer(bootstrap, group, topic)
    try:
        wait_assigned(c)
        r = cg(bootstrap, "--reset-offsets", "--group", group, "--all-topics", "--to-latest",
               "--execute")  # fmt: skip
        assert r.returncode == 1
        assert (
            f"Error: Assignments can only be reset if the group '{group}' is inactive, "
            "but the current state is Stable."
        ) in r.stderr.splitlines()
    finally:
        c.close()


# -- delete --------------------------------------------------------------------


def test_delete_group(bootstrap: str) -> None:
    topic, group = names()
    create_topic_with(bootstrap, topic, [3])
    c = group_consumer(bootstrap, group, topic)
    try:
        consume_and_commit(c, 2)
        refused = cg(bootstrap, "--delete", "--group", group)
        assert refused.returncode == 1
        assert refused.stderr.splitlines() == [
            "Error: Deletion of some consumer groups failed:",
            f"* Group '{group}' could not be deleted due to: NON_EMPTY_GROUP: "
            "The group is not empty.",
        ]
    finally:
        c.close()
    ok = cg(bootstrap, "--delete", "--group", group)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout == f"Deletion of requested consumer groups ('{group}') was successful.\n"
    gone = cg(bootstrap, "--describe", "--group", group)
    assert gone.returncode == 1
    assert gone.stderr.strip() == f"Error: Consumer group '{group}' does not exist."
    assert group not in cg(bootstrap, "--list").stdout.split()


def test_delete_offsets(bootstrap: str, admin: Admin) -> None:
    topic, group, _ = stopped_group(bootstrap, [3, 3], 6)
    r = cg(bootstrap, "--delete-offsets", "--group", group, "--topic", topic)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"Request succeeded for deleting offsets from group {group}.\n")
    assert table(r.stdout)[1:] == [
        ["TOPIC", "PARTITION", "STATUS"],
        [topic, "0", "Successful"],
        [topic, "1", "Successful"],
    ]
    assert admin.list_group_offsets(group) == {}


def test_delete_offsets_refused_for_a_subscribed_topic(bootstrap: str, admin: Admin) -> None:
    topic, group = names()
    create_topic_with(bootstrap, topic, [2])
    c = group_consumer(bootstrap, group, topic)
    try:
        consume_and_commit(c, 1)
        r = cg(bootstrap, "--delete-offsets", "--group", group, "--topic", f"{topic}:0")
        assert r.returncode == 1
        assert r.stderr.startswith("Error: Encountered some partition-level error")
        status = "Error: The consumer group is actively subscribed to the topic"
        assert r.stdout.splitlines()[2].split(None, 2) == [topic, "0", status]
        assert admin.list_group_offsets(group)[TopicPartition(topic, 0)].offset == 1
    finally:
        c.close()


# -- consumer groups of the KIP-848 protocol -----------------------------------


def test_consumer_protocol_group_list_type_and_describe_epochs(
    bootstrap: str, require_strom: None
) -> None:
    from confluent_kafka import Consumer

    topic, group = names()
    create_topic_with(bootstrap, topic, [2, 2])
    _, classic, _ = stopped_group(bootstrap, [1], 1)
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "group.protocol": "consumer",
            "client.id": "kip848-client",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    c.subscribe([topic])
    try:
        consume_and_commit(c, 3)
        types = cg(bootstrap, "--list", "--type")
        assert types.returncode == 0, types.stderr
        rows = table(types.stdout)
        assert rows[0] == ["GROUP", "TYPE"]
        assert [group, "Consumer"] in rows and [classic, "Classic"] in rows
        only = cg(bootstrap, "--list", "--type", "consumer", "--state")
        assert table(only.stdout)[0] == ["GROUP", "TYPE", "STATE"]
        assert [group, "Consumer", "Stable"] in table(only.stdout)
        assert classic not in only.stdout
        bad = cg(bootstrap, "--list", "--type", "share")
        assert bad.returncode == 1 and "Invalid types list 'share'" in bad.stderr

        state = columns(
            cg(bootstrap, "--describe", "--group", group, "--state", "--verbose").stdout
        )
        assert state[0]["ASSIGNMENT-STRATEGY"] == "uniform" and state[0]["STATE"] == "Stable"
        epoch = state[0]["GROUP-EPOCH"]
        assert int(epoch) >= 1 and state[0]["TARGET-ASSIGNMENT-EPOCH"] == epoch

        members = columns(
            cg(bootstrap, "--describe", "--group", group, "--members", "--verbose").stdout
        )
        assert len(members) == 1 and members[0]["CLIENT-ID"] == "kip848-client"
        assert members[0]["CURRENT-EPOCH"] == epoch and members[0]["TARGET-EPOCH"] == epoch
        assert members[0]["CURRENT-ASSIGNMENT"] == f"{topic}:0,1"
        assert members[0]["TARGET-ASSIGNMENT"] == f"{topic}:0,1"

        lag = columns(cg(bootstrap, "--describe", "--group", group).stdout)
        assert sum(int(r["CURRENT-OFFSET"]) for r in lag) == 3
        assert sum(int(r["LAG"]) for r in lag) == 1
        assert {r["CLIENT-ID"] for r in lag} == {"kip848-client"}
    finally:
        c.close()
