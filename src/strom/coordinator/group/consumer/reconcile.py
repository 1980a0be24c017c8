"""Reconciliation (Kafka's CurrentAssignmentBuilder): move a member one step from its
current assignment towards the target assignment.

A member first revokes what the target no longer gives it (UNREVOKED_PARTITIONS,
at its current epoch); it then moves to the target epoch and receives new
partitions only once their previous owners released them (no member holds them:
``current_partition_epoch`` is -1); until then it waits in UNRELEASED_PARTITIONS.
A partition is therefore never owned by two members at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from strom.coordinator.group.consumer.member import (
    EMPTY_ASSIGNMENT,
    Assignment,
    ConsumerGroupMember,
    MemberState,
    assignment,
)
from strom.protocol.errors import ErrorCode, KafkaError

# (topic id, partitions) as the member reported them in its heartbeat; None: not sent
Owned = Sequence[tuple[bytes, Sequence[int]]] | None
PartitionEpoch = Callable[[bytes, int], int]


def owns_any(owned: Owned, partitions: Assignment) -> bool:
    """Whether the reported ``owned`` partitions include any of ``partitions`` (True when
    the member did not report them)."""
    if owned is None:
        return True
    return any(p in partitions.get(topic_id, frozenset()) for topic_id, ps in owned for p in ps)


def is_subset(owned: Owned, target: Assignment) -> bool:
    if owned is None:
        return False
    return all(p in target.get(topic_id, frozenset()) for topic_id, ps in owned for p in ps)


def reconcile(
    member: ConsumerGroupMember,
    target_epoch: int,
    target: Assignment,
    current_partition_epoch: PartitionEpoch,
    owned: Owned,
) -> ConsumerGroupMember:
    """The member's next state (the member itself when it cannot move forward)."""
    state = member.state
    if state is MemberState.STABLE:
        if member.member_epoch != target_epoch:
            return _next(
                member, member.member_epoch, target_epoch, target, current_partition_epoch, owned
            )
        return member
    if state is MemberState.UNREVOKED_PARTITIONS:
        if owned is None or owns_any(owned, member.pending_revocation):
            return member
        return _next(
            member, member.member_epoch, target_epoch, target, current_partition_epoch, owned
        )
    if state is MemberState.UNRELEASED_PARTITIONS:
        return _next(
            member, member.member_epoch, target_epoch, target, current_partition_epoch, owned
        )
    if owned is None or owned:
        raise KafkaError(
            ErrorCode.FENCED_MEMBER_EPOCH,
            "The consumer group member is in a unknown state. "
            "The member must abandon all its partitions and rejoin.",
        )
    return _next(member, target_epoch, target_epoch, target, current_partition_epoch, owned)


def _next(
    member: ConsumerGroupMember,
    member_epoch: int,
    target_epoch: int,
    target: Assignment,
    current_partition_epoch: PartitionEpoch,
    owned: Owned,
) -> ConsumerGroupMember:
    """Kafka's computeNextAssignment."""
    keep: dict[bytes, set[int]] = {}
    revoke: dict[bytes, set[int]] = {}
    unreleased = False
    for topic_id in set(target) | set(member.assigned):
        wanted = target.get(topic_id, frozenset())
        current = member.assigned.get(topic_id, frozenset())
        keep[topic_id] = set(current & wanted)
        revoke[topic_id] = set(current - wanted)
        for p in wanted - current:
            if current_partition_epoch(topic_id, p) == -1:
                keep[topic_id].add(p)
            else:
                unreleased = True
    assigned = assignment(keep.items())
    pending = assignment(revoke.items())
    if pending and owns_any(owned, pending):
        return replace(
            member.with_epoch(member_epoch),
            state=MemberState.UNREVOKED_PARTITIONS,
            assigned=assigned,
            pending_revocation=pending,
        )
    state = MemberState.UNRELEASED_PARTITIONS if unreleased else MemberState.STABLE
    return replace(
        member.with_epoch(target_epoch),
        state=state,
        assigned=assigned,
        pending_revocation=EMPTY_ASSIGNMENT,
    )
