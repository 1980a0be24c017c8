"""The records the group coordinator appends to ``__consumer_offsets``: a key and a
value (None: tombstone), encoded as strom.protocol.group_records lays them out."""

from __future__ import annotations

from dataclasses import dataclass

from strom.protocol.group_records import (
    GroupMetadataKey,
    GroupMetadataValue,
    OffsetCommitKey,
    OffsetCommitValue,
    encode_group_metadata_key,
    encode_group_metadata_value,
    encode_offset_commit_key,
    encode_offset_commit_value,
)


@dataclass(frozen=True, slots=True)
class CoordinatorRecord:
    key: bytes
    value: bytes | None  # None: tombstone


def offset_commit_record(
    group: str, topic: str, partition: int, value: OffsetCommitValue | None
) -> CoordinatorRecord:
    key = encode_offset_commit_key(OffsetCommitKey(group, topic, partition))
    return CoordinatorRecord(key, None if value is None else encode_offset_commit_value(value))


def group_metadata_record(group: str, value: GroupMetadataValue | None) -> CoordinatorRecord:
    key = encode_group_metadata_key(GroupMetadataKey(group))
    return CoordinatorRecord(key, None if value is None else encode_group_metadata_value(value))
