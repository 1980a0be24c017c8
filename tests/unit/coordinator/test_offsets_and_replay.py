"""Offsets (commit, fetch, delete, expiry), admin calls, records and replay."""

from __future__ import annotations

import struct

from strom.common.hashing import coordinator_partition as partition_for
from strom.common.hashing import java_string_hash
from strom.coordinator.group.coordinator import GroupCoordinatorShard
from strom.coordinator.group.offsets import CommitRequest, OffsetCommit
from strom.coordinator.group.records import offset_commit_record
from strom.coordinator.group.state import GroupState
from strom.protocol.consumer_group_records import ConsumerGroupKey
from strom.protocol.errors import ErrorCode as E
from strom.protocol.group_records import (
    GroupMetadataValue,
    MemberMetadataValue,
    OffsetCommitValue,
    decode_group_metadata_value,
    decode_key,
    decode_offset_commit_value,
    encode_group_metadata_value,
    encode_offset_commit_value,
)
from tests.unit.coordinator.harness import Harness

S = GroupState


def test_standalone_commit_and_fetch_returns_metadata_exactly() -> None:
    h = Harness()
    errors = h.commit({("t", 0): (5, "métadata ✓"), ("t", 1): (7, None)})
    assert errors == {("t", 0): E.NONE, ("t", 1): E.NONE}
    got = h.shard.fetch_offsets("g", [("t", 0), ("t", 1), ("t", 2)])
    assert got[("t", 0)] is not None and got[("t", 0)].metadata == "métadata ✓"
    assert got[("t", 0)].offset == 5 and got[("t", 0)].leader_epoch == 3
    assert got[("t", 1)] is not None and got[("t", 1)].metadata == ""
    assert got[("t", 2)] is None
    assert list(h.shard.fetch_offsets("g", None)) == [("t", 0), ("t", 1)]
    assert h.shard.fetch_offsets("unknown", [("t", 0)]) == {("t", 0): None}
    assert h.state() is S.EMPTY


def test_commit_errors() -> None:
    h = Harness(offset_metadata_max_bytes=10)
    assert h.commit({("t", 0): (1, "x" * 11)}) == {("t", 0): E.OFFSET_METADATA_TOO_LARGE}
    assert h.commit({("t", 0): (1, "")}, group="new", generation=3) == {
        ("t", 0): E.ILLEGAL_GENERATION
    }
    a, b = h.form(2)
    assert h.commit({("t", 0): (1, "")}) == {("t", 0): E.UNKNOWN_MEMBER_ID}
    assert h.commit({("t", 0): (1, "")}, generation=9, member_id=a) == {
        ("t", 0): E.ILLEGAL_GENERATION
    }
    assert h.commit({("t", 0): (1, "")}, generation=2, member_id="x") == {
        ("t", 0): E.UNKNOWN_MEMBER_ID
    }
    assert h.commit({("t", 0): (1, "")}, generation=2, member_id=a) == {("t", 0): E.NONE}
    h.join_new()
    h.join(a)
    h.join(b)
    assert h.state() is S.COMPLETING_REBALANCE
    assert h.commit({("t", 0): (2, "")}, generation=3, member_id=a) == {
        ("t", 0): E.REBALANCE_IN_PROGRESS
    }
    h.write_error = E.KAFKA_STORAGE_ERROR
    h.join(a, protocols=[("range", b"changed")])  # new metadata: back to PreparingRebalance
    assert h.state() is S.PREPARING_REBALANCE  # where commits by current members are allowed
    assert h.commit({("t", 0): (3, "")}, generation=3, member_id=a) == {("t", 0): E.NOT_COORDINATOR}
    assert h.shard.fetch_offsets("g", [("t", 0)])[("t", 0)].offset == 1  # type: ignore[union-attr]


