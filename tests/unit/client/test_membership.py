"""The group member state machine, fed with responses (no sockets)."""

from __future__ import annotations

import pytest

from strom.client.assignors import Subscription
from strom.client.membership import (
    GroupMember,
    MemberState,
    Next,
    decode_assignment,
    decode_subscription,
    encode_assignment,
    encode_subscription,
)
from strom.common.types import TopicPartition as TP
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.generated.join_group import JoinGroupResponse
from strom.protocol.generated.sync_group import SyncGroupResponse


def _member(**kw: object) -> GroupMember:
    return GroupMember(
        "g",
        session_timeout_ms=10_000,
        rebalance_timeout_ms=30_000,
        heartbeat_interval_ms=3_000,
        **kw,
    )  # type: ignore[arg-type]


def _join_ok(member_id: str = "m-1", leader: str = "m-1", generation: int = 1) -> JoinGroupResponse:
    sub = encode_subscription(Subscription(("t",)))
    return JoinGroupResponse(
        error_code=0,
        generation_id=generation,
        protocol_type="consumer",
        protocol_name="range",
        leader=leader,
        member_id=member_id,
        members=[JoinGroupResponse.JoinGroupResponseMember("m-1", None, sub)],
    )


def _join_to_stable(m: GroupMember, now: int = 0) -> None:
    m.join_request([("range", b"")])
    assert m.on_join_response(_join_ok()) is Next.SYNC
    assert m.join_result is not None and m.join_result.is_leader
    m.sync_request({"m-1": encode_assignment([TP("t", 0)])})
    assert m.on_sync_response(SyncGroupResponse(error_code=0), now) is Next.DONE


def test_member_id_required_then_join_sync_stable() -> None:
    m = _member()
    first = m.join_request([("range", b"x")])
    assert first.member_id == "" and first.protocol_type == "consumer"
    resp = JoinGroupResponse(error_code=ErrorCode.MEMBER_ID_REQUIRED, member_id="m-1")
    assert m.on_join_response(resp) is Next.JOIN
    assert m.join_request([("range", b"x")]).member_id == "m-1"
    assert m.on_join_response(_join_ok()) is Next.SYNC
    assert m.state is MemberState.SYNCING
    assert m.on_sync_response(SyncGroupResponse(error_code=0), 100) is Next.DONE
    assert m.stable and m.generation_id == 1


def test_heartbeats_are_due_every_interval() -> None:
    m = _member()
    _join_to_stable(m, now=1000)
    assert not m.heartbeat_due(3999)
    assert m.heartbeat_due(4000)
    req = m.heartbeat_request(4000)
    assert (req.generation_id, req.member_id) == (1, "m-1")
    assert m.on_heartbeat_response(0, 4010) is Next.DONE
    assert not m.session_expired(14_000) and m.session_expired(14_011)


@pytest.mark.parametrize(
    ("code", "member_id", "generation"),
    [
        (ErrorCode.REBALANCE_IN_PROGRESS, "m-1", 1),
        (ErrorCode.ILLEGAL_GENERATION, "m-1", -1),
        (ErrorCode.UNKNOWN_MEMBER_ID, "", -1),
    ],
)
def test_heartbeat_errors_make_the_member_rejoin(
    code: int, member_id: str, generation: int
) -> None:
    m = _member()
    _join_to_stable(m)
    assert m.on_heartbeat_response(code, 10) is Next.JOIN
    assert m.rejoin_needed and not m.stable
    assert (m.member_id, m.generation_id) == (member_id, generation)


def test_coordinator_errors_ask_for_the_coordinator() -> None:
    m = _member()
    _join_to_stable(m)
    assert m.on_heartbeat_response(ErrorCode.NOT_COORDINATOR, 10) is Next.FIND_COORDINATOR
    m.join_request([])
    resp = JoinGroupResponse(error_code=ErrorCode.COORDINATOR_NOT_AVAILABLE)
    assert m.on_join_response(resp) is Next.FIND_COORDINATOR


def test_fenced_static_member_is_fatal() -> None:
    m = _member(group_instance_id="i-1")
    _join_to_stable(m)
    with pytest.raises(KafkaError) as err:
        m.on_heartbeat_response(ErrorCode.FENCED_INSTANCE_ID, 10)
    assert err.value.code == ErrorCode.FENCED_INSTANCE_ID


def test_sync_rebalance_in_progress_rejoins() -> None:
    m = _member()
    m.join_request([])
    m.on_join_response(_join_ok(leader="other"))
    assert m.join_result is not None and not m.join_result.is_leader
    assert m.on_sync_response(SyncGroupResponse(error_code=27), 0) is Next.JOIN


def test_leave_request_and_static_members() -> None:
    m = _member()
    _join_to_stable(m)
    req = m.leave_request()
    assert req is not None and req.members[0].member_id == "m-1"
    assert m.member_id == "" and m.rejoin_needed
    s = _member(group_instance_id="static")
    _join_to_stable(s)
    assert s.leave_request() is None  # static members stay until the session times out


def test_join_errors_that_are_fatal() -> None:
    m = _member()
    m.join_request([])
    with pytest.raises(KafkaError) as err:
        m.on_join_response(JoinGroupResponse(error_code=ErrorCode.INCONSISTENT_GROUP_PROTOCOL))
    assert err.value.code == ErrorCode.INCONSISTENT_GROUP_PROTOCOL


@pytest.mark.parametrize("version", [0, 1, 2, 3])
def test_subscription_round_trips_every_version(version: int) -> None:
    sub = Subscription(("a", "b"), (TP("a", 1), TP("b", 0)), generation_id=4, user_data=b"u")
    back = decode_subscription(encode_subscription(sub, version))
    assert back.topics == ("a", "b") and back.user_data == b"u"
    if version >= 1:
        assert set(back.owned_partitions) == {TP("a", 1), TP("b", 0)}
    if version >= 2:
        assert back.generation_id == 4


def test_assignment_round_trip() -> None:
    tps = [TP("a", 2), TP("a", 0), TP("b", 1)]
    assert sorted(decode_assignment(encode_assignment(tps))) == sorted(tps)
    assert decode_assignment(b"") == []
