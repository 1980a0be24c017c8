"""strom's consumer against a real broker: interop, polling options, groups, transactions.

Group tests need the group APIs in the broker's ApiVersions, and read_committed the
transaction APIs: without them a test skips on the reference broker (naming what is
missing) and fails on strom's. The reference broker forms groups slowly (~20 s per
join), so its group tests take a while.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from strom.client.blocking import Consumer, Producer
from strom.common.types import TopicPartition
from strom.protocol.api_versions import ApiKey
from strom.testing import BrokerProcess
from tests.integration.test_client_support import create_topic, require_apis

pytestmark = pytest.mark.integration

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
TIMEOUT_S = 60.0
GROUP_APIS = [ApiKey.FIND_COORDINATOR, ApiKey.JOIN_GROUP, ApiKey.SYNC_GROUP, ApiKey.HEARTBEAT]
TXN_APIS = [ApiKey.INIT_PRODUCER_ID, ApiKey.ADD_PARTITIONS_TO_TXN, ApiKey.END_TXN]


@pytest.fixture
def groups(broker: BrokerProcess, broker_kind: str) -> None:
    require_apis(broker.bootstrap, broker_kind, *GROUP_APIS)


def _cfg(broker: BrokerProcess, **extra: Any) -> dict[str, Any]:
    cfg = {"bootstrap.servers": broker.bootstrap, "auto.offset.reset": "earliest"}
    cfg.update({k.replace("_", "."): v for k, v in extra.items()})
    return cfg


def _poll_until(consumer: Consumer, n: int, timeout_s: float = TIMEOUT_S) -> list[Any]:
    out: list[Any] = []
    deadline = time.monotonic() + timeout_s
    while len(out) < n and time.monotonic() < deadline:
        out.extend(consumer.poll(0.5))
    return out


def _wait(
    pred: Callable[[], bool], timeout_s: float = TIMEOUT_S, step: Callable[[], Any] | None = None
) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if step is not None:
            step()
        if pred():
            return True
        time.sleep(0.05)
    return False


def _produce(broker: BrokerProcess, topic: str, n: int, **extra: Any) -> None:
    with Producer({"bootstrap.servers": broker.bootstrap, **extra}) as p:
        for i in range(n):
            p.send(topic, f"v{i}".encode(), key=f"k{i}".encode())
        p.flush()


# -- interop --------------------------------------------------------------------------------


@pytest.mark.parametrize("codec", CODECS)
def test_strom_reads_what_confluent_and_kafka_python_produced(
    broker: BrokerProcess, topic_name: str, codec: str
) -> None:
    from confluent_kafka import Producer as CProducer
    from kafka import KafkaProducer

    create_topic(broker.bootstrap, topic_name, 2)
    cp = CProducer(
        {"bootstrap.servers": broker.bootstrap, "compression.type": codec, "linger.ms": 10}
    )
    for i in range(40):
        cp.produce(
            topic_name,
            f"c{i}".encode(),
            key=b"k",
            headers=[("h", b"1"), ("n", None)],
            partition=i % 2,
        )
    cp.flush(30)
    kp = KafkaProducer(
        bootstrap_servers=broker.bootstrap, compression_type=None if codec == "none" else codec
    )
    for i in range(40):
        kp.send(topic_name, f"p{i}".encode(), headers=[("x", b"y")], partition=i % 2)
    kp.flush(30)
    kp.close()
    with Consumer(_cfg(broker)) as c:
        c.assign([TopicPartition(topic_name, 0), TopicPartition(topic_name, 1)])
        got = _poll_until(c, 80)
    assert len(got) == 80
    conf = [r for r in got if r.value.startswith(b"c")]
    assert all(r.key == b"k" and r.headers == (("h", b"1"), ("n", None)) for r in conf)
    assert all(r.headers == (("x", b"y"),) for r in got if r.value.startswith(b"p"))
    for p in (0, 1):
        offsets = [r.offset for r in got if r.partition == p]
        assert offsets == list(range(40))


# -- polling options --------------------------------------------------------------------------


def test_max_poll_records_bounds_each_poll(broker: BrokerProcess, topic_name: str) -> None:
    create_topic(broker.bootstrap, topic_name, 1)
    _produce(broker, topic_name, 250)
    with Consumer(_cfg(broker, max_poll_records=7, value_deserializer="str")) as c:
        c.assign([TopicPartition(topic_name, 0)])
        sizes: list[int] = []
        values: list[str] = []
        deadline = time.monotonic() + TIMEOUT_S
        while len(values) < 250 and time.monotonic() < deadline:
            recs = c.poll(0.5)
            sizes.append(len(recs))
            values.extend(r.value for r in recs)
    assert max(sizes) == 7 and values == [f"v{i}" for i in range(250)]


def test_seek_position_pause_and_offsets_for_times(broker: BrokerProcess, topic_name: str) -> None:
    create_topic(broker.bootstrap, topic_name, 1)
    tp = TopicPartition(topic_name, 0)
    with Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0}) as p:
        for i in range(10):
            p.send(topic_name, b"%d" % i, timestamp=1_000_000 + i * 10).result(30)
    with Consumer(_cfg(broker, auto_offset_reset="latest")) as c:
        c.assign([tp])
        assert c.position(tp) == 10
        c.seek_to_beginning([tp])
        assert c.position(tp) == 0
        c.seek(tp, 4)
        assert [r.offset for r in _poll_until(c, 6)][:1] == [4]
        c.seek(tp, 0)
        c.pause([tp])
        assert c.poll(0.3) == [] and c.paused() == {tp}
        c.resume([tp])
        assert _poll_until(c, 1)[0].offset == 0
        c.seek_to_end()
        assert c.position(tp) == 10
        assert c.end_offsets([tp]) == {tp: 10} and c.beginning_offsets([tp]) == {tp: 0}


def test_offsets_for_times(broker: BrokerProcess, broker_kind: str, topic_name: str) -> None:
    if broker_kind == "reference":
        pytest.skip("the reference broker answers ListOffsets by timestamp wrongly")
    create_topic(broker.bootstrap, topic_name, 1)
    tp = TopicPartition(topic_name, 0)
    with Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0}) as p:
        for i in range(10):
            p.send(topic_name, b"%d" % i, timestamp=1_000_000 + i * 10).result(30)
    with Consumer(_cfg(broker)) as c:
        found = c.offsets_for_times({tp: 1_000_035, TopicPartition(topic_name, 0): 1_000_035})
        assert found[tp] is not None and found[tp].offset == 4
        assert c.offsets_for_times({tp: 2_000_000}) == {tp: None}


# -- groups -----------------------------------------------------------------------------------


def test_auto_commit_commits(broker: BrokerProcess, topic_name: str, groups: None) -> None:
    create_topic(broker.bootstrap, topic_name, 1)
    _produce(broker, topic_name, 20)
    group = f"g-{topic_name}"
    tp = TopicPartition(topic_name, 0)
    with Consumer(_cfg(broker, group_id=group, auto_commit_interval_ms=200)) as c:
        c.subscribe([topic_name])
        assert len(_poll_until(c, 20)) == 20
        assert _wait(
            lambda: (c.committed([tp])[tp] or _Off(-1)).offset == 20, step=lambda: c.poll(0.1)
        )
    with Consumer(_cfg(broker, group_id=group)) as again:
        again.subscribe([topic_name])
        _produce(broker, topic_name, 1)
        assert [r.offset for r in _poll_until(again, 1)] == [20]


class _Off:
    def __init__(self, offset: int) -> None:
        self.offset = offset


def test_explicit_commit_and_committed(
    broker: BrokerProcess, topic_name: str, groups: None
) -> None:
    create_topic(broker.bootstrap, topic_name, 1)
    _produce(broker, topic_name, 5)
    tp = TopicPartition(topic_name, 0)
    with Consumer(_cfg(broker, group_id=f"g-{topic_name}", enable_auto_commit=False)) as c:
        c.subscribe([topic_name])
        _poll_until(c, 5)
        assert c.committed([tp]) == {tp: None}
        c.commit({tp: 3})
        assert c.committed([tp])[tp].offset == 3  # type: ignore[union-attr]
        c.commit()
        assert c.committed([tp])[tp].offset == 5  # type: ignore[union-attr]
        c.commit_async({tp: 4})
        assert _wait(lambda: (c.committed([tp])[tp] or _Off(-1)).offset == 4)


class _Listener:
    def __init__(self) -> None:
        self.events: list[tuple[str, list[TopicPartition]]] = []

    def on_assigned(self, tps: list[TopicPartition]) -> None:
        self.events.append(("assigned", tps))

    def on_revoked(self, tps: list[TopicPartition]) -> None:
        self.events.append(("revoked", tps))

    def on_lost(self, tps: list[TopicPartition]) -> None:
        self.events.append(("lost", tps))


@pytest.mark.parametrize("strategy", ["range", "roundrobin", "sticky", "cooperative-sticky"])
def test_group_rebalance_with_every_strategy(
    broker: BrokerProcess, broker_kind: str, topic_name: str, groups: None, strategy: str
) -> None:
    # The reference broker takes ~20 s per rebalance; cooperative-sticky needs two.
    limit = 180.0 if broker_kind == "reference" else TIMEOUT_S
    create_topic(broker.bootstrap, topic_name, 4)
    cfg = _cfg(broker, group_id=f"g-{topic_name}", partition_assignment_strategy=strategy)
    all_tps = {TopicPartition(topic_name, p) for p in range(4)}
    listener = _Listener()
    a = Consumer(cfg)
    b = Consumer(cfg)
    try:
        a.subscribe([topic_name], listener)
        assert _wait(lambda: a.assignment() == all_tps, limit, step=lambda: a.poll(0.2))
        b.subscribe([topic_name])

        def both() -> None:
            a.poll(0.1)
            b.poll(0.1)

        assert _wait(
            lambda: len(a.assignment()) == 2 and len(b.assignment()) == 2, limit, step=both
        ), (
            a.assignment(),
            b.assignment(),
        )
        assert a.assignment() | b.assignment() == all_tps
        assert ("assigned", sorted(all_tps)) in listener.events
        assert any(kind == "revoked" for kind, _ in listener.events)
        b.close()
        assert _wait(lambda: a.assignment() == all_tps, limit, step=lambda: a.poll(0.2))
    finally:
        a.close()
        b.close()


def test_heartbeats_run_between_polls_and_max_poll_interval_leaves(
    broker: BrokerProcess, broker_kind: str, topic_name: str, groups: None
) -> None:
    """Heartbeats are sent in the background: a consumer that does not poll for longer
    than session.timeout.ms stays in the group. Once max.poll.interval.ms passes
    without a poll it leaves the group itself (the coordinator sees it go), and the
    next poll joins again and goes on from the committed position."""
    from strom.client.sync import Admin

    if broker_kind == "reference":
        pytest.skip("the reference broker takes ~20 s per join; the timings here need less")
    create_topic(broker.bootstrap, topic_name, 1)
    _produce(broker, topic_name, 5)
    group = f"g-{topic_name}"
    cfg = _cfg(
        broker,
        group_id=group,
        session_timeout_ms=6000,
        heartbeat_interval_ms=300,
        max_poll_interval_ms=9000,
    )
    listener = _Listener()
    tp = TopicPartition(topic_name, 0)
    with Consumer(cfg) as c, Admin({"bootstrap.servers": broker.bootstrap}) as admin:
        c.subscribe([topic_name], listener)
        assert [r.value for r in _poll_until(c, 5)] == [b"v%d" % i for i in range(5)]
        c.commit()
        last_poll = time.monotonic()
        seen: list[tuple[float, str, int]] = []  # (s since the last poll, state, members)

        def left() -> bool:
            described = admin.describe_groups([group])[group]
            seen.append((time.monotonic() - last_poll, described.state, len(described.members)))
            return described.state == "Empty"

        # Without polls the member leaves once max.poll.interval.ms (9 s) passes; until
        # then heartbeats keep it in the group, past session.timeout.ms (6 s).
        assert _wait(left, 20)
        before = seen[:-1]
        assert all((state, n) == ("Stable", 1) for _, state, n in before), seen
        assert any(t > 6.5 for t, _, _ in before), f"never seen past session.timeout.ms: {seen}"
        _produce(broker, topic_name, 1)
        assert [r.value for r in _poll_until(c, 1)] == [b"v0"]  # the new record (key k0)
        assert admin.describe_groups([group])[group].state == "Stable"
    # out of the group, the member lost its partition, got it again, and close() revoked it
    assert listener.events == [
        ("assigned", [tp]),
        ("lost", [tp]),
        ("assigned", [tp]),
        ("revoked", [tp]),
    ]


def test_static_membership_keeps_the_assignment(
    broker: BrokerProcess, topic_name: str, groups: None
) -> None:
    create_topic(broker.bootstrap, topic_name, 4)
    base = _cfg(broker, group_id=f"g-{topic_name}", session_timeout_ms=30_000)
    a = Consumer({**base, "group.instance.id": "a"})
    b = Consumer({**base, "group.instance.id": "b"})
    try:
        a.subscribe([topic_name])
        b.subscribe([topic_name])

        def both() -> None:
            a.poll(0.1)
            b.poll(0.1)

        assert _wait(lambda: len(a.assignment()) == 2 and len(b.assignment()) == 2, step=both)
        before_a, before_b = a.assignment(), b.assignment()
        b.close()  # a static member does not leave: no rebalance
        for _ in range(5):
            a.poll(0.1)
        assert a.assignment() == before_a
        b = Consumer({**base, "group.instance.id": "b"})
        b.subscribe([topic_name])
        assert _wait(lambda: b.assignment() == before_b, step=both)
        assert a.assignment() == before_a
    finally:
        a.close()
        b.close()


def test_pattern_subscription(broker: BrokerProcess, topic_name: str, groups: None) -> None:
    names = [f"{topic_name}-x{i}" for i in range(2)]
    for n in names:
        create_topic(broker.bootstrap, n, 1)
        _produce(broker, n, 3)
    with Consumer(_cfg(broker, group_id=f"g-{topic_name}")) as c:
        c.subscribe(topic_name.replace(".", r"\.") + r"-x\d")
        got = _poll_until(c, 6)
    assert sorted({r.topic for r in got}) == names


# -- transactions -----------------------------------------------------------------------------


def test_read_committed_hides_aborted_data(
    broker: BrokerProcess, broker_kind: str, topic_name: str
) -> None:
    require_apis(broker.bootstrap, broker_kind, *TXN_APIS)
    if broker_kind == "reference":
        pytest.skip("the reference broker shows aborted records to read_committed consumers")
    create_topic(broker.bootstrap, topic_name, 1)
    with Producer(
        {"bootstrap.servers": broker.bootstrap, "transactional.id": f"tx-{topic_name}"}
    ) as p:
        p.init_transactions()
        p.begin_transaction()
        for i in range(3):
            p.send(topic_name, b"aborted-%d" % i)
        p.flush()  # written to the log; unflushed records would be dropped by the abort
        p.abort_transaction()
        p.begin_transaction()
        for i in range(2):
            p.send(topic_name, b"committed-%d" % i)
        p.commit_transaction()
    tp = TopicPartition(topic_name, 0)
    with Consumer(_cfg(broker, isolation_level="read_committed")) as c:
        c.assign([tp])
        values = [r.value for r in _poll_until(c, 2, 10)]
        values += [r.value for r in c.poll(1)]
    assert values == [b"committed-0", b"committed-1"]
    with Consumer(_cfg(broker)) as c:
        c.assign([tp])
        values = [r.value for r in _poll_until(c, 5, 10)]
    assert values == [b"aborted-0", b"aborted-1", b"aborted-2", b"committed-0", b"committed-1"]


def test_a_bad_record_stops_the_partition_until_a_seek_past_it(
    broker: BrokerProcess, topic_name: str
) -> None:
    """A value the deserializer rejects: poll() returns the records before it, then
    raises RecordDeserializationError naming its offset on every poll, until the user
    seeks past it (a seek made before the error surfaced drops it, as in Kafka)."""
    from strom.client.messages import RecordDeserializationError

    create_topic(broker.bootstrap, topic_name, 1)
    with Producer({"bootstrap.servers": broker.bootstrap}) as p:
        for value in (b"1", b"2", b"not json", b"4"):
            p.send(topic_name, value)
        p.flush()
    tp = TopicPartition(topic_name, 0)
    with Consumer(_cfg(broker, value_deserializer="json")) as c:
        c.assign([tp])
        c.seek(tp, 0)
        assert [r.value for r in _poll_until(c, 2)] == [1, 2]
        for _ in range(2):
            with pytest.raises(RecordDeserializationError) as info:
                c.poll(5.0)
            assert info.value.offset == 2 and c.position(tp) == 2
        c.seek(tp, 3)
        assert [(r.offset, r.value) for r in _poll_until(c, 1)] == [(3, 4)]
        c.seek(tp, 0)
        assert [r.value for r in _poll_until(c, 2)] == [1, 2]
        c.seek(tp, 3)  # before the pending error is raised: it no longer applies
        assert [(r.offset, r.value) for r in _poll_until(c, 1)] == [(3, 4)]