def test_an_empty_group_takes_commits_without_a_generation_whatever_the_member_id() -> None:
    # Kafka's validateOffsetCommit: generation -1 to an Empty group comes from an admin
    # client or a consumer without group management (a KIP-848 consumer that only assigns
    # sends its own member id): accepted, the second time too, when the group exists
    h = Harness()
    for _ in range(2):
        assert h.commit({("t", 0): (1, "")}, member_id="its-own-id") == {("t", 0): E.NONE}
    assert h.state() is S.EMPTY
    assert h.commit({("t", 0): (1, "")}, generation=0, member_id="its-own-id") == {
        ("t", 0): E.UNKNOWN_MEMBER_ID
    }
    h.form(1)
    assert h.commit({("t", 0): (1, "")}, member_id="its-own-id") == {("t", 0): E.UNKNOWN_MEMBER_ID}


def test_commit_to_unknown_partition() -> None:
    h = Harness()
    req = CommitRequest("g", partitions=[OffsetCommit("t", 9, 1), OffsetCommit("t", 0, 1)])
    handle = h.call(lambda hd: h.shard.commit_offsets(hd, req, h.now, lambda t, p: p < 3))
    assert h.responses[handle] == {("t", 9): E.UNKNOWN_TOPIC_OR_PARTITION, ("t", 0): E.NONE}


def test_offset_expiry_for_empty_group_then_group_removed() -> None:
    h = Harness(offsets_retention_ms=60_000)
    h.commit({("t", 0): (5, "m")})
    h.advance(59_000)
    h.run(h.shard.expire(h.now))
    assert "g" in h.shard.offsets
    h.advance(1_000)
    h.run(h.shard.expire(h.now))
    assert "g" not in h.shard.offsets and "g" not in h.shard.groups
    tombstones = [r for r in h.log if r.value is None]
    assert len(tombstones) == 2  # the offset and the group


def test_stable_consumer_group_keeps_subscribed_offsets() -> None:
    sub = struct.pack(">hih", 0, 1, 1) + b"t" + struct.pack(">i", -1)
    h = Harness(offsets_retention_ms=1000)
    [a] = h.form(1, protocols=[("range", sub)])
    h.commit({("t", 0): (1, ""), ("u", 0): (1, "")}, generation=1, member_id=a)
    h.advance(1000)
    h.heartbeat(a, 1)
    h.run(h.shard.expire(h.now))
    assert list(h.shard.offsets["g"]) == [("t", 0)]
    error, errors, _ = h.shard.offset_delete("g", [("t", 0)])
    assert error == E.NONE and errors == {("t", 0): E.GROUP_SUBSCRIBED_TO_TOPIC}


def test_delete_groups_and_offset_delete() -> None:
    h = Harness()
    h.commit({("t", 0): (5, "")}, group="empty")
    h.form(1)
    errors, result = h.shard.delete_groups(["empty", "g", "missing"], h.now)
    h.run(result)
    assert errors == {"empty": E.NONE, "g": E.NON_EMPTY_GROUP, "missing": E.GROUP_ID_NOT_FOUND}
    assert "empty" not in h.shard.groups and h.shard.describe_group("empty").group_state == "Dead"
    h.commit({("t", 0): (5, ""), ("t", 1): (6, "")}, group="e2")
    error, perrs, result = h.shard.offset_delete("e2", [("t", 0)])
    assert error == E.NONE and perrs == {("t", 0): E.NONE} and len(result.records) == 1
    assert list(h.shard.offsets["e2"]) == [("t", 1)]
    assert h.shard.offset_delete("missing", [("t", 0)])[0] == E.GROUP_ID_NOT_FOUND


def test_describe_and_list_groups() -> None:
    h = Harness()
    a, b = h.form(2)
    h.commit({("t", 0): (1, "")}, group="offsets-only")
    described = h.shard.describe_group("g")
    assert described.group_state == "Stable" and described.protocol_data == "range"
    assert {m.member_assignment for m in described.members} == {
        f"a-{a}".encode(),
        f"a-{b}".encode(),
    }
    assert {m.member_metadata for m in described.members} == {b"range-meta"}
    listed = {g.group_id: g.group_state for g in h.shard.list_groups()}
    assert listed == {"g": "Stable", "offsets-only": "Empty"}
    assert [g.group_id for g in h.shard.list_groups(["empty"])] == ["offsets-only"]
    assert h.shard.list_groups(types=["consumer"]) == []
    h.join_new()
    d = h.shard.describe_group("g")
    assert d.group_state == "PreparingRebalance" and d.protocol_data == ""
    assert all(m.member_metadata == b"" for m in d.members)


