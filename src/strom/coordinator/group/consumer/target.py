"""The subscribed topics' metadata and the target assignment of a consumer group.

The subscription metadata (ConsumerGroupPartitionMetadata) holds, for every topic
some member subscribes to and that exists, its id and partition count, and the
racks of each partition's replicas when members are rack-aware. A change of it
bumps the group epoch. The target assignment is computed by the group's assignor
when the group epoch passes the assignment epoch; only the members whose target
changed get a record, then the assignment epoch is written.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

from strom.coordinator.group.consumer.assignors import ASSIGNORS, MemberSpec, TopicSpec
from strom.coordinator.group.consumer.group import ConsumerGroup, TopicMetadata
from strom.coordinator.group.consumer.member import ConsumerGroupMember, to_topic_partitions
from strom.coordinator.group.consumer.operation import Operation
from strom.metadata.image import MetadataImage
from strom.protocol import consumer_group_records as cg


def subscription_metadata(
    topics: Iterable[str], image: MetadataImage, rack_aware: bool
) -> dict[str, TopicMetadata]:
    out = {}
    for name in sorted(topics):
        topic = image.topic(name)
        if topic is None or not topic.partitions:
            continue
        racks: dict[int, frozenset[str]] = {}
        if rack_aware:
            for p in topic.partitions:
                brokers = (image.brokers.get(r) for r in p.replicas)
                found = frozenset(b.rack for b in brokers if b is not None and b.rack)
                if found:
                    racks[p.partition] = found
        out[name] = TopicMetadata(topic.topic_id, name, len(topic.partitions), racks)
    return out


def metadata_value(metadata: Mapping[str, TopicMetadata]) -> cg.PartitionMetadataValue:
    return cg.PartitionMetadataValue(tuple(m.value() for _, m in sorted(metadata.items())))


def preferred_assignor(members: Iterable[ConsumerGroupMember], assignors: tuple[str, ...]) -> str:
    """The server assignor most members ask for (ties: by name); else the default, the
    first of group.consumer.assignors."""
    votes = Counter(m.server_assignor for m in members if m.server_assignor in assignors)
    if not votes:
        return assignors[0]
    return min(votes, key=lambda name: (-votes[name], name or ""))


def update_target(op: Operation, assignors: tuple[str, ...]) -> None:
    """Compute the target assignment for the group epoch and write what changed."""
    group = op.group
    members = group.members.values()
    specs = {m.member_id: member_spec(group, m) for m in members}
    topics = {
        t.topic_id: TopicSpec(t.topic_id, t.num_partitions, t.partition_racks)
        for t in group.subscription_metadata.values()
    }
    new = ASSIGNORS[preferred_assignor(members, assignors)](specs, topics)
    for member_id, target in sorted(new.items()):
        if dict(target) != dict(group.target_of(member_id)):
            value = cg.TargetAssignmentValue(to_topic_partitions(target))
            op.write(cg.TARGET_ASSIGNMENT_MEMBER, member_id, value)
    op.write(cg.TARGET_ASSIGNMENT_METADATA, "", cg.AssignmentEpochValue(group.group_epoch))


def member_spec(group: ConsumerGroup, member: ConsumerGroupMember) -> MemberSpec:
    metadata = group.subscription_metadata
    ids = frozenset(metadata[n].topic_id for n in group.member_topics(member) if n in metadata)
    return MemberSpec(
        member.member_id, ids, group.target_of(member.member_id), member.rack_id, member.instance_id
    )
