"""A consumer group (KIP-848) as its records make it: :meth:`ConsumerGroup.replay` is the
only way its persisted state changes, live and at load.

Persisted: the group epoch (bumped when subscriptions or the subscribed topics'
metadata change), the members, the target assignment and its epoch, the resolved
regular expressions. Derived: the epoch of each partition's current owner (a
partition goes to a new owner only when no one holds it) and the group's state::

    Empty        no members
    Assigning    group epoch > target assignment epoch
    Reconciling  some member is not yet at the target assignment
    Stable       every member is reconciled to the target assignment
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

from strom.coordinator.group.consumer.member import (
    EMPTY_ASSIGNMENT,
    LEAVE_GROUP_MEMBER_EPOCH,
    Assignment,
    ConsumerGroupMember,
    assignment,
)
from strom.protocol import consumer_group_records as cg


class ConsumerGroupState(Enum):
    EMPTY = "Empty"
    ASSIGNING = "Assigning"
    RECONCILING = "Reconciling"
    STABLE = "Stable"
    DEAD = "Dead"


@dataclass(frozen=True, slots=True)
class TopicMetadata:
    topic_id: bytes
    name: str
    num_partitions: int
    partition_racks: Mapping[int, frozenset[str]] = field(default_factory=dict)

    def value(self) -> cg.TopicMetadataValue:
        racks = tuple((p, tuple(sorted(r))) for p, r in sorted(self.partition_racks.items()))
        return cg.TopicMetadataValue(self.topic_id, self.name, self.num_partitions, racks)


@dataclass(frozen=True, slots=True)
class ResolvedRegex:
    topics: frozenset[str]
    version: int
    timestamp_ms: int


class ConsumerGroup:
    def __init__(self, group_id: str) -> None:
        self.group_id = group_id
        self.group_epoch = 0
        self.assignment_epoch = 0
        self.members: dict[str, ConsumerGroupMember] = {}
        self.static_members: dict[str, str] = {}  # instance id -> member id
        self.target: dict[str, Assignment] = {}
        self.subscription_metadata: dict[str, TopicMetadata] = {}
        self.resolved_regexes: dict[str, ResolvedRegex] = {}
        self.partition_epochs: dict[bytes, dict[int, int]] = {}
        # soft state: the metadata image the subscription metadata was computed from
        self.metadata_image: Any = None
        self.regex_topics: frozenset[str] | None = None  # the topics regexes resolved against

    # -- reads ---------------------------------------------------------------------

    @property
    def state(self) -> ConsumerGroupState:
        if not self.members:
            return ConsumerGroupState.EMPTY
        if self.group_epoch > self.assignment_epoch:
            return ConsumerGroupState.ASSIGNING
        if any(not m.is_reconciled_to(self.assignment_epoch) for m in self.members.values()):
            return ConsumerGroupState.RECONCILING
        return ConsumerGroupState.STABLE

    def is_empty(self) -> bool:
        return not self.members

    def static_member(self, instance_id: str | None) -> ConsumerGroupMember | None:
        member_id = self.static_members.get(instance_id) if instance_id is not None else None
        return self.members.get(member_id) if member_id is not None else None

    def current_partition_epoch(self, topic_id: bytes, partition: int) -> int:
        return self.partition_epochs.get(topic_id, {}).get(partition, -1)

    def target_of(self, member_id: str) -> Assignment:
        return self.target.get(member_id, EMPTY_ASSIGNMENT)

    def subscribed_regexes(self) -> Counter[str]:
        return Counter(
            m.subscribed_topic_regex for m in self.members.values() if m.subscribed_topic_regex
        )

    def subscribed_topic_names(self) -> frozenset[str]:
        """Topics some member subscribes to, by name or through a resolved regex."""
        names: set[str] = set()
        for m in self.members.values():
            names.update(m.subscribed_topic_names)
            if m.subscribed_topic_regex:
                resolved = self.resolved_regexes.get(m.subscribed_topic_regex)
                if resolved is not None:
                    names |= resolved.topics
        return frozenset(names)

    def member_topics(self, member: ConsumerGroupMember) -> frozenset[str]:
        names = set(member.subscribed_topic_names)
        if member.subscribed_topic_regex:
            resolved = self.resolved_regexes.get(member.subscribed_topic_regex)
            if resolved is not None:
                names |= resolved.topics
        return frozenset(names)

    def snapshot(self) -> ConsumerGroup:
        """A copy to restore when the records of an operation fail to append."""
        other = copy.copy(self)
        for name in ("members", "static_members", "target", "subscription_metadata"):
            setattr(other, name, dict(getattr(self, name)))
        other.resolved_regexes = dict(self.resolved_regexes)
        other.partition_epochs = {t: dict(ps) for t, ps in self.partition_epochs.items()}
        return other

    # -- replay ----------------------------------------------------------------------

    def replay(self, key: cg.ConsumerGroupKey, value: cg.ConsumerGroupValue | None) -> None:
        t = key.record_type
        if t == cg.GROUP_METADATA:
            self.group_epoch = value.epoch if isinstance(value, cg.GroupEpochValue) else 0
        elif t == cg.PARTITION_METADATA:
            self._replay_partition_metadata(value)
        elif t == cg.MEMBER_METADATA:
            self._replay_member(key.member_id, value)
        elif t == cg.TARGET_ASSIGNMENT_METADATA:
            epoch = value.assignment_epoch if isinstance(value, cg.AssignmentEpochValue) else 0
            self.assignment_epoch = epoch
        elif t == cg.TARGET_ASSIGNMENT_MEMBER:
            if isinstance(value, cg.TargetAssignmentValue):
                self.target[key.member_id] = assignment(value.topic_partitions)
            else:
                self.target.pop(key.member_id, None)
        elif t == cg.CURRENT_MEMBER_ASSIGNMENT:
            self._replay_current(key.member_id, value)
        elif t == cg.REGULAR_EXPRESSION:
            if isinstance(value, cg.RegularExpressionValue):
                resolved = ResolvedRegex(frozenset(value.topics), value.version, value.timestamp)
                self.resolved_regexes[key.member_id] = resolved
            else:
                self.resolved_regexes.pop(key.member_id, None)

    def _replay_partition_metadata(self, value: cg.ConsumerGroupValue | None) -> None:
        self.subscription_metadata = {}
        if isinstance(value, cg.PartitionMetadataValue):
            for t in value.topics:
                racks = {p: frozenset(r) for p, r in t.partition_racks}
                meta = TopicMetadata(t.topic_id, t.topic_name, t.num_partitions, racks)
                self.subscription_metadata[t.topic_name] = meta

    def _replay_member(self, member_id: str, value: cg.ConsumerGroupValue | None) -> None:
        old = self.members.get(member_id)
        if not isinstance(value, cg.MemberMetadataValue):
            if old is not None:
                self._set_member(member_id, None)
            return
        member = (old or ConsumerGroupMember(member_id)).with_metadata(value)
        self._set_member(member_id, member)

    def _replay_current(self, member_id: str, value: cg.ConsumerGroupValue | None) -> None:
        old = self.members.get(member_id) or ConsumerGroupMember(member_id)
        if isinstance(value, cg.CurrentAssignmentValue):
            member = old.with_assignment(value)
        else:  # the member is leaving: it holds nothing any more
            member = replace(
                old,
                member_epoch=LEAVE_GROUP_MEMBER_EPOCH,
                previous_member_epoch=LEAVE_GROUP_MEMBER_EPOCH,
                assigned=EMPTY_ASSIGNMENT,
                pending_revocation=EMPTY_ASSIGNMENT,
            )
        self._set_member(member_id, member)

    def _set_member(self, member_id: str, member: ConsumerGroupMember | None) -> None:
        old = self.members.pop(member_id, None)
        if old is not None:
            self._update_partition_epochs(old, None)
            if (
                old.instance_id is not None
                and self.static_members.get(old.instance_id) == member_id
            ):
                del self.static_members[old.instance_id]
        if member is not None:
            self.members[member_id] = member
            self._update_partition_epochs(None, member)
            if member.instance_id is not None:
                self.static_members[member.instance_id] = member_id

    def _update_partition_epochs(
        self, old: ConsumerGroupMember | None, new: ConsumerGroupMember | None
    ) -> None:
        if old is not None:
            for topic_id, p in old.owned():
                epochs = self.partition_epochs.get(topic_id)
                if epochs is not None and epochs.get(p) == old.member_epoch:
                    del epochs[p]
                    if not epochs:
                        del self.partition_epochs[topic_id]
        if new is not None:
            for topic_id, p in new.owned():
                self.partition_epochs.setdefault(topic_id, {})[p] = new.member_epoch
