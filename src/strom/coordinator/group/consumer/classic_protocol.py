"""Classic-protocol members in consumer groups, and the group conversions of an online
migration (KIP-848, ``group.consumer.migration.policy``).

- Upgrade: a ConsumerGroupHeartbeat joining a classic group that has members turns
  it into a consumer group (policy upgrade or bidirectional): every classic member
  becomes a member using the classic protocol, keeping its generation as its epoch
  and its assignment as its current and target assignment.
- Members using the classic protocol keep sending JoinGroup, SyncGroup, Heartbeat and
  LeaveGroup. A JoinGroup is a full heartbeat (subscription and owned partitions from
  the embedded consumer protocol) answered with the member's epoch as generation and
  no leader; SyncGroup returns the member's assignment; a Heartbeat answers
  REBALANCE_IN_PROGRESS when the member must rejoin (the group epoch moved on, it must
  revoke partitions, or the partitions it waits for are free).
- Downgrade: when the last member using the consumer protocol leaves and only classic
  members remain (policy downgrade or bidirectional), the group becomes a classic group
  again, with their current assignments, and rebalances.
"""

from __future__ import annotations

from collections.abc import Iterable

from strom.common.types import TopicPartition
from strom.coordinator.group.consumer.member import Assignment, ConsumerGroupMember, assignment
from strom.metadata.image import MetadataImage
from strom.protocol.errors import DecodeError
from strom.protocol.generated.consumer_protocol_assignment import ConsumerProtocolAssignment
from strom.protocol.generated.consumer_protocol_subscription import (
    ConsumerProtocolSubscription,
)
from strom.protocol.group_records import encode_consumer_assignment
from strom.protocol.wire import Reader

UPGRADE_POLICIES = frozenset({"upgrade", "bidirectional"})
DOWNGRADE_POLICIES = frozenset({"downgrade", "bidirectional"})


def parse_subscription(metadata: bytes) -> ConsumerProtocolSubscription | None:
    """A JoinGroup protocol's metadata (any version), None if it does not parse."""
    try:
        r = Reader(metadata)
        version = r.int16()
        return ConsumerProtocolSubscription.decode(r, min(max(version, 0), 3))
    except DecodeError:
        return None


def subscription_version(metadata: bytes) -> int:
    try:
        return min(max(Reader(metadata).int16(), 0), 3)
    except DecodeError:
        return 0


def parse_assignment(data: bytes, image: MetadataImage) -> Assignment:
    """A SyncGroup assignment's partitions by topic id (unknown topics left out)."""
    if not data:
        return assignment(())
    r = Reader(data)
    a = ConsumerProtocolAssignment.decode(r, min(max(r.int16(), 0), 3))
    return to_ids(((t.topic, t.partitions) for t in a.assigned_partitions), image)


def to_ids(pairs: Iterable[tuple[str, Iterable[int]]], image: MetadataImage) -> Assignment:
    """(topic name, partitions) pairs by topic id; topics the image lacks left out."""
    out = []
    for name, partitions in pairs:
        topic = image.topic(name)
        if topic is not None:
            out.append((topic.topic_id, partitions))
    return assignment(out)


def encode_assignment(a: Assignment, image: MetadataImage, version: int) -> bytes:
    """The member's partitions as ConsumerProtocolAssignment bytes (topic names)."""
    tps = [
        TopicPartition(topic.name, p)
        for topic_id, ps in a.items()
        if (topic := image.topic_by_id(topic_id)) is not None
        for p in ps
    ]
    return encode_consumer_assignment(tps, version)


def first_protocol(member: ConsumerGroupMember) -> str:
    assert member.classic is not None
    return member.classic.supported_protocols[0][0]


def supports_protocols(
    members: list[ConsumerGroupMember], protocol_type: str, names: set[str]
) -> bool:
    """Kafka's supportsClassicProtocols: one of ``names`` that every classic member has."""
    if protocol_type != "consumer":
        return False
    classic = [m for m in members if m.classic is not None]
    if not classic:
        return bool(names)
    return any(
        all(name in {n for n, _ in m.classic.supported_protocols} for m in classic if m.classic)
        for name in names
    )
