"""Consumer core without sockets: read_committed filtering, positions, config."""

from __future__ import annotations

import re

import pytest

from strom.client.config import ConfigError
from strom.client.consumer_config import ConsumerConfig
from strom.client.fetcher import AbortedTxn, CompletedFetch
from strom.client.messages import RecordDeserializationError
from strom.client.subscription import SubscriptionState
from strom.common.types import TopicPartition as TP
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.records import build_batch, build_control_batch


def _txn_batch(base: int, pid: int, values: list[bytes]) -> bytes:
    return build_batch(
        [(None, v, [], 1000) for v in values],
        base_offset=base,
        producer_id=pid,
        producer_epoch=0,
        base_sequence=0,
        is_transactional=True,
    )


def _marker(base: int, pid: int, commit: bool) -> bytes:
    return build_control_batch(pid, 0, commit, 0, 1, base_offset=base)


def test_read_committed_skips_aborted_batches_and_markers() -> None:
    data = (
        _txn_batch(0, 1, [b"a0", b"a1"])  # aborted
        + _txn_batch(2, 2, [b"c0"])  # committed
        + _marker(3, 1, commit=False)
        + _marker(4, 2, commit=True)
        + build_batch([(None, b"plain", [], 5)], base_offset=5)
        + _txn_batch(6, 1, [b"later"])  # pid 1 again, not aborted
    )
    committed = CompletedFetch(data, 0, TP("t", 0), aborted=[AbortedTxn(1, 0)], read_committed=True)
    assert [r.value for r in committed.take(100)] == [b"c0", b"plain", b"later"]
    assert committed.position == 7 and committed.exhausted
    everything = CompletedFetch(data, 0, TP("t", 0), aborted=[AbortedTxn(1, 0)])
    assert [r.value for r in everything.take(100)] == [b"a0", b"a1", b"c0", b"plain", b"later"]


def test_batch_starting_before_the_fetch_offset() -> None:
    data = build_batch([(None, b"%d" % i, [], 1) for i in range(5)], base_offset=10)
    got = CompletedFetch(data, 12, TP("t", 3))
    records = got.take(100)
    assert [r.offset for r in records] == [12, 13, 14] and got.position == 15
    assert {(r.topic, r.partition) for r in records} == {("t", 3)}


def test_take_hands_out_batches_piecewise_and_tracks_the_position() -> None:
    data = (
        b"".join(
            build_batch([(None, b"%d" % i, [], 1) for i in range(b, b + 4)], base_offset=b)
            for b in range(0, 12, 4)
        )
        + _marker(12, 1, commit=True)
        + build_batch([(b"k", b"12", [("h", b"v")], 9)], base_offset=13)
    )
    fetch = CompletedFetch(data, 0, TP("t", 1))
    assert [r.offset for r in fetch.take(3)] == [0, 1, 2] and fetch.position == 3
    assert [r.offset for r in fetch.take(3)] == [3, 4, 5] and fetch.position == 6
    assert [r.offset for r in fetch.take(6)] == [6, 7, 8, 9, 10, 11]
    assert fetch.position == 12 and not fetch.exhausted
    [last] = fetch.take(5)  # the control batch is skipped
    assert (last.offset, last.key, last.headers, last.timestamp) == (13, b"k", (("h", b"v"),), 9)
    assert fetch.take(5) == [] and fetch.exhausted and fetch.position == 14


def test_a_failing_deserializer_stops_at_its_record() -> None:
    data = build_batch([(None, b"%d" % i, [], 1) for i in range(5)], base_offset=0)

    def value_de(raw: bytes | None) -> int:
        if raw == b"3":
            raise ValueError("bad")
        return int(raw or b"0")

    fetch = CompletedFetch(data, 0, TP("t", 0), deserializers=(lambda k: k, value_de))
    assert [r.value for r in fetch.take(10)] == [0, 1, 2]
    assert fetch.position == 3 and isinstance(fetch.error, RecordDeserializationError)
    assert fetch.error.offset == 3 and fetch.exhausted


def test_a_corrupt_batch_ends_the_hand_out_with_an_error() -> None:
    good = build_batch([(None, b"a", [], 1)], base_offset=0)
    bad = bytearray(build_batch([(None, b"b", [], 1)], base_offset=1))
    bad[-2] ^= 0xFF
    fetch = CompletedFetch(good + bytes(bad), 0, TP("t", 0))
    assert [r.value for r in fetch.take(10)] == [b"a"]
    assert fetch.error is not None and fetch.error.code == ErrorCode.CORRUPT_MESSAGE
    assert fetch.position == 1


def test_positions_pause_and_resets() -> None:
    s = SubscriptionState()
    s.assign_manual([TP("t", 0), TP("t", 1)])
    assert s.needs_position() == [TP("t", 0), TP("t", 1)]
    s.seek(TP("t", 0), 5)
    s.request_reset([TP("t", 1)], "earliest")
    assert s.pending_resets() == {TP("t", 1): "earliest"}
    assert s.fetchable() == {TP("t", 0): 5}
    s.pause([TP("t", 0)])
    assert s.fetchable() == {} and s.paused() == {TP("t", 0)}
    with pytest.raises(KafkaError):
        s.subscribe(["x"])
    with pytest.raises(KafkaError):
        s.seek(TP("other", 0), 1)


def test_pattern_subscription_tracks_matching_topics() -> None:
    s = SubscriptionState()
    s.subscribe_pattern(re.compile(r"orders-.*"))
    assert s.match(["orders-eu", "orders-us", "payments"])
    assert s.topics == {"orders-eu", "orders-us"}
    assert not s.match(["orders-eu", "orders-us"])


def test_consumer_defaults_are_kafkas() -> None:
    c = ConsumerConfig.from_dict({"group.id": "g"})
    assert (c.session_timeout_ms, c.heartbeat_interval_ms) == (45_000, 3_000)
    assert c.max_poll_records == 500 and c.max_poll_interval_ms == 300_000
    assert c.enable_auto_commit and c.auto_offset_reset == "latest"
    assert c.assignors == ("range", "cooperative-sticky")
    assert not ConsumerConfig.from_dict({}).enable_auto_commit  # no group: nothing to commit


@pytest.mark.parametrize(
    ("cfg", "key"),
    [
        ({"auto.offset.reset": "smallest"}, "auto.offset.reset"),
        ({"partition.assignment.strategy": "fair"}, "partition.assignment.strategy"),
        ({"heartbeat.interval.ms": 50_000}, "heartbeat.interval.ms"),
        ({"isolation.level": "dirty"}, "isolation.level"),
        ({"max.poll.records": 0}, "max.poll.records"),
        ({"enable.auto.commit": True}, "enable.auto.commit"),
        ({"fetch.min.byte": 1}, "fetch.min.byte"),
    ],
)
def test_bad_consumer_options_name_the_option(cfg: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(key)):
        ConsumerConfig.from_dict(cfg)
