"""The classic group state machine: joins, syncs, heartbeats, leaves, timeouts, fencing."""

from __future__ import annotations

import pytest

from strom.coordinator.group.state import (
    VALID_PREVIOUS_STATES,
    ClassicGroup,
    GroupState,
    IllegalStateTransition,
)
from strom.protocol.errors import ErrorCode as E
from strom.protocol.generated.leave_group import LeaveGroupRequest
from tests.unit.coordinator.harness import Harness

S = GroupState


def test_transition_table_allows_only_kafkas_transitions() -> None:
    for target, allowed in VALID_PREVIOUS_STATES.items():
        for source in GroupState:
            group = ClassicGroup("g", state=source)
            if source in allowed:
                group.transition_to(target, 5)
                assert group.state is target and group.state_timestamp_ms == 5
            else:
                with pytest.raises(IllegalStateTransition):
                    group.transition_to(target, 5)


def test_join_v4_requires_member_id_then_completes_and_syncs() -> None:
    h = Harness()
    first = h.responses[h.join()]
    assert first.error_code == E.MEMBER_ID_REQUIRED and first.member_id.startswith("client-")
    assert first.generation_id == -1
    handle = h.join(first.member_id)
    resp = h.responses[handle]
    assert resp.error_code == 0 and resp.generation_id == 1 and resp.leader == first.member_id
    assert resp.protocol_name == "range" and resp.protocol_type == "consumer"
    assert [(m.member_id, m.metadata) for m in resp.members] == [(first.member_id, b"range-meta")]
    assert h.state() is S.COMPLETING_REBALANCE
    sync = h.responses[h.sync(first.member_id, 1, {first.member_id: b"assign"})]
    assert sync.error_code == 0 and sync.assignment == b"assign"
    assert h.state() is S.STABLE and len(h.log) == 1


def test_join_v3_adds_member_directly() -> None:
    h = Harness()
    resp = h.responses[h.join(v4=False)]
    assert resp.error_code == 0 and resp.generation_id == 1


def test_initial_rebalance_delay_waits_and_extends_for_new_members() -> None:
    h = Harness(initial_rebalance_delay_ms=3000)
    a = h.join_new(rebalance_ms=10_000)
    ha = h.last_join
    h.advance(2000)
    b = h.join_new(rebalance_ms=10_000)
    hb = h.last_join
    h.advance(1000)  # first delay over, a member arrived: delayed again
    assert ha not in h.responses and h.state() is S.PREPARING_REBALANCE
    h.advance(3000)
    assert h.responses[ha].generation_id == h.responses[hb].generation_id == 1
    assert {a, b} == set(h.group().members)
    leader = h.responses[ha].leader
    assert len(h.responses[ha if leader == a else hb].members) == 2
    assert h.responses[hb if leader == a else ha].members == []


def test_initial_delay_is_capped_by_rebalance_timeout() -> None:
    h = Harness(initial_rebalance_delay_ms=3000)
    h.join_new(rebalance_ms=4000)
    first = h.last_join
    h.advance(2000)
    h.join_new(rebalance_ms=4000)
    h.advance(1000)
    assert first not in h.responses
    h.advance(1000)  # remaining 1000 ms after the first 3000 ms delay
    assert h.responses[first].error_code == 0


def test_new_member_triggers_rebalance_and_heartbeats_say_so() -> None:
    h = Harness()
    [a] = h.form(1)
    b = h.join_new()
    hb = h.last_join
    assert h.state() is S.PREPARING_REBALANCE
    assert h.heartbeat(a, 1) == E.REBALANCE_IN_PROGRESS
    assert h.responses[h.sync(a, 1)].error_code == E.REBALANCE_IN_PROGRESS
    ha = h.join(a)
    assert h.responses[ha].generation_id == h.responses[hb].generation_id == 2
    assert h.state() is S.COMPLETING_REBALANCE
    assert h.heartbeat(b, 2) == E.NONE


def test_follower_sync_waits_for_leader_and_missing_members_get_empty_assignment() -> None:
    h = Harness()
    a, b = h.join_new(), h.join_new()
    h.join(a)
    gen, leader = h.group().generation_id, h.group().leader_id
    follower = b if leader == a else a
    hf = h.sync(follower, gen)
    assert hf not in h.responses
    h.sync(leader, gen, {leader: b"L"})
    assert h.responses[hf].error_code == 0 and h.responses[hf].assignment == b""
    assert h.state() is S.STABLE


def test_stable_follower_rejoin_with_same_metadata_gets_current_generation() -> None:
    h = Harness()
    a, b = h.form(2)
    follower = b if h.group().leader_id == a else a
    resp = h.responses[h.join(follower)]
    assert resp.error_code == 0 and resp.generation_id == 2 and resp.members == []
    assert h.state() is S.STABLE
    h.join(h.group().leader_id)  # the leader rejoining forces a rebalance
    assert h.state() is S.PREPARING_REBALANCE


