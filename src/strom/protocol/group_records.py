"""The keys and values of ``__consumer_offsets`` records, byte for byte as Kafka
writes them (the group coordinator writes and replays them; ``strom dump-log
--offsets-decoder`` prints them).

Every record key and value starts with an int16 version (Kafka's
group-coordinator/src/main/resources/common/message schemas)::

    key v0/v1  OffsetCommitKey     group string, topic string, partition int32
    key v2     GroupMetadataKey    group string
    value (offset commit)  v0/v2: offset int64, metadata string, commit_timestamp int64
                           v1:    ... commit_timestamp int64, expire_timestamp int64
                           v3:    offset int64, leader_epoch int32, metadata string,
                                  commit_timestamp int64
                           v4:    v3 fields, flexible (compact strings, tagged fields)
    value (group)  v0-v3: protocol_type string, generation int32, protocol nstring,
                          leader nstring, [v2+ current_state_timestamp int64],
                          members [member_id, [v3+ group_instance_id nstring],
                          client_id, client_host, [v1+ rebalance_timeout int32],
                          session_timeout int32, subscription bytes, assignment bytes]
                   v4:    v3 fields, flexible

A null value is a tombstone. strom writes offset values v3 (v1 when the commit
carries an expire timestamp), group values v3 and key versions 1 and 2, as
Kafka 2.3+ does, so Kafka's tools read strom's log and strom replays Kafka's.
Decoding raises only ``DecodeError``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from strom.common.types import TopicPartition
from strom.protocol.consumer_group_records import (
    RECORD_TYPES,
    ConsumerGroupKey,
    decode_key_body,
)
from strom.protocol.errors import DecodeError
from strom.protocol.generated.consumer_protocol_assignment import ConsumerProtocolAssignment
from strom.protocol.wire import Reader, Writer

OFFSET_COMMIT_KEY_VERSION = 1
GROUP_METADATA_KEY_VERSION = 2


@dataclass(frozen=True, slots=True)
class OffsetCommitKey:
    group: str
    topic: str
    partition: int


@dataclass(frozen=True, slots=True)
class GroupMetadataKey:
    group: str


@dataclass(frozen=True, slots=True)
class OffsetCommitValue:
    offset: int
    leader_epoch: int = -1
    metadata: str = ""
    commit_timestamp: int = -1
    expire_timestamp: int = -1  # -1: none (only value v1 carries one)


@dataclass(frozen=True, slots=True)
class MemberMetadataValue:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    rebalance_timeout: int
    session_timeout: int
    subscription: bytes
    assignment: bytes


@dataclass(frozen=True, slots=True)
class GroupMetadataValue:
    protocol_type: str
    generation: int
    protocol: str | None
    leader: str | None
    current_state_timestamp: int = -1
    members: tuple[MemberMetadataValue, ...] = field(default_factory=tuple)


# -- keys ------------------------------------------------------------------------


def encode_offset_commit_key(key: OffsetCommitKey) -> bytes:
    w = Writer()
    w.int16(OFFSET_COMMIT_KEY_VERSION)
    w.string(key.group)
    w.string(key.topic)
    w.int32(key.partition)
    return bytes(w.buf)


def encode_group_metadata_key(key: GroupMetadataKey) -> bytes:
    w = Writer()
    w.int16(GROUP_METADATA_KEY_VERSION)
    w.string(key.group)
    return bytes(w.buf)


def decode_key(data: bytes) -> OffsetCommitKey | GroupMetadataKey | ConsumerGroupKey | None:
    """The key; consumer group keys (types 3-8 and 16, see consumer_group_records) as a
    ConsumerGroupKey; None for key types this coordinator does not own (share and
    streams groups)."""
    r = Reader(data)
    version = r.int16()
    if version in (0, 1):
        return OffsetCommitKey(r.string(), r.string(), r.int32())
    if version == GROUP_METADATA_KEY_VERSION:
        return GroupMetadataKey(r.string())
    if version in RECORD_TYPES:
        return decode_key_body(version, r)
    if version < 0:
        raise DecodeError(f"invalid record key version {version}")
    return None


# -- offset commit values ------------------------------------------------------------


def encode_offset_commit_value(value: OffsetCommitValue) -> bytes:
    w = Writer()
    if value.expire_timestamp >= 0:
        w.int16(1)
        w.int64(value.offset)
        w.string(value.metadata)
        w.int64(value.commit_timestamp)
        w.int64(value.expire_timestamp)
    else:
        w.int16(3)
        w.int64(value.offset)
        w.int32(value.leader_epoch)
        w.string(value.metadata)
        w.int64(value.commit_timestamp)
    return bytes(w.buf)


def decode_offset_commit_value(data: bytes) -> OffsetCommitValue:
    r = Reader(data)
    version = r.int16()
    if version in (0, 2):
        return OffsetCommitValue(r.int64(), -1, r.string(), r.int64())
    if version == 1:
        offset, metadata, commit = r.int64(), r.string(), r.int64()
        return OffsetCommitValue(offset, -1, metadata, commit, r.int64())
    if version == 3:
        return OffsetCommitValue(r.int64(), r.int32(), r.string(), r.int64())
    if version == 4:
        value = OffsetCommitValue(r.int64(), r.int32(), r.cstring(), r.int64())
        r.skip_tags()
        return value
    raise DecodeError(f"unknown offset commit value version {version}")


# -- group metadata values ------------------------------------------------------------


def encode_group_metadata_value(value: GroupMetadataValue) -> bytes:
    w = Writer()
    w.int16(3)
    w.string(value.protocol_type)
    w.int32(value.generation)
    w.nstring(value.protocol)
    w.nstring(value.leader)
    w.int64(value.current_state_timestamp)
    w.int32(len(value.members))
    for m in value.members:
        w.string(m.member_id)
        w.nstring(m.group_instance_id)
        w.string(m.client_id)
        w.string(m.client_host)
        w.int32(m.rebalance_timeout)
        w.int32(m.session_timeout)
        w.bytes_(m.subscription)
        w.bytes_(m.assignment)
    return bytes(w.buf)


def _decode_member(r: Reader, version: int) -> MemberMetadataValue:
    flexible = version >= 4
    text = r.cstring if flexible else r.string
    raw = r.cbytes if flexible else r.bytes_
    member_id = text()
    instance_id = (r.cnstring() if flexible else r.nstring()) if version >= 3 else None
    client_id, client_host = text(), text()
    rebalance_timeout = r.int32() if version >= 1 else -1
    session_timeout = r.int32()
    if rebalance_timeout < 0:
        rebalance_timeout = session_timeout
    member = MemberMetadataValue(
        member_id,
        instance_id,
        client_id,
        client_host,
        rebalance_timeout,
        session_timeout,
        raw(),
        raw(),
    )
    if flexible:
        r.skip_tags()
    return member


def decode_group_metadata_value(data: bytes) -> GroupMetadataValue:
    r = Reader(data)
    version = r.int16()
    if not 0 <= version <= 4:
        raise DecodeError(f"unknown group metadata value version {version}")
    flexible = version >= 4
    protocol_type = r.cstring() if flexible else r.string()
    generation = r.int32()
    protocol = r.cnstring() if flexible else r.nstring()
    leader = r.cnstring() if flexible else r.nstring()
    state_timestamp = r.int64() if version >= 2 else -1
    count = r.carray_len() if flexible else r.array_len()
    members = tuple(_decode_member(r, version) for _ in range(max(count, 0)))
    if flexible:
        r.skip_tags()
    return GroupMetadataValue(protocol_type, generation, protocol, leader, state_timestamp, members)


def subscribed_topics(subscription: bytes) -> frozenset[str] | None:
    """Topics of a ConsumerProtocolSubscription (any version), None if unparsable."""
    try:
        r = Reader(subscription)
        if r.int16() < 0:
            return None
        return frozenset(r.string() for _ in range(r.array_len()))
    except DecodeError:
        return None


def encode_consumer_assignment(tps: list[TopicPartition], version: int = 3) -> bytes:
    """ConsumerProtocolAssignment bytes (a SyncGroup assignment) for ``tps``."""
    by_topic: dict[str, list[int]] = {}
    for tp in sorted(tps):
        by_topic.setdefault(tp.topic, []).append(tp.partition)
    msg = ConsumerProtocolAssignment(
        assigned_partitions=[
            ConsumerProtocolAssignment.TopicPartition(t, ps) for t, ps in by_topic.items()
        ]
    )
    w = Writer()
    w.int16(version)
    msg.encode(w, version)
    return w.getvalue()
