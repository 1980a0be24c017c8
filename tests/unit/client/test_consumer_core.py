"""Consumer core without sockets: read_committed filtering, positions, config."""

from __future__ import annotations

import re

import pytest

from strom.client.config import ConfigError
from strom.client.consumer_config import ConsumerConfig
from strom.client.fetcher import AbortedTxn, read_committed_records
from strom.client.subscription import SubscriptionState
from strom.common.types import TopicPartition as TP
from strom.protocol.errors import KafkaError
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
    committed = read_committed_records(data, 0, aborted=[AbortedTxn(1, 0)], read_committed=True)
    assert [r.value for r, _, _ in committed.records] == [b"c0", b"plain", b"later"]
    assert committed.next_offset == 7
    everything = read_committed_records(data, 0, aborted=[AbortedTxn(1, 0)])
    assert [r.value for r, _, _ in everything.records] == [b"a0", b"a1", b"c0", b"plain", b"later"]


def test_batch_starting_before_the_fetch_offset() -> None:
    data = build_batch([(None, b"%d" % i, [], 1) for i in range(5)], base_offset=10)
    got = read_committed_records(data, 12)
    assert [r.offset for r, _, _ in got.records] == [12, 13, 14] and got.next_offset == 15


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
