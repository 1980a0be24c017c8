"""Transactional offset commits in the group coordinator: pending until the marker."""

from __future__ import annotations

from strom.coordinator.group.config import GroupConfig
from strom.coordinator.group.coordinator import GroupCoordinatorShard
from strom.coordinator.group.offsets import OffsetCommit
from strom.protocol.errors import ErrorCode
from tests.unit.coordinator.harness import Harness

NOW = 1_700_000_000_000


def _shard() -> GroupCoordinatorShard:
    return GroupCoordinatorShard(GroupConfig())


def _commit(shard: GroupCoordinatorShard, pid: int, offset: int) -> list[tuple[bytes, bytes]]:
    assert shard.txn_commit_error("g", -1, "", None, NOW) is None
    errors, pending, records = shard.txn_offset_records(
        "g", [OffsetCommit("t", 0, offset), OffsetCommit("t", 1, offset + 1)], NOW
    )
    assert errors == {}
    shard.add_pending_txn_offsets(pid, "g", pending)
    return [(r.key, r.value) for r in records if r.value is not None]


def test_offsets_become_visible_only_on_commit() -> None:
    shard = _shard()
    _commit(shard, 7, 10)
    assert shard.fetch_offsets("g", [("t", 0)]) == {("t", 0): None}
    assert shard.has_pending_txn_offsets("g", ("t", 0))
    shard.complete_txn(7, commit=True)
    got = shard.fetch_offsets("g", [("t", 0), ("t", 1)])
    assert [o.offset if o else None for o in got.values()] == [10, 11]
    assert not shard.has_pending_txn_offsets("g", ("t", 0))


def test_offsets_are_dropped_on_abort() -> None:
    shard = _shard()
    _commit(shard, 7, 10)
    shard.complete_txn(7, commit=False)
    assert shard.fetch_offsets("g", [("t", 0)]) == {("t", 0): None}
    shard.complete_txn(8, commit=True)  # a marker of another producer changes nothing


def test_replay_of_transactional_records_and_markers() -> None:
    live = _shard()
    records = _commit(live, 7, 10)
    loaded = _shard()
    for key, value in records:
        loaded.replay_txn(7, key, value)
    assert loaded.fetch_offsets("g", [("t", 0)]) == {("t", 0): None}
    loaded.complete_txn(7, commit=True)
    assert loaded.fetch_offsets("g", [("t", 0)])[("t", 0)] is not None


def test_member_checks_of_an_empty_group() -> None:
    shard = _shard()
    assert shard.txn_commit_error("g", -1, "", None, NOW) is None  # creates the group
    # generation -1 to an empty group: any member id (Kafka's validateOffsetCommit)
    assert shard.txn_commit_error("g", -1, "stranger", None, NOW) is None
    # a generation names a member, which must be one
    assert shard.txn_commit_error("g", 5, "", None, NOW) == ErrorCode.UNKNOWN_MEMBER_ID
    assert shard.txn_commit_error("g", 5, "stranger", None, NOW) == ErrorCode.UNKNOWN_MEMBER_ID


def test_member_checks_of_a_group_with_members() -> None:
    h = Harness()
    [member] = h.form(1)
    generation = h.group().generation_id
    shard = h.shard
    # an older TxnOffsetCommit names no member: accepted (only non-transactional commits
    # to a group with members must come from a member)
    assert shard.txn_commit_error("g", -1, "", None, h.now) is None
    assert shard.txn_commit_error("g", -1, "stranger", None, h.now) == ErrorCode.UNKNOWN_MEMBER_ID
    assert shard.txn_commit_error("g", generation, member, None, h.now) is None
    assert (
        shard.txn_commit_error("g", generation + 1, member, None, h.now)
        == ErrorCode.ILLEGAL_GENERATION
    )
    assert shard.txn_commit_error("g", generation, member, "instance", h.now) == (
        ErrorCode.UNKNOWN_MEMBER_ID
    )
