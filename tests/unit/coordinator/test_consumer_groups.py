"""Consumer groups (KIP-848): joining, reconciliation, leaving, fencing, static members,
subscription changes and regexes, with a fake clock and members that behave as KIP-848
consumers; every step checks that no partition is owned by two members."""

from __future__ import annotations

from strom.coordinator.group.consumer.group import ConsumerGroupState as CS
from strom.coordinator.group.consumer.member import MemberState
from strom.protocol.errors import ErrorCode as E
from strom.protocol.generated.consumer_group_heartbeat import (
    ConsumerGroupHeartbeatRequest as Req,
)
from tests.unit.coordinator.consumer_harness import (
    ConsumerHarness,
    SimMember,
    assert_disjoint,
    image,
    settle,
)


def members(h: ConsumerHarness, n: int, **kwargs: object) -> list[SimMember]:
    return [SimMember(h, f"m{i}", **kwargs) for i in range(n)]  # type: ignore[arg-type]


def counts(ms: list[SimMember]) -> list[int]:
    return [len(m.owned) for m in ms]


def test_a_single_member_gets_every_partition() -> None:
    h = ConsumerHarness({"t": 6})
    m = SimMember(h, "m0", topics=["t"])
    resp = m.join()
    assert resp.error_code == E.NONE and resp.member_id == "m0"
    assert resp.member_epoch == 1 and resp.heartbeat_interval_ms == 5000
    assert m.owned == {("t", p) for p in range(6)}
    g = h.cgroup()
    assert (g.group_epoch, g.assignment_epoch, g.state) == (1, 1, CS.STABLE)
    again = m.heartbeat()
    assert again.assignment is None and again.member_epoch == 1  # nothing changed


def test_a_second_member_gets_partitions_only_after_the_first_revoked_them() -> None:
    h = ConsumerHarness({"t": 6})
    a, b = members(h, 2, topics=["t"])
    a.join()
    b.join()
    assert b.epoch == 2 and b.owned == set()  # the target gives b three partitions ...
    assert h.cgroup().members["m1"].state is MemberState.UNRELEASED_PARTITIONS
    assert h.cgroup().state is CS.RECONCILING
    a.heartbeat()  # ... that a must revoke first
    assert a.epoch == 1 and len(a.owned) == 3
    assert h.cgroup().members["m0"].state is MemberState.UNREVOKED_PARTITIONS
    b.heartbeat()
    assert b.owned == set()  # still held by a
    a.heartbeat()  # a reports it no longer owns them
    assert a.epoch == 2
    b.heartbeat()
    assert len(b.owned) == 3 and b.owned.isdisjoint(a.owned)
    assert h.cgroup().state is CS.STABLE


def test_groups_of_one_three_and_eight_are_balanced_and_disjoint() -> None:
    for n in (1, 3, 8):
        h = ConsumerHarness({"t": 12, "u": 5})
        ms = members(h, n, topics=["t", "u"])
        for m in ms:
            m.join()
            assert_disjoint(ms)
        settle(ms)
        assert sorted(tp for m in ms for tp in m.owned) == sorted(
            [("t", p) for p in range(12)] + [("u", p) for p in range(5)]
        )
        assert max(counts(ms)) - min(counts(ms)) <= 1
        assert h.cgroup().state is CS.STABLE


def test_leave_moves_only_the_leavers_partitions() -> None:
    h = ConsumerHarness({"t": 12})
    ms = members(h, 4, topics=["t"])
    for m in ms:
        m.join()
    settle(ms)
    before = {m.member_id: set(m.owned) for m in ms}
    resp = ms[3].leave()
    assert resp.error_code == E.NONE and resp.member_epoch == -1
    assert "m3" not in h.cgroup().members
    rest = ms[:3]
    settle(rest)
    for m in rest:
        assert before[m.member_id] <= m.owned  # kept everything it had
    assert sum(counts(rest)) == 12 and counts(rest) == [4, 4, 4]


def test_join_moves_only_what_the_newcomer_takes() -> None:
    h = ConsumerHarness({"t": 12})
    ms = members(h, 3, topics=["t"])
    for m in ms:
        m.join()
    settle(ms)
    before = {m.member_id: set(m.owned) for m in ms}
    newcomer = SimMember(h, "m9", topics=["t"])
    newcomer.join()
    everyone = [*ms, newcomer]
    settle(everyone)
    for m in ms:
        assert m.owned <= before[m.member_id] and len(m.owned) == 3
    assert len(newcomer.owned) == 3


