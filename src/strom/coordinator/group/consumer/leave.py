"""Members leaving consumer groups: on request (member epoch -1, or -2 for a static
member that will come back), when their session expires, or when they do not
revoke partitions within their rebalance timeout.

A member that leaves is fenced: tombstones for its current assignment, its target
assignment and its metadata (in this order), the subscription metadata without it,
and a group epoch bump so that the others get its partitions. A static member that
leaves with epoch -2 keeps its assignment (at epoch -2) for its session timeout: it
gets it back when it rejoins with the same instance id.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from strom.coordinator.group.base import ShardBase
from strom.coordinator.group.consumer.group import ConsumerGroup
from strom.coordinator.group.consumer.member import (
    EMPTY_ASSIGNMENT,
    LEAVE_GROUP_STATIC_MEMBER_EPOCH,
    ConsumerGroupMember,
)
from strom.coordinator.group.consumer.operation import Operation
from strom.coordinator.group.consumer.target import metadata_value, subscription_metadata
from strom.coordinator.group.result import CoordinatorResult
from strom.protocol import consumer_group_records as cg
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.generated.consumer_group_heartbeat import ConsumerGroupHeartbeatResponse

log = logging.getLogger(__name__)

SESSION = "cg-session"
REBALANCE = "cg-rebalance"  # a member revoking partitions (consumer protocol)
JOIN_TIMEOUT = "cg-join"  # a classic member asked to rejoin
SYNC_TIMEOUT = "cg-sync"  # a classic member that joined must send SyncGroup
CONSUMER_TIMERS = frozenset({SESSION, REBALANCE, JOIN_TIMEOUT, SYNC_TIMEOUT})


def heartbeat_error(code: ErrorCode, message: str | None = None) -> ConsumerGroupHeartbeatResponse:
    return ConsumerGroupHeartbeatResponse(error_code=code, error_message=message)


def consumer_group_or_raise(shard: ShardBase, group_id: str) -> ConsumerGroup:
    group = shard.consumer_groups.get(group_id)
    if group is not None:
        return group
    if shard.live_group(group_id) is not None:
        raise KafkaError(ErrorCode.GROUP_ID_NOT_FOUND, f"Group {group_id} is not a consumer group.")
    raise KafkaError(ErrorCode.GROUP_ID_NOT_FOUND, f"Consumer group {group_id} not found.")


def member_or_raise(group: ConsumerGroup, member_id: str) -> ConsumerGroupMember:
    member = group.members.get(member_id)
    if member is None:
        raise KafkaError(
            ErrorCode.UNKNOWN_MEMBER_ID,
            f"Member {member_id} is not a member of group {group.group_id}.",
        )
    return member


def static_member_or_raise(
    group: ConsumerGroup, instance_id: str, member_id: str
) -> ConsumerGroupMember:
    member = group.static_member(instance_id)
    if member is None:
        raise KafkaError(ErrorCode.UNKNOWN_MEMBER_ID, f"Instance id {instance_id} is unknown.")
    if member.member_id != member_id:
        raise KafkaError(
            ErrorCode.FENCED_INSTANCE_ID,
            f"Static member {member_id} with instance id {instance_id} was fenced by member "
            f"{member.member_id}.",
        )
    return member


class ConsumerLeaveOps(ShardBase):
    def consumer_group_leave(
        self, op: Operation, member_id: str, instance_id: str | None, member_epoch: int
    ) -> ConsumerGroupHeartbeatResponse:
        group = consumer_group_or_raise(self, op.group_id)
        response = ConsumerGroupHeartbeatResponse(member_id=member_id, member_epoch=member_epoch)
        if instance_id is None:
            member = member_or_raise(group, member_id)
            log.info("[GroupId %s] Member %s left the consumer group.", group.group_id, member_id)
        else:
            member = static_member_or_raise(group, instance_id, member_id)
            if member_epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH:
                log.info(
                    "[GroupId %s] Static member %s with instance id %s temporarily left.",
                    group.group_id,
                    member_id,
                    instance_id,
                )
                leaving = replace(
                    member,
                    member_epoch=LEAVE_GROUP_STATIC_MEMBER_EPOCH,
                    pending_revocation=EMPTY_ASSIGNMENT,
                )
                op.write(cg.CURRENT_MEMBER_ASSIGNMENT, member_id, leaving.assignment_value())
                return response
        self.fence_member(op, member)
        return response

    def fence_member(self, op: Operation, member: ConsumerGroupMember) -> None:
        """Remove ``member`` and bump the group epoch (Kafka's consumerGroupFenceMember)."""
        self.remove_member_records(op, member)
        group = op.group
        self.maybe_update_subscription_metadata(op)
        op.write(cg.GROUP_METADATA, "", cg.GroupEpochValue(group.group_epoch + 1))
        self.cancel_consumer_timers(group.group_id, member.member_id)

    def remove_member_records(
        self, op: Operation, member: ConsumerGroupMember, drop_regex: bool = True
    ) -> None:
        """Tombstones for a member, in Kafka's order; its regex when no one else uses it."""
        member_id = member.member_id
        op.write(cg.CURRENT_MEMBER_ASSIGNMENT, member_id, None)
        op.write(cg.TARGET_ASSIGNMENT_MEMBER, member_id, None)
        op.write(cg.MEMBER_METADATA, member_id, None)
        regex = member.subscribed_topic_regex
        group = op.group
        if not drop_regex or not regex or regex not in group.resolved_regexes:
            return
        if not group.subscribed_regexes()[regex]:
            op.write(cg.REGULAR_EXPRESSION, regex, None)

    def maybe_update_subscription_metadata(self, op: Operation) -> bool:
        """Write the subscribed topics' metadata if it changed; True then."""
        group = op.group
        image = self.image()
        rack_aware = any(m.rack_id for m in group.members.values())
        metadata = subscription_metadata(group.subscribed_topic_names(), image, rack_aware)
        group.metadata_image = image
        if metadata == group.subscription_metadata:
            return False
        op.write(cg.PARTITION_METADATA, "", metadata_value(metadata))
        return True

    # -- timers ------------------------------------------------------------------------

    def schedule_consumer_session(
        self, group_id: str, member: ConsumerGroupMember, now_ms: int
    ) -> None:
        """group.consumer.session.timeout.ms, or the session timeout a member using the
        classic protocol joined with."""
        timeout = self.config.consumer_session_timeout_ms
        if member.classic is not None:
            timeout = member.classic.session_timeout_ms
        self.timers.schedule((SESSION, group_id, member.member_id), now_ms + timeout)

    def cancel_consumer_timers(self, group_id: str, member_id: str) -> None:
        for kind in CONSUMER_TIMERS:
            self.timers.cancel((kind, group_id, member_id))
        self.rebalance_epochs.pop((group_id, member_id), None)

    def schedule_consumer_rebalance(
        self, group_id: str, member: ConsumerGroupMember, now_ms: int
    ) -> None:
        key = (REBALANCE, group_id, member.member_id)
        self.rebalance_epochs[(group_id, member.member_id)] = member.member_epoch
        self.timers.schedule(key, now_ms + max(member.rebalance_timeout_ms, 0))

    def cancel_consumer_rebalance(self, group_id: str, member_id: str) -> None:
        self.timers.cancel((REBALANCE, group_id, member_id))
        self.rebalance_epochs.pop((group_id, member_id), None)

    def on_consumer_timer(
        self, kind: str, group_id: str, member_id: str, now_ms: int
    ) -> CoordinatorResult:
        group = self.consumer_groups.get(group_id)
        member = group.members.get(member_id) if group is not None else None
        if member is None:
            return CoordinatorResult()
        if kind == REBALANCE:
            expected = self.rebalance_epochs.pop((group_id, member_id), None)
            if member.member_epoch != expected:
                return CoordinatorResult()
            reason = f"it failed to transition from epoch {expected} within its rebalance timeout"
        elif kind == JOIN_TIMEOUT:
            reason = "it did not rejoin within its rebalance timeout"
        elif kind == SYNC_TIMEOUT:
            reason = "it did not send SyncGroup within its rebalance timeout"
        else:
            reason = "the member session expired"
        log.info(
            "[GroupId %s] Member %s fenced from the group because %s.", group_id, member_id, reason
        )
        op = Operation(self, group_id, now_ms)
        self.fence_member(op, member)
        return op.finish(None, None, lambda code: None)
