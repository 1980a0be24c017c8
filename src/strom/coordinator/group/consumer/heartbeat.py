"""ConsumerGroupHeartbeat (KIP-848), as Kafka 4.0's GroupMetadataManager handles it.

A heartbeat (1) creates or updates the member, bumping the group epoch when its
subscription (names, or the topics its regex resolves to) or the subscribed
topics' metadata changed; (2) recomputes the target assignment when the group
epoch passed the assignment epoch; (3) moves the member one reconciliation step
towards its target (reconcile.py). The answer carries the member's epoch and, on
a full request or when it changed, the partitions it may use now.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from strom.coordinator.group.consumer.group import ConsumerGroup
from strom.coordinator.group.consumer.leave import (
    ConsumerLeaveOps,
    heartbeat_error,
    member_or_raise,
    static_member_or_raise,
)
from strom.coordinator.group.consumer.member import (
    LEAVE_GROUP_MEMBER_EPOCH,
    LEAVE_GROUP_STATIC_MEMBER_EPOCH,
    ConsumerGroupMember,
    MemberState,
    to_topic_partitions,
)
from strom.coordinator.group.consumer.operation import Operation
from strom.coordinator.group.consumer.reconcile import Owned, is_subset, reconcile
from strom.coordinator.group.consumer.regex import InvalidRegex, compile_regex, resolve
from strom.coordinator.group.consumer.target import update_target
from strom.coordinator.group.result import CoordinatorResult
from strom.coordinator.group.state import ClassicGroup, GroupState
from strom.protocol import consumer_group_records as cg
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.generated.consumer_group_heartbeat import (
    ConsumerGroupHeartbeatRequest,
    ConsumerGroupHeartbeatResponse,
)

CONSUMER_GENERATED_MEMBER_ID_REQUIRED_VERSION = 1
Request = ConsumerGroupHeartbeatRequest
Response = ConsumerGroupHeartbeatResponse


@dataclass(frozen=True, slots=True)
class RequestContext:
    client_id: str = ""
    client_host: str = ""
    api_version: int = 1


def _invalid(message: str) -> KafkaError:
    return KafkaError(ErrorCode.INVALID_REQUEST, message)


def validate(req: Request, api_version: int, assignors: tuple[str, ...]) -> None:
    """Kafka's throwIfConsumerGroupHeartbeatRequestIsInvalid, and the regex's syntax."""
    _validate_ids(req, api_version)
    _validate_epoch(req)
    if req.server_assignor is not None and req.server_assignor not in assignors:
        raise KafkaError(
            ErrorCode.UNSUPPORTED_ASSIGNOR,
            f"ServerAssignor {req.server_assignor} is not supported. Supported assignors: "
            f"{', '.join(assignors)}.",
        )
    if req.subscribed_topic_regex:
        try:
            compile_regex(req.subscribed_topic_regex)
        except InvalidRegex as e:
            raise KafkaError(
                ErrorCode.INVALID_REGULAR_EXPRESSION,
                f"SubscribedTopicRegex `{req.subscribed_topic_regex}` is not a valid regular "
                f"expression: {e}.",
            ) from None


def _validate_ids(req: Request, api_version: int) -> None:
    epoch = req.member_epoch
    client_generated = api_version >= CONSUMER_GENERATED_MEMBER_ID_REQUIRED_VERSION
    if (client_generated or epoch > 0 or epoch == LEAVE_GROUP_MEMBER_EPOCH) and not req.member_id:
        raise _invalid("MemberId can't be empty.")
    for name, value in (
        ("GroupId", req.group_id),
        ("InstanceId", req.instance_id),
        ("RackId", req.rack_id),
    ):
        if value is not None and not value.strip():
            raise _invalid(f"{name} can't be empty.")


def _validate_epoch(req: Request) -> None:
    epoch = req.member_epoch
    if epoch == 0:
        if req.rebalance_timeout_ms == -1:
            raise _invalid("RebalanceTimeoutMs must be provided in first request.")
        if req.topic_partitions is None or req.topic_partitions:
            raise _invalid("TopicPartitions must be empty when (re-)joining.")
        if req.subscribed_topic_names is None and req.subscribed_topic_regex is None:
            raise _invalid(
                "Either SubscribedTopicNames or SubscribedTopicRegex must be non-null when "
                "(re-)joining."
            )
    elif epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH and req.instance_id is None:
        raise _invalid("InstanceId can't be null.")
    elif epoch < LEAVE_GROUP_STATIC_MEMBER_EPOCH:
        raise _invalid("MemberEpoch is invalid.")


def owned_partitions(req: Request) -> Owned:
    if req.topic_partitions is None:
        return None
    return [(tp.topic_id, tp.partitions) for tp in req.topic_partitions]


def check_member_epoch(member: ConsumerGroupMember, received: int, owned: Owned) -> None:
    """FENCED_MEMBER_EPOCH unless ``received`` is the member's epoch, or its previous one
    with a subset of its partitions (the answer that bumped the epoch was lost). Epoch 0
    is a rejoin, accepted as KIP-848 specifies (KAFKA-19233: a fenced member rejoins
    with its member id and epoch 0)."""
    if received == 0:
        return
    if received > member.member_epoch or (
        received < member.member_epoch
        and (received != member.previous_member_epoch or not is_subset(owned, member.assigned))
    ):
        side = "greater" if received > member.member_epoch else "smaller"
        raise KafkaError(
            ErrorCode.FENCED_MEMBER_EPOCH,
            f"The consumer group member has a {side} member epoch ({received}) than the one "
            f"known by the group coordinator ({member.member_epoch}). The member must abandon "
            "all its partitions and rejoin.",
        )


class ConsumerHeartbeatOps(ConsumerLeaveOps):
    def consumer_group_heartbeat(
        self, handle: int, req: Request, ctx: RequestContext, now_ms: int
    ) -> CoordinatorResult:
        result = CoordinatorResult()
        op = Operation(self, req.group_id, now_ms)
        try:
            validate(req, ctx.api_version, self.config.consumer_assignors)
            if req.member_epoch in (LEAVE_GROUP_MEMBER_EPOCH, LEAVE_GROUP_STATIC_MEMBER_EPOCH):
                response = self.consumer_group_leave(
                    op, req.member_id, req.instance_id, req.member_epoch
                )
            else:
                response = self._heartbeat(op, req, ctx, now_ms)
        except KafkaError as e:
            op.rollback()
            result.respond(handle, heartbeat_error(e.code, e.message))
            return result
        return op.finish(handle, response, heartbeat_error)

    def _heartbeat(self, op: Operation, req: Request, ctx: RequestContext, now_ms: int) -> Response:
        self._check_group(op, req.member_epoch)
        group = op.group
        member_id = req.member_id or self.new_uuid()
        if len(group.members) >= self.config.consumer_max_size and member_id not in group.members:
            raise KafkaError(
                ErrorCode.GROUP_MAX_SIZE_REACHED,
                "The consumer group has reached its maximum capacity of "
                f"{self.config.consumer_max_size} members.",
            )
        owned = owned_partitions(req)
        if req.instance_id is None:
            member = self._dynamic_member(group, member_id, req.member_epoch, owned)
        else:
            member = self._static_member(op, member_id, req.instance_id, req.member_epoch, owned)
        reconciled = self.advance(op, member, _updated(member, req, ctx), owned, now_ms)
        self.schedule_consumer_session(group.group_id, reconciled, now_ms)
        response = Response(
            member_id=member_id,
            member_epoch=reconciled.member_epoch,
            heartbeat_interval_ms=self.config.consumer_heartbeat_interval_ms,
        )
        full = req.member_epoch == 0 or (
            req.rebalance_timeout_ms != -1
            and (req.subscribed_topic_names is not None or req.subscribed_topic_regex is not None)
            and owned is not None
        )
        if full or dict(reconciled.assigned) != dict(member.assigned):
            response.assignment = Response.Assignment(
                [Response.TopicPartitions(t, sorted(ps)) for t, ps in reconciled.assigned.items()]
            )
        return response

    def advance(
        self,
        op: Operation,
        member: ConsumerGroupMember,
        updated: ConsumerGroupMember,
        owned: Owned,
        now_ms: int,
    ) -> ConsumerGroupMember:
        """Write the member's new subscription, bump the group epoch when that (or the
        topics' metadata) changed, compute the target assignment for a new group epoch,
        then move the member one reconciliation step: the member as it now is."""
        bump = self._update_subscription(op, member, updated, now_ms)
        if bump or op.group.metadata_image is not self.image():
            bump |= self.maybe_update_subscription_metadata(op)
        group = op.group
        if bump:
            op.write(cg.GROUP_METADATA, "", cg.GroupEpochValue(group.group_epoch + 1))
        if group.group_epoch > group.assignment_epoch:
            update_target(op, self.config.consumer_assignors)
        return self._reconcile(op, updated.member_id, owned, now_ms)

    def _check_group(self, op: Operation, member_epoch: int) -> None:
        """The consumer group exists, or is created by a member joining (epoch 0) in
        place of an empty classic group; GROUP_ID_NOT_FOUND otherwise."""
        if op.group_id in self.consumer_groups:
            return
        classic = self.live_group(op.group_id)
        if classic is not None and (member_epoch != 0 or not classic.is_(GroupState.EMPTY)):
            if member_epoch == 0 and self.upgrade_classic_group(op, classic):
                return
            raise KafkaError(
                ErrorCode.GROUP_ID_NOT_FOUND, f"Group {op.group_id} is not a consumer group."
            )
        if member_epoch != 0:
            raise KafkaError(
                ErrorCode.GROUP_ID_NOT_FOUND, f"Consumer group {op.group_id} not found."
            )
        if classic is not None and not classic.is_simple():
            op.delete_classic_group()

    def upgrade_classic_group(self, op: Operation, classic: ClassicGroup) -> bool:
        """Turn a classic group with members into a consumer group (online migration):
        False when not allowed (classic_ops.py does it)."""
        return False

    def _dynamic_member(
        self, group: ConsumerGroup, member_id: str, epoch: int, owned: Owned
    ) -> ConsumerGroupMember:
        if epoch == 0:
            member = group.members.get(member_id) or ConsumerGroupMember(member_id)
        else:
            member = member_or_raise(group, member_id)
        check_member_epoch(member, epoch, owned)
        return member

    def _static_member(
        self, op: Operation, member_id: str, instance_id: str, epoch: int, owned: Owned
    ) -> ConsumerGroupMember:
        group = op.group
        existing = group.static_member(instance_id)
        if epoch != 0:
            member = static_member_or_raise(group, instance_id, member_id)
            check_member_epoch(member, epoch, owned)
            return member
        if existing is None:
            return group.members.get(member_id) or ConsumerGroupMember(member_id)
        if existing.member_epoch != LEAVE_GROUP_STATIC_MEMBER_EPOCH:
            raise KafkaError(
                ErrorCode.UNRELEASED_INSTANCE_ID,
                f"Static member {member_id} with instance id {instance_id} cannot join the "
                f"group because the instance id is owned by {existing.member_id} member.",
            )
        return self.replace_static_member(op, existing, member_id)

    def replace_static_member(
        self, op: Operation, existing: ConsumerGroupMember, member_id: str
    ) -> ConsumerGroupMember:
        """The same instance comes back: the new member id takes over its assignment."""
        group = op.group
        member = replace(existing, member_id=member_id, member_epoch=0, previous_member_epoch=0)
        target = group.target_of(existing.member_id)
        self.remove_member_records(op, existing, drop_regex=False)
        self.cancel_consumer_timers(group.group_id, existing.member_id)
        op.write(cg.MEMBER_METADATA, member_id, member.metadata_value())
        value = cg.TargetAssignmentValue(to_topic_partitions(target))
        op.write(cg.TARGET_ASSIGNMENT_MEMBER, member_id, value)
        op.write(cg.CURRENT_MEMBER_ASSIGNMENT, member_id, member.assignment_value())
        return member

    def _update_subscription(
        self,
        op: Operation,
        member: ConsumerGroupMember,
        updated: ConsumerGroupMember,
        now_ms: int,
    ) -> bool:
        """Write the member's metadata if it changed; True when the group epoch must be
        bumped (a new group, new subscribed names, a regex resolving differently)."""
        group = op.group
        bump = group.group_epoch == 0
        if member.member_id not in group.members or (
            updated.metadata_value() != member.metadata_value()
        ):
            op.write(cg.MEMBER_METADATA, updated.member_id, updated.metadata_value())
            bump |= updated.subscribed_topic_names != member.subscribed_topic_names
        return self._update_regexes(op, member, updated, now_ms) or bump

    def _update_regexes(
        self,
        op: Operation,
        member: ConsumerGroupMember,
        updated: ConsumerGroupMember,
        now_ms: int,
    ) -> bool:
        """Resolve the group's regexes when one is new or the topics changed (Kafka does it
        in the background, at most every 10 s; here it is done at once)."""
        group = op.group
        old, new = member.subscribed_topic_regex or None, updated.subscribed_topic_regex or None
        in_use = group.subscribed_regexes()
        bump = False
        if old != new and old is not None and not in_use[old] and old in group.resolved_regexes:
            op.write(cg.REGULAR_EXPRESSION, old, None)
        if old != new and new is not None and new in group.resolved_regexes:
            bump = True  # already resolved: its topics join the member's subscription
        topics = self.topic_names()
        if not in_use or (
            group.regex_topics == topics and set(in_use) <= set(group.resolved_regexes)
        ):
            return bump
        for regex in sorted(in_use):
            matched = resolve(regex, topics)
            resolved = group.resolved_regexes.get(regex)
            if resolved is None or resolved.topics != matched:
                value = cg.RegularExpressionValue(tuple(sorted(matched)), now_ms, now_ms)
                op.write(cg.REGULAR_EXPRESSION, regex, value)
                bump = True
        op.group.regex_topics = topics
        return bump

    def topic_names(self) -> frozenset[str]:
        image = self.image()
        cached = self._topic_names
        if cached is None or cached[0] is not image:
            cached = self._topic_names = (image, frozenset(image.topics))
        return cached[1]

    def _reconcile(
        self, op: Operation, member_id: str, owned: Owned, now_ms: int
    ) -> ConsumerGroupMember:
        group = op.group
        member = group.members[member_id]
        epoch = group.assignment_epoch
        if member.is_reconciled_to(epoch):
            return member
        target = group.target_of(member_id)
        new = reconcile(member, epoch, target, group.current_partition_epoch, owned)
        if new != member:
            op.write(cg.CURRENT_MEMBER_ASSIGNMENT, member_id, new.assignment_value())
            if new.uses_classic_protocol:
                pass  # members of the classic protocol have join and sync timeouts instead
            elif new.state is MemberState.UNREVOKED_PARTITIONS:
                self.schedule_consumer_rebalance(group.group_id, new, now_ms)
            else:
                self.cancel_consumer_rebalance(group.group_id, member_id)
        return new


def _updated(member: ConsumerGroupMember, req: Request, ctx: RequestContext) -> ConsumerGroupMember:
    """The member with what the heartbeat changed (null or -1 fields: unchanged)."""
    m = member
    return replace(
        m,
        instance_id=m.instance_id if req.instance_id is None else req.instance_id,
        rack_id=m.rack_id if req.rack_id is None else req.rack_id,
        rebalance_timeout_ms=(
            m.rebalance_timeout_ms if req.rebalance_timeout_ms == -1 else req.rebalance_timeout_ms
        ),
        server_assignor=m.server_assignor if req.server_assignor is None else req.server_assignor,
        subscribed_topic_names=(
            m.subscribed_topic_names
            if req.subscribed_topic_names is None
            else tuple(req.subscribed_topic_names)
        ),
        subscribed_topic_regex=(
            m.subscribed_topic_regex
            if req.subscribed_topic_regex is None
            else req.subscribed_topic_regex
        ),
        client_id=ctx.client_id,
        client_host=ctx.client_host,
        classic=None,
    )