def test_epoch_checks_fence_stale_members_and_accept_the_previous_epoch() -> None:
    h = ConsumerHarness({"t": 4})
    a, b = members(h, 2, topics=["t"])
    a.join()
    b.join()
    settle([a, b])
    g = h.cgroup()
    assert a.epoch == g.members["m0"].member_epoch
    ahead = h.heartbeat_req(Req(group_id="g", member_id="m0", member_epoch=a.epoch + 1))
    assert ahead.error_code == E.FENCED_MEMBER_EPOCH
    # the previous epoch with a subset of the partitions: the bump was lost, accepted
    m = g.members["m0"]
    prev = Req(
        group_id="g",
        member_id="m0",
        member_epoch=m.previous_member_epoch,
        topic_partitions=[Req.TopicPartitions(t, sorted(ps)) for t, ps in m.assigned.items()],
    )
    assert h.heartbeat_req(prev).error_code == E.NONE
    unknown = h.heartbeat_req(Req(group_id="g", member_id="zz", member_epoch=3))
    assert unknown.error_code == E.UNKNOWN_MEMBER_ID
    missing = h.heartbeat_req(Req(group_id="nope", member_id="zz", member_epoch=3))
    assert missing.error_code == E.GROUP_ID_NOT_FOUND


def test_session_timeout_fences_and_the_others_take_over() -> None:
    h = ConsumerHarness({"t": 4})
    a, b = members(h, 2, topics=["t"])
    a.join()
    b.join()
    settle([a, b])
    epoch = h.cgroup().group_epoch
    h.advance(30_000)
    a.heartbeat()
    h.advance(20_000)  # b silent for 50 s > 45 s
    assert "m1" not in h.cgroup().members
    assert h.cgroup().group_epoch == epoch + 1
    settle([a])
    assert len(a.owned) == 4
    assert b.heartbeat().error_code == E.UNKNOWN_MEMBER_ID


def test_rebalance_timeout_fences_a_member_that_does_not_revoke() -> None:
    h = ConsumerHarness({"t": 4})
    a, b = members(h, 2, topics=["t"])
    a.join()
    b.join()
    a.heartbeat(full=False)
    assert h.cgroup().members["m0"].state is MemberState.UNREVOKED_PARTITIONS
    h.advance(29_000)
    b.heartbeat()
    assert "m0" in h.cgroup().members
    h.advance(2_000)  # 31 s > its 30 s rebalance timeout
    assert "m0" not in h.cgroup().members
    settle([b])
    assert len(b.owned) == 4


def test_static_member_leaves_with_minus_two_and_gets_its_assignment_back() -> None:
    h = ConsumerHarness({"t": 6})
    a = SimMember(h, "a1", topics=["t"], instance_id="ia")
    b = SimMember(h, "b1", topics=["t"], instance_id="ib")
    a.join()
    b.join()
    settle([a, b])
    epoch, owned = h.cgroup().group_epoch, set(a.owned)
    resp = a.leave(-2)
    assert resp.member_epoch == -2
    assert h.cgroup().members["a1"].member_epoch == -2
    settle([b])
    assert len(b.owned) == 3  # a's partitions are kept for it
    dup = SimMember(h, "a-dup", topics=["t"], instance_id="ib")
    assert dup.join().error_code == E.UNRELEASED_INSTANCE_ID
    back = SimMember(h, "a2", topics=["t"], instance_id="ia")
    assert back.join().error_code == E.NONE
    assert back.owned == owned and h.cgroup().group_epoch == epoch
    assert "a1" not in h.cgroup().members
    assert h.cgroup().static_members["ia"] == "a2"
    old = h.heartbeat_req(
        Req(group_id="g", member_id="a1", member_epoch=back.epoch, instance_id="ia")
    )
    assert old.error_code == E.FENCED_INSTANCE_ID


def test_a_static_member_that_stays_away_is_removed_after_its_session() -> None:
    h = ConsumerHarness({"t": 6})
    a = SimMember(h, "a1", topics=["t"], instance_id="ia")
    b = SimMember(h, "b1", topics=["t"])
    a.join()
    b.join()
    settle([a, b])
    a.leave(-2)
    h.advance(40_000)
    b.heartbeat()
    h.advance(10_000)
    assert "a1" not in h.cgroup().members
    settle([b])
    assert len(b.owned) == 6


def test_subscription_change_bumps_the_epoch_and_reassigns() -> None:
    h = ConsumerHarness({"t": 4, "u": 4})
    a = SimMember(h, "a", topics=["t"])
    a.join()
    assert {t for t, _ in a.owned} == {"t"}
    epoch = h.cgroup().group_epoch
    a.topics = ["t", "u"]
    a.heartbeat(full=True)
    assert h.cgroup().group_epoch == epoch + 1
    settle([a])
    assert len(a.owned) == 8
    a.topics = ["u"]
    a.heartbeat(full=True)
    settle([a])
    assert {t for t, _ in a.owned} == {"u"}