def test_replay_rebuilds_identical_state() -> None:
    h = Harness()
    a, b = h.form(2)
    h.commit({("t", 0): (10, "meta-0"), ("t", 1): (11, "meta-1")}, generation=2, member_id=a)
    h.commit({("t", 0): (12, "meta-2")}, generation=2, member_id=b)
    h.commit({("x", 0): (1, "")}, group="standalone")
    h.commit({("x", 0): (1, "")}, group="gone")
    h.run(h.shard.delete_groups(["gone"], h.now)[1])
    fresh = GroupCoordinatorShard(h.config)
    for record in h.log:
        fresh.replay(record.key, record.value)
    assert fresh.offsets == h.shard.offsets
    assert set(fresh.groups) == set(h.shard.groups) == {"g", "standalone"}
    old, new = h.group(), fresh.groups["g"]
    for field in ("state", "generation_id", "protocol_type", "protocol_name", "leader_id"):
        assert getattr(old, field) == getattr(new, field), field
    assert {m: x.assignment for m, x in old.members.items()} == {
        m: x.assignment for m, x in new.members.items()
    }
    fresh.on_loaded(h.now)
    h.shard.timers = fresh.timers  # members keep heartbeating against the loaded state
    assert h.heartbeat(a, 2) == E.NONE


def test_replay_of_emptied_group_and_group_tombstone() -> None:
    h = Harness()
    [a] = h.form(1)
    h.leave((a, None))
    assert h.state() is S.EMPTY
    fresh = GroupCoordinatorShard(h.config)
    for record in h.log:
        fresh.replay(record.key, record.value)
    assert fresh.groups["g"].state is S.EMPTY and fresh.groups["g"].generation_id == 2


def test_record_layouts_match_kafka() -> None:
    record = offset_commit_record("g", "t", 3, OffsetCommitValue(7, 2, "m", 1000))
    assert record.key == b"\x00\x01\x00\x01g\x00\x01t\x00\x00\x00\x03"
    assert record.value == struct.pack(">hqih", 3, 7, 2, 1) + b"m" + struct.pack(">q", 1000)
    assert decode_key(record.key) is not None
    v1 = OffsetCommitValue(7, -1, "m", 1000, 2000)
    assert decode_offset_commit_value(encode_offset_commit_value(v1)) == v1
    v0 = struct.pack(">hqh", 0, 9, 0) + struct.pack(">q", 5)
    assert decode_offset_commit_value(v0) == OffsetCommitValue(9, -1, "", 5)
    value = GroupMetadataValue(
        "consumer",
        3,
        "range",
        "m1",
        99,
        (MemberMetadataValue("m1", "i1", "c", "/h", 300, 10, b"sub", b"asg"),),
    )
    assert decode_group_metadata_value(encode_group_metadata_value(value)) == value
    assert decode_key(b"\x00\x05\x00\x01g\x00\x01m") == ConsumerGroupKey(5, "g", "m")
    assert decode_key(b"\x00\x09\x00\x01g") is None  # share groups' records are not ours


def test_group_placement_is_javas_string_hash() -> None:
    assert java_string_hash("") == 0
    assert java_string_hash("hello") == 99162322
    assert java_string_hash("polygenelubricants") == -(2**31)
    assert partition_for("polygenelubricants", 50) == 0
    assert partition_for("hello", 50) == 99162322 % 50
    assert java_string_hash("\U0001f600") == 0xD83D * 31 + 0xDE00  # UTF-16 surrogates
