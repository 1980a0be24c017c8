"""A member of a consumer group (KIP-848): its subscription and its current assignment.

Members are values (frozen); the group replaces them whole. An assignment maps a
topic id to its partitions. ``member_epoch`` is the epoch the coordinator expects
in the member's next heartbeat; ``previous_member_epoch`` is accepted too, with a
subset of the assignment, in case the response that bumped the epoch was lost.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import IntEnum
from types import MappingProxyType

from strom.protocol.consumer_group_records import (
    ClassicMemberMetadata,
    CurrentAssignmentValue,
    MemberMetadataValue,
    TopicPartitions,
)

LEAVE_GROUP_MEMBER_EPOCH = -1
LEAVE_GROUP_STATIC_MEMBER_EPOCH = -2

Assignment = Mapping[bytes, frozenset[int]]  # topic id -> partitions
EMPTY_ASSIGNMENT: Assignment = MappingProxyType({})


class MemberState(IntEnum):
    """Kafka's MemberState (its byte values are what the records carry)."""

    STABLE = 0  # reconciled to the target assignment
    UNREVOKED_PARTITIONS = 1  # must revoke partitions before moving on
    UNRELEASED_PARTITIONS = 2  # at the target epoch, waiting for partitions others still own
    UNKNOWN = 127

    @classmethod
    def of(cls, value: int) -> MemberState:
        try:
            return cls(value)
        except ValueError:
            return cls.UNKNOWN


def assignment(pairs: Iterable[tuple[bytes, Iterable[int]]]) -> Assignment:
    """An assignment from (topic id, partitions) pairs; topics without partitions dropped."""
    out: dict[bytes, frozenset[int]] = {}
    for topic_id, partitions in pairs:
        ps = out.get(topic_id, frozenset()) | frozenset(partitions)
        if ps:
            out[topic_id] = ps
    return MappingProxyType(out)


def to_topic_partitions(a: Assignment) -> TopicPartitions:
    return tuple((topic_id, tuple(sorted(ps))) for topic_id, ps in sorted(a.items()))


@dataclass(frozen=True, slots=True)
class ConsumerGroupMember:
    member_id: str
    instance_id: str | None = None
    rack_id: str | None = None
    client_id: str = ""
    client_host: str = ""
    subscribed_topic_names: tuple[str, ...] = ()
    subscribed_topic_regex: str | None = None
    server_assignor: str | None = None
    rebalance_timeout_ms: int = -1
    classic: ClassicMemberMetadata | None = None  # set for members using the classic protocol
    member_epoch: int = 0
    previous_member_epoch: int = 0
    state: MemberState = MemberState.STABLE
    assigned: Assignment = field(default_factory=lambda: EMPTY_ASSIGNMENT)
    pending_revocation: Assignment = field(default_factory=lambda: EMPTY_ASSIGNMENT)

    @property
    def uses_classic_protocol(self) -> bool:
        return self.classic is not None

    def is_reconciled_to(self, target_epoch: int) -> bool:
        return self.state is MemberState.STABLE and self.member_epoch == target_epoch

    def owned(self) -> Iterable[tuple[bytes, int]]:
        """Partitions this member holds: assigned or still to be revoked."""
        for a in (self.assigned, self.pending_revocation):
            for topic_id, partitions in a.items():
                for p in partitions:
                    yield topic_id, p

    # -- records -------------------------------------------------------------------

    def metadata_value(self) -> MemberMetadataValue:
        return MemberMetadataValue(
            self.instance_id,
            self.rack_id,
            self.client_id,
            self.client_host,
            self.subscribed_topic_names,
            self.subscribed_topic_regex,
            self.rebalance_timeout_ms,
            self.server_assignor,
            self.classic,
        )

    def with_metadata(self, v: MemberMetadataValue) -> ConsumerGroupMember:
        return replace(
            self,
            instance_id=v.instance_id,
            rack_id=v.rack_id,
            client_id=v.client_id,
            client_host=v.client_host,
            subscribed_topic_names=tuple(v.subscribed_topic_names),
            subscribed_topic_regex=v.subscribed_topic_regex,
            rebalance_timeout_ms=v.rebalance_timeout_ms,
            server_assignor=v.server_assignor,
            classic=v.classic_member_metadata,
        )

    def assignment_value(self) -> CurrentAssignmentValue:
        return CurrentAssignmentValue(
            self.member_epoch,
            self.previous_member_epoch,
            int(self.state),
            to_topic_partitions(self.assigned),
            to_topic_partitions(self.pending_revocation),
        )

    def with_assignment(self, v: CurrentAssignmentValue) -> ConsumerGroupMember:
        return replace(
            self,
            member_epoch=v.member_epoch,
            previous_member_epoch=v.previous_member_epoch,
            state=MemberState.of(v.state),
            assigned=assignment(v.assigned_partitions),
            pending_revocation=assignment(v.partitions_pending_revocation),
        )

    def with_epoch(self, epoch: int) -> ConsumerGroupMember:
        """Kafka's updateMemberEpoch: the previous epoch remembers the current one."""
        return replace(self, member_epoch=epoch, previous_member_epoch=self.member_epoch)