def test_regex_subscription_is_refreshed_when_topics_are_created() -> None:
    h = ConsumerHarness({"orders-1": 2, "other": 2})
    a = SimMember(h, "a", regex="orders-.*")
    a.join()
    assert a.owned == {("orders-1", 0), ("orders-1", 1)}
    assert h.cgroup().resolved_regexes["orders-.*"].topics == {"orders-1"}
    h.image = image({"orders-1": 2, "other": 2, "orders-2": 1})
    settle([a])
    assert ("orders-2", 0) in a.owned and len(a.owned) == 3
    h.image = image({"orders-2": 1, "other": 2})  # orders-1 deleted
    settle([a])
    assert a.owned == {("orders-2", 0)}


def test_request_errors() -> None:
    h = ConsumerHarness({"t": 2})
    base = {"group_id": "g", "member_id": "m", "member_epoch": 0, "rebalance_timeout_ms": 1000}

    def send(**kwargs: object) -> int:
        fields = {**base, "subscribed_topic_names": ["t"], "topic_partitions": [], **kwargs}
        return h.heartbeat_req(Req(**fields)).error_code  # type: ignore[arg-type]

    assert send(server_assignor="sticky") == E.UNSUPPORTED_ASSIGNOR
    assert send(subscribed_topic_names=None, subscribed_topic_regex="a(?=b)") == (
        E.INVALID_REGULAR_EXPRESSION
    )
    assert send(subscribed_topic_names=None, subscribed_topic_regex="(") == (
        E.INVALID_REGULAR_EXPRESSION
    )
    assert send(member_id="") == E.INVALID_REQUEST  # v1: the client makes the member id
    assert send(rebalance_timeout_ms=-1) == E.INVALID_REQUEST
    assert send(topic_partitions=None) == E.INVALID_REQUEST
    assert send(subscribed_topic_names=None) == E.INVALID_REQUEST
    assert send(member_epoch=-3) == E.INVALID_REQUEST
    assert send(group_id="") == E.INVALID_REQUEST
    assert not h.shard.consumer_groups  # nothing was created by the refused requests


def test_version_zero_generates_the_member_id() -> None:
    h = ConsumerHarness({"t": 2})
    req = Req(
        group_id="g",
        member_id="",
        member_epoch=0,
        rebalance_timeout_ms=1000,
        subscribed_topic_names=["t"],
        topic_partitions=[],
    )
    resp = h.heartbeat_req(req, version=0)
    assert resp.error_code == E.NONE and resp.member_id == "gen-1"


def test_group_max_size() -> None:
    h = ConsumerHarness({"t": 2}, consumer_max_size=2)
    a, b, c = members(h, 3, topics=["t"])
    a.join()
    b.join()
    assert c.join().error_code == E.GROUP_MAX_SIZE_REACHED
    assert a.heartbeat().error_code == E.NONE


def test_a_failed_write_leaves_the_group_as_it_was() -> None:
    h = ConsumerHarness({"t": 4})
    a = SimMember(h, "a", topics=["t"])
    a.join()
    h.write_error = E.NOT_LEADER_OR_FOLLOWER
    b = SimMember(h, "b", topics=["t"])
    assert b.join().error_code == E.NOT_COORDINATOR
    assert set(h.cgroup().members) == {"a"} and h.cgroup().group_epoch == 1
    h.write_error = E.NONE
    assert b.join().error_code == E.NONE


def test_replay_rebuilds_the_same_state() -> None:
    h = ConsumerHarness({"t": 6, "orders-x": 2})
    a = SimMember(h, "a", topics=["t"], instance_id="ia", rack_id="r1")
    b = SimMember(h, "b", regex="orders-.*")
    c = SimMember(h, "c", topics=["t"])
    for m in (a, b, c):
        m.join()
    b.heartbeat()
    a.heartbeat()  # mid-reconciliation
    c.leave()
    a.leave(-2)
    for live_group, loaded in ((h.cgroup(), h.replayed().consumer_groups["g"]),):
        assert loaded.group_epoch == live_group.group_epoch
        assert loaded.assignment_epoch == live_group.assignment_epoch
        assert loaded.members == live_group.members
        assert loaded.target == live_group.target
        assert loaded.static_members == live_group.static_members
        assert loaded.subscription_metadata == live_group.subscription_metadata
        assert loaded.resolved_regexes == live_group.resolved_regexes
        assert loaded.partition_epochs == live_group.partition_epochs
        assert loaded.state == live_group.state


def test_a_fenced_member_rejoins_with_epoch_zero_and_its_id() -> None:
    h = ConsumerHarness({"t": 4})
    a, b = members(h, 2, topics=["t"])
    a.join()
    b.join()
    settle([a, b])
    stale = h.heartbeat_req(Req(group_id="g", member_id="m0", member_epoch=a.epoch + 7))
    assert stale.error_code == E.FENCED_MEMBER_EPOCH
    assert a.join().error_code == E.NONE  # same member id, epoch 0
    settle([a, b])
    assert len(a.owned) == 2 and len(b.owned) == 2