def test_session_timeout_removes_silent_member_and_rebalances() -> None:
    h = Harness()
    a, b = h.form(2, session_ms=6000)
    h.advance(4000)
    assert h.heartbeat(a, 2) == E.NONE
    h.advance(2500)  # b silent for 6500 ms
    assert set(h.group().members) == {a}
    assert h.state() is S.PREPARING_REBALANCE
    assert h.heartbeat(a, 2) == E.REBALANCE_IN_PROGRESS
    assert h.responses[h.join(a)].generation_id == 3
    assert h.heartbeat(b, 3) == E.UNKNOWN_MEMBER_ID


def test_timers_due_together_fire_against_the_deadlines_of_the_moment() -> None:
    """The silent member's heartbeat expiry completes the join, which gives the members
    that rejoined new heartbeat deadlines; their old ones, due in the same tick, no
    longer count (R10, a rebalance storm, found them removed as failed)."""
    h = Harness()
    _silent, b, c = h.form(3, session_ms=6000)  # the same heartbeat deadline for all
    d = h.join_new(session_ms=6000)  # a rebalance
    h.join(b, session_ms=6000)
    h.join(c, session_ms=6000)
    assert h.state() is S.PREPARING_REBALANCE
    h.advance(6000)  # the silent one (the first timer of the tick) expires
    assert set(h.group().members) == {b, c, d}
    assert h.state() is S.COMPLETING_REBALANCE
    assert h.heartbeat(b, h.group().generation_id) == E.NONE


def test_rebalance_timeout_drops_members_that_do_not_rejoin() -> None:
    h = Harness()
    a, b = h.form(2, rebalance_ms=20_000, session_ms=30_000)
    h.join_new(session_ms=30_000, rebalance_ms=20_000)
    h.join(a, rebalance_ms=20_000, session_ms=30_000)
    h.advance(19_999)
    assert h.state() is S.PREPARING_REBALANCE
    h.advance(1)
    assert h.state() is S.COMPLETING_REBALANCE and b not in h.group().members


def test_members_that_never_sync_are_removed_after_rebalance_timeout() -> None:
    h = Harness()
    a, b = h.join_new(rebalance_ms=5000), h.join_new(rebalance_ms=5000)
    h.join(a, rebalance_ms=5000)
    gen, leader = h.group().generation_id, h.group().leader_id
    h.sync(leader, gen, {})
    assert h.state() is S.STABLE
    h.advance(5000)
    follower = b if leader == a else a
    assert follower not in h.group().members and h.state() is S.PREPARING_REBALANCE


def test_leave_group_rebalances_immediately_and_last_leave_empties_group() -> None:
    h = Harness()
    a, b = h.form(2)
    resp = h.leave((b, None))
    assert resp.members[0].error_code == 0
    assert h.state() is S.PREPARING_REBALANCE
    assert h.responses[h.join(a)].generation_id == 3
    resp = h.leave((a, None))
    assert h.state() is S.EMPTY and h.group().generation_id == 4
    assert h.leave(("nobody", None)).members[0].error_code == E.UNKNOWN_MEMBER_ID
    assert h.leave(("x", None), group="unknown").members[0].error_code == E.UNKNOWN_MEMBER_ID


def test_errors_unknown_group_member_generation_protocol() -> None:
    h = Harness()
    assert h.heartbeat("m", 1, group="nope") == E.UNKNOWN_MEMBER_ID
    assert h.responses[h.join("m", group="nope")].error_code == E.UNKNOWN_MEMBER_ID
    assert h.responses[h.sync("m", 1, group="nope")].error_code == E.UNKNOWN_MEMBER_ID
    assert h.responses[h.join(group="")].error_code == E.INVALID_GROUP_ID
    assert h.responses[h.join(session_ms=10)].error_code == E.INVALID_SESSION_TIMEOUT
    [a] = h.form(1)
    assert h.heartbeat(a, 7) == E.ILLEGAL_GENERATION
    assert h.responses[h.sync(a, 0)].error_code == E.ILLEGAL_GENERATION
    assert h.heartbeat("stranger", 1) == E.UNKNOWN_MEMBER_ID
    bad_type = h.responses[h.join(protocol_type="connect")]
    assert bad_type.error_code == E.INCONSISTENT_GROUP_PROTOCOL
    no_common = h.responses[h.join(protocols=[("sticky", b"")])]
    assert no_common.error_code == E.INCONSISTENT_GROUP_PROTOCOL
    empty = h.responses[h.join(group="other", protocols=[])]
    assert empty.error_code == E.INCONSISTENT_GROUP_PROTOCOL


def test_protocol_selection_takes_common_protocol_most_preferred() -> None:
    h = Harness()
    a = h.join_new(protocols=[("roundrobin", b"1"), ("range", b"1")])
    b = h.join_new(protocols=[("range", b"2"), ("roundrobin", b"2")])
    c = h.join_new(protocols=[("roundrobin", b"3")])
    h.join(a, protocols=[("roundrobin", b"1"), ("range", b"1")])
    h.join(b, protocols=[("range", b"2"), ("roundrobin", b"2")])
    assert h.group().protocol_name == "roundrobin" and c in h.group().members


