"""The ``__consumer_offsets`` records of consumer groups (KIP-848), byte for byte as
Kafka 4.0 writes them (group-coordinator/src/main/resources/common/message).

A key is an int16 record type and the key's strings, not flexible::

    3  ConsumerGroupMetadataKey               group
    4  ConsumerGroupPartitionMetadataKey      group
    5  ConsumerGroupMemberMetadataKey         group, member_id
    6  ConsumerGroupTargetAssignmentMetadataKey group
    7  ConsumerGroupTargetAssignmentMemberKey group, member_id
    8  ConsumerGroupCurrentMemberAssignmentKey group, member_id
    16 ConsumerGroupRegularExpressionKey      group, regular_expression

A value is an int16 version (0) and the value, flexible (compact strings and
arrays, a tagged-field section after every struct)::

    3  epoch int32
    4  topics [topic_id uuid, topic_name, num_partitions int32,
               partition_metadata [partition int32, racks [string]]]
    5  instance_id?, rack_id?, client_id, client_host, subscribed_topic_names [string],
       subscribed_topic_regex?, rebalance_timeout_ms int32, server_assignor?,
       tag 0: classic_member_metadata? {session_timeout_ms int32,
                                        supported_protocols [name, metadata bytes]}
    6  assignment_epoch int32
    7  topic_partitions [topic_id uuid, partitions [int32]]
    8  member_epoch int32, previous_member_epoch int32, state int8,
       assigned_partitions [topic_id, partitions], partitions_pending_revocation [...]
    16 topics [string], version int64, timestamp int64

A null value is a tombstone. Decoding raises only ``DecodeError``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from strom.protocol.errors import DecodeError
from strom.protocol.wire import Reader, Writer

GROUP_METADATA = 3
PARTITION_METADATA = 4
MEMBER_METADATA = 5
TARGET_ASSIGNMENT_METADATA = 6
TARGET_ASSIGNMENT_MEMBER = 7
CURRENT_MEMBER_ASSIGNMENT = 8
REGULAR_EXPRESSION = 16
RECORD_TYPES = frozenset({3, 4, 5, 6, 7, 8, 16})
_KEYS_WITH_MEMBER = frozenset(
    {MEMBER_METADATA, TARGET_ASSIGNMENT_MEMBER, CURRENT_MEMBER_ASSIGNMENT}
)

# (topic id, partitions) pairs: an assignment as the records carry it.
TopicPartitions = tuple[tuple[bytes, tuple[int, ...]], ...]


@dataclass(frozen=True, slots=True)
class ConsumerGroupKey:
    """The key of a consumer group record; ``member_id`` is the regular expression of a
    type 16 key and empty for the group-wide types (3, 4, 6)."""

    record_type: int
    group: str
    member_id: str = ""


@dataclass(frozen=True, slots=True)
class GroupEpochValue:
    epoch: int


@dataclass(frozen=True, slots=True)
class TopicMetadataValue:
    topic_id: bytes
    topic_name: str
    num_partitions: int
    partition_racks: tuple[tuple[int, tuple[str, ...]], ...] = ()


@dataclass(frozen=True, slots=True)
class PartitionMetadataValue:
    topics: tuple[TopicMetadataValue, ...]


@dataclass(frozen=True, slots=True)
class ClassicMemberMetadata:
    session_timeout_ms: int
    supported_protocols: tuple[tuple[str, bytes], ...]


@dataclass(frozen=True, slots=True)
class MemberMetadataValue:
    instance_id: str | None
    rack_id: str | None
    client_id: str
    client_host: str
    subscribed_topic_names: tuple[str, ...]
    subscribed_topic_regex: str | None
    rebalance_timeout_ms: int
    server_assignor: str | None
    classic_member_metadata: ClassicMemberMetadata | None = None


@dataclass(frozen=True, slots=True)
class AssignmentEpochValue:
    assignment_epoch: int


@dataclass(frozen=True, slots=True)
class TargetAssignmentValue:
    topic_partitions: TopicPartitions


@dataclass(frozen=True, slots=True)
class CurrentAssignmentValue:
    member_epoch: int
    previous_member_epoch: int
    state: int
    assigned_partitions: TopicPartitions
    partitions_pending_revocation: TopicPartitions


@dataclass(frozen=True, slots=True)
class RegularExpressionValue:
    topics: tuple[str, ...]
    version: int
    timestamp: int


ConsumerGroupValue = (
    GroupEpochValue
    | PartitionMetadataValue
    | MemberMetadataValue
    | AssignmentEpochValue
    | TargetAssignmentValue
    | CurrentAssignmentValue
    | RegularExpressionValue
)

# -- keys ------------------------------------------------------------------------------


def encode_key(key: ConsumerGroupKey) -> bytes:
    w = Writer()
    w.int16(key.record_type)
    w.string(key.group)
    if key.record_type in _KEYS_WITH_MEMBER or key.record_type == REGULAR_EXPRESSION:
        w.string(key.member_id)
    return bytes(w.buf)


def decode_key_body(record_type: int, r: Reader) -> ConsumerGroupKey:
    """The rest of a key whose int16 type ``record_type`` was already read."""
    group = r.string()
    if record_type in _KEYS_WITH_MEMBER or record_type == REGULAR_EXPRESSION:
        return ConsumerGroupKey(record_type, group, r.string())
    return ConsumerGroupKey(record_type, group)


# -- values --------------------------------------------------------------------------


def _write_strings(w: Writer, items: tuple[str, ...]) -> None:
    w.carray_len(len(items))
    for item in items:
        w.cstring(item)


def _read_strings(r: Reader) -> tuple[str, ...]:
    return tuple(r.cstring() for _ in range(max(r.carray_len(), 0)))


def _write_topic_partitions(w: Writer, items: TopicPartitions) -> None:
    w.carray_len(len(items))
    for topic_id, partitions in items:
        w.uuid(topic_id)
        w.carray_len(len(partitions))
        for p in partitions:
            w.int32(p)
        w.uvarint(0)


def _read_topic_partitions(r: Reader) -> TopicPartitions:
    out = []
    for _ in range(max(r.carray_len(), 0)):
        topic_id = r.uuid()
        partitions = tuple(r.int32() for _ in range(max(r.carray_len(), 0)))
        r.skip_tags()
        out.append((topic_id, partitions))
    return tuple(out)


def _encode_partition_metadata(w: Writer, v: PartitionMetadataValue) -> None:
    w.carray_len(len(v.topics))
    for t in v.topics:
        w.uuid(t.topic_id)
        w.cstring(t.topic_name)
        w.int32(t.num_partitions)
        w.carray_len(len(t.partition_racks))
        for partition, racks in t.partition_racks:
            w.int32(partition)
            _write_strings(w, racks)
            w.uvarint(0)
        w.uvarint(0)


def _decode_partition_metadata(r: Reader) -> PartitionMetadataValue:
    topics = []
    for _ in range(max(r.carray_len(), 0)):
        topic_id, name, count = r.uuid(), r.cstring(), r.int32()
        racks = []
        for _ in range(max(r.carray_len(), 0)):
            partition = r.int32()
            racks.append((partition, _read_strings(r)))
            r.skip_tags()
        r.skip_tags()
        topics.append(TopicMetadataValue(topic_id, name, count, tuple(racks)))
    return PartitionMetadataValue(tuple(topics))


def _encode_classic(c: ClassicMemberMetadata) -> Writer:
    w = Writer()
    w.int8(1)  # a nullable struct: present
    w.int32(c.session_timeout_ms)
    w.carray_len(len(c.supported_protocols))
    for name, metadata in c.supported_protocols:
        w.cstring(name)
        w.cbytes(metadata)
        w.uvarint(0)
    w.uvarint(0)
    return w


def _decode_classic(r: Reader) -> ClassicMemberMetadata | None:
    if r.int8() < 0:
        return None
    session_timeout = r.int32()
    protocols = []
    for _ in range(max(r.carray_len(), 0)):
        protocols.append((r.cstring(), r.cbytes()))
        r.skip_tags()
    r.skip_tags()
    return ClassicMemberMetadata(session_timeout, tuple(protocols))


def _encode_member(w: Writer, v: MemberMetadataValue) -> None:
    w.cnstring(v.instance_id)
    w.cnstring(v.rack_id)
    w.cstring(v.client_id)
    w.cstring(v.client_host)
    _write_strings(w, v.subscribed_topic_names)
    w.cnstring(v.subscribed_topic_regex)
    w.int32(v.rebalance_timeout_ms)
    w.cnstring(v.server_assignor)
    if v.classic_member_metadata is None:
        w.uvarint(0)
    else:
        w.tagged([(0, _encode_classic(v.classic_member_metadata))])


def _decode_member(r: Reader) -> MemberMetadataValue:
    instance_id, rack_id = r.cnstring(), r.cnstring()
    client_id, client_host = r.cstring(), r.cstring()
    names = _read_strings(r)
    regex = r.cnstring()
    rebalance_timeout, assignor = r.int32(), r.cnstring()
    classic = None
    for _ in range(r.uvarint()):
        tag, size = r.tag_header()
        if tag == 0:
            classic = _decode_classic(r.sub(size))
        else:
            r.skip(size)
    return MemberMetadataValue(
        instance_id, rack_id, client_id, client_host, names, regex, rebalance_timeout, assignor,
        classic,
    )  # fmt: skip


def _encode_current(w: Writer, v: CurrentAssignmentValue) -> None:
    w.int32(v.member_epoch)
    w.int32(v.previous_member_epoch)
    w.int8(v.state)
    _write_topic_partitions(w, v.assigned_partitions)
    _write_topic_partitions(w, v.partitions_pending_revocation)


def _decode_current(r: Reader) -> CurrentAssignmentValue:
    epoch, previous, state = r.int32(), r.int32(), r.int8()
    return CurrentAssignmentValue(
        epoch, previous, state, _read_topic_partitions(r), _read_topic_partitions(r)
    )


def _encode_regex(w: Writer, v: RegularExpressionValue) -> None:
    _write_strings(w, v.topics)
    w.int64(v.version)
    w.int64(v.timestamp)


def _decode_regex(r: Reader) -> RegularExpressionValue:
    return RegularExpressionValue(_read_strings(r), r.int64(), r.int64())


def _encoders() -> dict[type, Callable[[Writer, Any], None]]:
    return {
        GroupEpochValue: lambda w, v: w.int32(v.epoch),
        PartitionMetadataValue: _encode_partition_metadata,
        MemberMetadataValue: _encode_member,
        AssignmentEpochValue: lambda w, v: w.int32(v.assignment_epoch),
        TargetAssignmentValue: lambda w, v: _write_topic_partitions(w, v.topic_partitions),
        CurrentAssignmentValue: _encode_current,
        RegularExpressionValue: _encode_regex,
    }


_ENCODERS = _encoders()
_DECODERS: dict[int, Callable[[Reader], ConsumerGroupValue]] = {
    GROUP_METADATA: lambda r: GroupEpochValue(r.int32()),
    PARTITION_METADATA: _decode_partition_metadata,
    MEMBER_METADATA: _decode_member,
    TARGET_ASSIGNMENT_METADATA: lambda r: AssignmentEpochValue(r.int32()),
    TARGET_ASSIGNMENT_MEMBER: lambda r: TargetAssignmentValue(_read_topic_partitions(r)),
    CURRENT_MEMBER_ASSIGNMENT: _decode_current,
    REGULAR_EXPRESSION: _decode_regex,
}


def encode_value(value: ConsumerGroupValue) -> bytes:
    w = Writer()
    w.int16(0)
    _ENCODERS[type(value)](w, value)
    if not isinstance(value, MemberMetadataValue):  # its tags are written with it
        w.uvarint(0)
    return bytes(w.buf)


def decode_value(record_type: int, data: bytes) -> ConsumerGroupValue:
    """The value of a record of ``record_type`` (one of RECORD_TYPES)."""
    r = Reader(data)
    version = r.int16()
    if version != 0:
        raise DecodeError(f"unknown version {version} of consumer group record type {record_type}")
    value = _DECODERS[record_type](r)
    if record_type != MEMBER_METADATA:
        r.skip_tags()
    return value
