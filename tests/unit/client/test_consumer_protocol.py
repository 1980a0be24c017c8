"""The consumer protocol's member state machine (KIP-848, sans-IO): what each heartbeat
carries, how answers and errors move the member, and leaving."""

from __future__ import annotations

import pytest

from strom.client.consumer_protocol import (
    ConsumerProtocolMember,
    State,
    Step,
    Subscription,
)
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.generated.consumer_group_heartbeat import (
    ConsumerGroupHeartbeatResponse as Resp,
)

T = b"T" * 16


def answer(epoch: int, partitions: list[int] | None = None, code: int = 0) -> Resp:
    resp = Resp(error_code=code, member_id="m", member_epoch=epoch, heartbeat_interval_ms=500)
    if partitions is not None:
        resp.assignment = Resp.Assignment([Resp.TopicPartitions(T, partitions)])
    return resp


def joined(**kwargs: object) -> ConsumerProtocolMember:
    m = ConsumerProtocolMember("g", rebalance_timeout_ms=300_000, **kwargs)  # type: ignore[arg-type]
    m.subscribe(Subscription(topics=("t",)))
    m.heartbeat_request(0)
    assert m.on_heartbeat_response(answer(1, [0, 1])) is Step.OK
    return m


def test_the_member_makes_its_id_and_joins_with_every_field() -> None:
    m = ConsumerProtocolMember("g", rebalance_timeout_ms=300_000, rack_id="r1")
    assert len(m.member_id) == 22 and m.state is State.UNSUBSCRIBED
    assert not m.heartbeat_due(0)
    m.subscribe(Subscription(topics=("a", "b")))
    assert m.state is State.JOINING and m.heartbeat_due(0)
    req = m.heartbeat_request(0)
    assert req.member_epoch == 0 and req.member_id == m.member_id
    assert req.subscribed_topic_names == ["a", "b"] and req.subscribed_topic_regex is None
    assert req.rebalance_timeout_ms == 300_000 and req.rack_id == "r1"
    assert req.topic_partitions == []


def test_an_assignment_is_reconciled_then_acknowledged() -> None:
    m = joined()
    assert m.member_epoch == 1 and m.target == frozenset({(T, 0), (T, 1)})
    assert not m.stable and m.heartbeat_interval_ms == 500
    m.acknowledge(frozenset({(T, 0), (T, 1)}))
    assert m.stable and m.heartbeat_due(1)  # the acknowledgement goes out at once
    req = m.heartbeat_request(1)
    assert req.member_epoch == 1 and req.rebalance_timeout_ms == -1
    assert req.subscribed_topic_names is None
    assert [(tp.topic_id, tp.partitions) for tp in req.topic_partitions or []] == [(T, [0, 1])]
    assert not m.heartbeat_due(2) and m.heartbeat_due(501)
    quiet = m.heartbeat_request(501)
    assert quiet.topic_partitions is None and quiet.subscribed_topic_names is None


def test_a_new_subscription_is_sent_with_the_next_heartbeat() -> None:
    m = joined()
    m.acknowledge(m.target or frozenset())
    m.heartbeat_request(1)
    m.subscribe(Subscription(regex="orders-.*"))
    assert m.heartbeat_due(2)
    req = m.heartbeat_request(2)
    assert req.subscribed_topic_regex == "orders-.*" and req.subscribed_topic_names == []
    m.subscribe(Subscription(topics=("x",)))
    req = m.heartbeat_request(3)
    assert req.subscribed_topic_names == ["x"] and req.subscribed_topic_regex == ""


@pytest.mark.parametrize("code", [ErrorCode.FENCED_MEMBER_EPOCH, ErrorCode.UNKNOWN_MEMBER_ID])
def test_fencing_loses_the_partitions_and_rejoins(code: ErrorCode) -> None:
    m = joined()
    m.acknowledge(frozenset({(T, 0), (T, 1)}))
    member_id = m.member_id
    assert m.on_heartbeat_response(answer(0, code=code)) is Step.FENCED
    assert m.owned == frozenset() and m.member_epoch == 0 and m.state is State.JOINING
    req = m.heartbeat_request(5)
    assert req.member_epoch == 0 and req.member_id == member_id  # the same id again
    assert req.subscribed_topic_names == ["t"] and req.topic_partitions == []


def test_coordinator_errors_retry_and_others_are_fatal() -> None:
    m = joined()
    assert m.on_heartbeat_response(answer(1, code=ErrorCode.NOT_COORDINATOR)) is (
        Step.FIND_COORDINATOR
    )
    assert m.heartbeat_request(1).rebalance_timeout_ms == 300_000  # everything again
    load = ErrorCode.COORDINATOR_LOAD_IN_PROGRESS
    assert m.on_heartbeat_response(answer(1, code=load)) is Step.BACKOFF
    with pytest.raises(KafkaError) as err:
        m.on_heartbeat_response(answer(1, code=ErrorCode.UNRELEASED_INSTANCE_ID))
    assert err.value.code == ErrorCode.UNRELEASED_INSTANCE_ID and m.state is State.FATAL
    assert not m.heartbeat_due(10**9)


def test_leaving_uses_minus_one_or_minus_two_for_static_members() -> None:
    dynamic = joined()
    req = dynamic.leave_request()
    assert req is not None and req.member_epoch == -1 and dynamic.state is State.LEAVING
    assert dynamic.on_heartbeat_response(answer(5, [3])) is Step.OK  # a late answer
    assert dynamic.target is None
    static = joined(group_instance_id="i1")
    req = static.leave_request()
    assert req is not None and req.member_epoch == -2 and req.instance_id == "i1"
    never = ConsumerProtocolMember("g", rebalance_timeout_ms=1)
    assert never.leave_request() is None
    static.subscribe(Subscription(topics=("t",)))
    assert static.state is State.JOINING and static.heartbeat_request(9).member_epoch == 0


def test_consumer_config_for_the_consumer_protocol() -> None:
    from strom.client.config import ConfigError
    from strom.client.consumer_config import ConsumerConfig

    cfg = ConsumerConfig.from_dict(
        {"group.id": "g", "group.protocol": "consumer", "group.remote.assignor": "range"}
    )
    assert cfg.group_protocol == "consumer" and cfg.group_remote_assignor == "range"
    for key, value in (("session.timeout.ms", 10_000), ("partition.assignment.strategy", "range")):
        with pytest.raises(ConfigError, match=key):
            ConsumerConfig.from_dict({"group.id": "g", "group.protocol": "consumer", key: value})
    with pytest.raises(ConfigError, match=r"group\.remote\.assignor"):
        ConsumerConfig.from_dict({"group.id": "g", "group.remote.assignor": "range"})
    with pytest.raises(ConfigError, match=r"group\.protocol"):
        ConsumerConfig.from_dict({"group.id": "g", "group.protocol": "share"})