def test_group_max_size() -> None:
    h = Harness(max_size=2)
    h.form(2)
    first = h.responses[h.join()]
    assert first.error_code == E.GROUP_MAX_SIZE_REACHED
    assert len(h.group().members) == 2 and h.state() is S.STABLE


def test_pending_member_expires_after_session_timeout() -> None:
    h = Harness()
    pending = h.responses[h.join(session_ms=6000)].member_id
    assert pending in h.group().pending_members
    h.advance(6000)
    assert pending not in h.group().pending_members
    assert h.responses[h.join(pending)].error_code == E.UNKNOWN_MEMBER_ID


def test_static_member_restart_keeps_assignment_without_rebalance() -> None:
    h = Harness()
    first = h.responses[h.join(instance="i1")]
    assert first.error_code == 0 and first.member_id.startswith("i1-")
    old = first.member_id
    h.sync(old, 1, {old: b"mine"})
    assert h.state() is S.STABLE
    again = h.responses[h.join(instance="i1")]  # restarted: unknown member id, same instance
    new = again.member_id
    assert again.error_code == 0 and new != old and again.generation_id == 1
    assert again.leader == old and again.members == []  # pre-v9: the old leader id
    assert h.state() is S.STABLE and h.group().generation_id == 1
    assert h.responses[h.sync(new, 1, instance="i1")].assignment == b"mine"
    assert h.heartbeat(old, 1, instance="i1") == E.FENCED_INSTANCE_ID
    assert h.heartbeat(new, 1, instance="i1") == E.NONE
    assert h.responses[h.join(old, instance="i1")].error_code == E.FENCED_INSTANCE_ID
    assert h.responses[h.sync(old, 1, instance="i1")].error_code == E.FENCED_INSTANCE_ID
    assert h.leave((old, "i1")).members[0].error_code == E.FENCED_INSTANCE_ID


def test_static_leader_rejoin_v9_skips_assignment() -> None:
    h = Harness()
    old = h.responses[h.join(instance="i1")].member_id
    h.sync(old, 1, {old: b"x"})
    again = h.responses[h.join(instance="i1", v9=True)]
    assert again.skip_assignment and again.leader == again.member_id
    assert len(again.members) == 1


def test_static_member_kept_through_rebalance_and_removable_by_instance_id() -> None:
    h = Harness()
    s = h.responses[h.join(instance="i1", session_ms=60_000)].member_id
    h.sync(s, 1, {s: b"x"})
    d = h.join_new()
    h.advance(30_000)  # the static member does not rejoin within the rebalance timeout
    assert s in h.group().members and d in h.group().members
    assert h.state() is S.COMPLETING_REBALANCE
    assert h.leave(("", "i1")).members[0].error_code == 0
    assert s not in h.group().members and "i1" not in h.group().static_members


def test_static_member_rejoin_while_awaiting_join_fences_old_request() -> None:
    h = Harness(initial_rebalance_delay_ms=1000)
    h1 = h.join(instance="i1")
    h2 = h.join(instance="i1")
    assert h.responses[h1].error_code == E.FENCED_INSTANCE_ID
    h.advance(1000)
    assert h.responses[h2].error_code == 0


def test_store_failure_on_sync_propagates_error_and_rebalances() -> None:
    h = Harness()
    a = h.join_new()
    h.write_error = E.NOT_LEADER_OR_FOLLOWER
    resp = h.responses[h.sync(a, 1, {a: b"x"})]
    assert resp.error_code == E.NOT_COORDINATOR
    assert h.state() is S.PREPARING_REBALANCE


def test_the_last_member_gone_empties_the_group_at_once() -> None:
    # Kafka's prepareRebalance tries to complete the join at once (tryCompleteElseWatch):
    # with no member left the group is Empty before any timer fires, so a DeleteGroups
    # right after a consumer's close, or right after its session expired, succeeds
    h = Harness()
    [a] = h.form(1)
    req = LeaveGroupRequest(group_id="g", members=[LeaveGroupRequest.MemberIdentity(a, None)])
    h.run(h.shard.leave_group(1_000, req, h.now))  # no tick after it
    assert h.state() is S.EMPTY
    [b] = h.form(1, session_ms=6_000)
    h.advance(5_999)
    assert h.state() is S.STABLE
    h.advance(1)  # the session's deadline: one tick removes the member and empties the group
    assert h.state() is S.EMPTY and b not in h.group().members


def test_the_runtime_sleeps_until_the_earliest_timer() -> None:
    from strom.broker.group_runtime import sleep_until

    assert sleep_until(1_000, [], 0.05) == 0.05
    assert sleep_until(1_000, [1_020, 1_007], 0.05) == 0.007
    assert sleep_until(1_000, [990], 0.05) == 0.0
    assert sleep_until(1_000, [9_000], 0.05) == 0.05
