"""Consumer groups through the other group APIs: OffsetCommit / OffsetFetch member epoch
checks, ConsumerGroupDescribe, ListGroups types, DescribeGroups, DeleteGroups,
OffsetDelete, offset expiry, and classic groups of the same id."""

from __future__ import annotations

from strom.coordinator.group.offsets import CommitRequest, OffsetCommit
from strom.protocol.errors import ErrorCode as E
from tests.unit.coordinator.consumer_harness import ConsumerHarness, SimMember, settle, topic_id


def commit(
    h: ConsumerHarness, member_id: str = "", epoch: int = -1, version: int = 9, group: str = "g"
) -> E:
    req = CommitRequest(group, epoch, member_id, None, -1, [OffsetCommit("t", 0, 5)], version)
    handle = h.call(lambda hd: h.shard.commit_offsets(hd, req, h.now))
    return E(h.responses[handle][("t", 0)])


def formed(**config: int) -> tuple[ConsumerHarness, SimMember, SimMember]:
    h = ConsumerHarness({"t": 4}, **config)
    a, b = SimMember(h, "a", topics=["t"]), SimMember(h, "b", topics=["t"])
    a.join()
    b.join()
    settle([a, b])
    return h, a, b


def test_offset_commit_checks_the_member_epoch() -> None:
    h, a, _ = formed()
    assert commit(h, "a", a.epoch) == E.NONE
    assert commit(h, "a", a.epoch - 1) == E.STALE_MEMBER_EPOCH
    assert commit(h, "zz", a.epoch) == E.UNKNOWN_MEMBER_ID
    assert commit(h) == E.UNKNOWN_MEMBER_ID  # an admin commit needs an empty group
    assert commit(h, "a", a.epoch, version=8) == E.UNSUPPORTED_VERSION
    assert h.shard.fetch_offsets("g", [("t", 0)])[("t", 0)] is not None
    assert h.shard.fetch_member_error("g", "a", a.epoch) is None
    assert h.shard.fetch_member_error("g", "a", a.epoch + 1) == E.STALE_MEMBER_EPOCH
    assert h.shard.fetch_member_error("g", "zz", 1) == E.UNKNOWN_MEMBER_ID
    assert h.shard.fetch_member_error("g", None, -1) is None
    h.shard.consumer_groups["g"].members.clear()  # as if everyone left
    assert commit(h) == E.NONE


def test_transactional_commits_check_the_member_epoch_too() -> None:
    h, a, _ = formed()
    assert h.shard.txn_commit_error("g", a.epoch, "a", None, h.now) is None
    assert h.shard.txn_commit_error("g", a.epoch + 5, "a", None, h.now) == E.STALE_MEMBER_EPOCH


def test_describe_lists_epochs_members_and_assignments() -> None:
    h, a, _ = formed()
    d = h.shard.consumer_group_describe("g", with_operations=True)
    assert d.error_code == E.NONE and d.group_state == "Stable"
    assert (d.group_epoch, d.assignment_epoch, d.assignor_name) == (2, 2, "uniform")
    assert [m.member_id for m in d.members] == ["a", "b"]
    got = {m.member_id: m for m in d.members}
    assert got["a"].assignment.topic_partitions[0].topic_name == "t"
    assert set(got["a"].assignment.topic_partitions[0].partitions) == {p for _, p in a.owned}
    assert got["b"].target_assignment.topic_partitions[0].topic_id == topic_id("t")
    assert got["a"].member_type == 1 and got["a"].subscribed_topic_names == ["t"]
    assert d.authorized_operations == 3400
    missing = h.shard.consumer_group_describe("nope", with_operations=False)
    assert missing.error_code == E.GROUP_ID_NOT_FOUND
    # DescribeGroups (classic) sees no classic group of that id: Dead, as Kafka answers
    assert h.shard.describe_group("g").group_state == "Dead"


def test_list_groups_filters_by_type_and_state() -> None:
    h, _, _ = formed()
    h.join_new(group="classic")
    listed = {g.group_id: g for g in h.shard.list_groups()}
    assert listed["g"].group_type == "consumer" and listed["g"].protocol_type == "consumer"
    assert listed["classic"].group_type == "classic"
    assert [g.group_id for g in h.shard.list_groups(types=["consumer"])] == ["g"]
    assert [g.group_id for g in h.shard.list_groups(types=["Classic"])] == ["classic"]
    assert [g.group_id for g in h.shard.list_groups(states=["stable"])] == ["g"]


def test_delete_group_and_offsets() -> None:
    h, a, b = formed()
    assert commit(h, "a", a.epoch) == E.NONE
    errors, _ = h.shard.delete_groups(["g"], h.now)
    assert errors == {"g": E.NON_EMPTY_GROUP}
    error, partitions, _ = h.shard.offset_delete("g", [("t", 0), ("x", 0)])
    assert error == E.NONE
    assert partitions == {("t", 0): E.GROUP_SUBSCRIBED_TO_TOPIC, ("x", 0): E.NONE}
    a.leave()
    b.leave()
    errors, result = h.shard.delete_groups(["g"], h.now)
    assert errors == {"g": E.NONE} and "g" not in h.shard.consumer_groups
    h.run(result)
    assert "g" not in h.replayed().consumer_groups and "g" not in h.replayed().groups


def test_expiry_deletes_an_empty_group_once_its_offsets_expired() -> None:
    h, a, b = formed(offsets_retention_ms=30_000)
    assert commit(h, "a", a.epoch) == E.NONE
    for _ in range(2):
        h.advance(20_000)
        a.heartbeat()
        b.heartbeat()
    h.run(h.shard.expire(h.now))
    assert h.shard.fetch_offsets("g", None)  # still subscribed: kept
    a.leave()
    b.leave()
    h.run(h.shard.expire(h.now))
    assert "g" not in h.shard.consumer_groups and not h.shard.fetch_offsets("g", None)


def test_an_empty_classic_group_gives_way_and_a_busy_one_does_not() -> None:
    h = ConsumerHarness({"t": 2})
    h.join_new(group="busy")
    busy = SimMember(h, "x", topics=["t"], group="busy")
    assert busy.join().error_code == E.GROUP_ID_NOT_FOUND
    h.commit({("t", 0): (3, "")}, group="offsets-only")
    m = SimMember(h, "m", topics=["t"], group="offsets-only")
    assert m.join().error_code == E.NONE
    assert "offsets-only" not in h.shard.groups
    assert h.shard.fetch_offsets("offsets-only", [("t", 0)])[("t", 0)] is not None
    loaded = h.replayed()
    assert "offsets-only" in loaded.consumer_groups and "offsets-only" not in loaded.groups


def test_a_classic_join_to_an_empty_consumer_group_converts_it() -> None:
    h = ConsumerHarness({"t": 2})
    m = SimMember(h, "m", topics=["t"])
    m.join()
    m.leave()
    h.join_new()
    assert "g" not in h.shard.consumer_groups and "g" in h.shard.groups
