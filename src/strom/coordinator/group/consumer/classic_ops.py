"""JoinGroup, SyncGroup, Heartbeat and LeaveGroup of classic-protocol members in consumer
groups, and the upgrade and downgrade of an online migration (see classic_protocol.py)."""

from __future__ import annotations

import logging
from dataclasses import replace

from strom.coordinator.group.base import HEARTBEAT, JOIN, SYNC, join_error, sync_error
from strom.coordinator.group.consumer.admin import group_tombstones
from strom.coordinator.group.consumer.classic_protocol import (
    DOWNGRADE_POLICIES,
    UPGRADE_POLICIES,
    encode_assignment,
    first_protocol,
    parse_assignment,
    parse_subscription,
    subscription_version,
    supports_protocols,
    to_ids,
)
from strom.coordinator.group.consumer.group import ConsumerGroup
from strom.coordinator.group.consumer.heartbeat import ConsumerHeartbeatOps
from strom.coordinator.group.consumer.leave import (
    JOIN_TIMEOUT,
    SYNC_TIMEOUT,
    member_or_raise,
    static_member_or_raise,
)
from strom.coordinator.group.consumer.member import (
    ConsumerGroupMember,
    MemberState,
    to_topic_partitions,
)
from strom.coordinator.group.consumer.operation import Operation
from strom.coordinator.group.membership import JoinRequest
from strom.coordinator.group.rebalance import RebalanceOps
from strom.coordinator.group.result import CoordinatorResult
from strom.coordinator.group.state import ClassicGroup, GroupState, Member
from strom.protocol import consumer_group_records as cg
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.generated.consumer_protocol_subscription import (
    ConsumerProtocolSubscription,
)
from strom.protocol.generated.heartbeat import HeartbeatRequest, HeartbeatResponse
from strom.protocol.generated.join_group import JoinGroupResponse
from strom.protocol.generated.leave_group import LeaveGroupRequest, LeaveGroupResponse
from strom.protocol.generated.sync_group import SyncGroupRequest, SyncGroupResponse

log = logging.getLogger(__name__)


def _fail(code: ErrorCode, message: str) -> KafkaError:
    return KafkaError(code, message)


class ClassicMemberOps(ConsumerHeartbeatOps, RebalanceOps):
    # -- JoinGroup ----------------------------------------------------------------------

    def classic_join_to_consumer_group(
        self, handle: int, req: JoinRequest, now_ms: int
    ) -> CoordinatorResult:
        op = Operation(self, req.group_id, now_ms)
        try:
            response = self._classic_join(op, req, now_ms)
        except KafkaError as e:
            op.rollback()
            result = CoordinatorResult()
            result.respond(handle, join_error(req.member_id, e.code))
            return result
        member_id = response.member_id

        def joined() -> None:
            if response.error_code != ErrorCode.NONE:
                return
            member = op.group.members.get(member_id)
            self.timers.cancel((JOIN_TIMEOUT, req.group_id, member_id))
            if member is not None:
                self.schedule_consumer_session(req.group_id, member, now_ms)
            deadline = now_ms + req.rebalance_timeout_ms
            self.timers.schedule((SYNC_TIMEOUT, req.group_id, member_id), deadline)

        return op.finish(handle, response, lambda code: join_error(member_id, code), joined)

    def _classic_join(self, op: Operation, req: JoinRequest, now_ms: int) -> JoinGroupResponse:
        group = op.group
        member_id = req.member_id or self.new_uuid()
        max_size = self.config.consumer_max_size
        if len(group.members) >= max_size and member_id not in group.members:
            raise _fail(ErrorCode.GROUP_MAX_SIZE_REACHED, f"The group is full ({max_size}).")
        names = {n for n, _ in req.protocols}
        subscription = parse_subscription(req.protocols[0][1]) if req.protocols else None
        members = list(group.members.values())
        if subscription is None or not supports_protocols(members, req.protocol_type, names):
            raise _fail(ErrorCode.INCONSISTENT_GROUP_PROTOCOL, "protocols not supported")
        if not req.member_id and req.group_instance_id is None and req.require_known_member_id:
            return join_error(member_id, ErrorCode.MEMBER_ID_REQUIRED)
        member = self._classic_member_to_join(op, req, member_id)
        owned = [(t, ps) for t, ps in _owned(subscription, self).items()]
        updated = replace(
            member,
            instance_id=req.group_instance_id or member.instance_id,
            rack_id=subscription.rack_id or member.rack_id,
            rebalance_timeout_ms=req.rebalance_timeout_ms,
            subscribed_topic_names=tuple(subscription.topics),
            client_id=req.client_id,
            client_host=req.client_host,
            classic=cg.ClassicMemberMetadata(req.session_timeout_ms, tuple(req.protocols)),
        )
        reconciled = self.advance(op, member, updated, owned, now_ms)
        return JoinGroupResponse(
            error_code=ErrorCode.NONE,
            generation_id=reconciled.member_epoch,
            protocol_type="consumer",
            protocol_name=first_protocol(reconciled),
            leader="",
            member_id=member_id,
        )

    def _classic_member_to_join(
        self, op: Operation, req: JoinRequest, member_id: str
    ) -> ConsumerGroupMember:
        group, instance = op.group, req.group_instance_id
        if instance is None:
            return group.members.get(member_id) or ConsumerGroupMember(member_id)
        existing = group.static_member(instance)
        if req.member_id:
            return static_member_or_raise(group, instance, member_id)
        if existing is None:
            return group.members.get(member_id) or ConsumerGroupMember(member_id)
        return self.replace_static_member(op, existing, member_id)

    # -- SyncGroup and Heartbeat ------------------------------------------------------------

    def _classic_member(
        self, group: ConsumerGroup, member_id: str, instance_id: str | None
    ) -> ConsumerGroupMember:
        if instance_id is None:
            member = member_or_raise(group, member_id)
        else:
            member = static_member_or_raise(group, instance_id, member_id)
        if not member.uses_classic_protocol:
            raise _fail(
                ErrorCode.UNKNOWN_MEMBER_ID,
                f"Member {member.member_id} does not use the classic protocol.",
            )
        return member

    def _rejoin_needed(self, group: ConsumerGroup, member: ConsumerGroupMember) -> bool:
        return (
            member.member_epoch < group.group_epoch
            or member.state is MemberState.UNREVOKED_PARTITIONS
            or (
                member.state is MemberState.UNRELEASED_PARTITIONS
                and not _waiting_on_unreleased(group, member)
            )
        )

    def _ask_to_rejoin(self, group: ConsumerGroup, member: ConsumerGroupMember, now: int) -> None:
        key = (JOIN_TIMEOUT, group.group_id, member.member_id)
        if self.timers.deadline(key) is None:
            self.timers.schedule(key, now + max(member.rebalance_timeout_ms, 0))

    def classic_sync_to_consumer_group(
        self, handle: int, req: SyncGroupRequest, now_ms: int
    ) -> CoordinatorResult:
        result = CoordinatorResult()
        group = self.consumer_groups[req.group_id]
        try:
            member = self._classic_member(group, req.member_id, req.group_instance_id)
            if req.generation_id != member.member_epoch:
                raise _fail(ErrorCode.ILLEGAL_GENERATION, "generation is not the member epoch")
            if (req.protocol_type is not None and req.protocol_type != "consumer") or (
                req.protocol_name is not None and req.protocol_name != first_protocol(member)
            ):
                raise _fail(ErrorCode.INCONSISTENT_GROUP_PROTOCOL, "another protocol")
            if (
                group.group_epoch > member.member_epoch
                and member.state is not MemberState.UNREVOKED_PARTITIONS
            ):
                self._ask_to_rejoin(group, member, now_ms)
                raise _fail(ErrorCode.REBALANCE_IN_PROGRESS, "a new rebalance is triggered")
        except KafkaError as e:
            result.respond(handle, sync_error(e.code))
            return result
        self.timers.cancel((SYNC_TIMEOUT, group.group_id, member.member_id))
        self.schedule_consumer_session(group.group_id, member, now_ms)
        assert member.classic is not None
        version = subscription_version(member.classic.supported_protocols[0][1])
        data = encode_assignment(member.assigned, self.image(), version)
        response = SyncGroupResponse(
            protocol_type=req.protocol_type, protocol_name=req.protocol_name, assignment=data
        )
        result.respond(handle, response)
        return result

    def classic_heartbeat_to_consumer_group(
        self, req: HeartbeatRequest, now_ms: int
    ) -> HeartbeatResponse:
        group = self.consumer_groups[req.group_id]
        try:
            member = self._classic_member(group, req.member_id, req.group_instance_id)
        except KafkaError as e:
            return HeartbeatResponse(error_code=e.code)
        if req.generation_id != member.member_epoch:
            return HeartbeatResponse(error_code=ErrorCode.ILLEGAL_GENERATION)
        self.schedule_consumer_session(group.group_id, member, now_ms)
        if self._rejoin_needed(group, member):
            self._ask_to_rejoin(group, member, now_ms)
            return HeartbeatResponse(error_code=ErrorCode.REBALANCE_IN_PROGRESS)
        return HeartbeatResponse()

    # -- LeaveGroup ----------------------------------------------------------------------

    def classic_leave_to_consumer_group(
        self, handle: int, req: LeaveGroupRequest, now_ms: int
    ) -> CoordinatorResult:
        op = Operation(self, req.group_id, now_ms)
        group = op.group
        answers = []
        leaving: list[ConsumerGroupMember] = []
        for who in req.members:
            try:
                if who.group_instance_id is None:
                    member = member_or_raise(group, who.member_id)
                elif who.member_id:
                    member = static_member_or_raise(group, who.group_instance_id, who.member_id)
                else:
                    found = group.static_member(who.group_instance_id)
                    member = found if found is not None else member_or_raise(group, "")
                leaving.append(member)
                code = ErrorCode.NONE
            except KafkaError as e:
                code = e.code
            answers.append(
                LeaveGroupResponse.MemberResponse(who.member_id, who.group_instance_id, code)
            )
        for member in leaving[:-1]:
            self.remove_member_records(op, member)
            self.cancel_consumer_timers(group.group_id, member.member_id)
        if leaving:
            self.fence_member(op, leaving[-1])
        response = LeaveGroupResponse(members=answers)
        return op.finish(handle, response, lambda code: LeaveGroupResponse(error_code=code))

    # -- upgrade and downgrade -------------------------------------------------------------

    def upgrade_classic_group(self, op: Operation, classic: ClassicGroup) -> bool:
        cfg = self.config
        if (
            cfg.consumer_migration_policy not in UPGRADE_POLICIES
            or classic.protocol_type != "consumer"
            or classic.protocol_name is None
            or len(classic.members) > cfg.consumer_max_size
        ):
            return False
        members = [self._converted(classic, m) for m in classic.members.values()]
        if any(m is None for m in members):
            return False
        log.info("[GroupId %s] Upgrading the classic group to a consumer group.", op.group_id)
        self._end_classic_group(op, classic)
        generation = classic.generation_id
        for m in members:
            assert m is not None
            op.write(cg.MEMBER_METADATA, m.member_id, m.metadata_value())
        op.write(cg.GROUP_METADATA, "", cg.GroupEpochValue(generation))
        for m in members:
            assert m is not None
            value = cg.TargetAssignmentValue(to_topic_partitions(m.assigned))
            op.write(cg.TARGET_ASSIGNMENT_MEMBER, m.member_id, value)
        op.write(cg.TARGET_ASSIGNMENT_METADATA, "", cg.AssignmentEpochValue(generation))
        for m in members:
            assert m is not None
            op.write(cg.CURRENT_MEMBER_ASSIGNMENT, m.member_id, m.assignment_value())
            self.schedule_consumer_session(op.group_id, m, op.now_ms)
        return True

    def _converted(self, classic: ClassicGroup, m: Member) -> ConsumerGroupMember | None:
        subscription = parse_subscription(m.metadata(classic.protocol_name))
        if subscription is None:
            return None
        try:
            assigned = parse_assignment(m.assignment, self.image())
        except Exception:  # a malformed assignment: Kafka refuses the upgrade then
            return None
        epoch = classic.generation_id
        return ConsumerGroupMember(
            m.member_id,
            instance_id=m.group_instance_id,
            rack_id=subscription.rack_id,
            client_id=m.client_id,
            client_host=m.client_host,
            subscribed_topic_names=tuple(subscription.topics),
            rebalance_timeout_ms=m.rebalance_timeout_ms,
            classic=cg.ClassicMemberMetadata(m.session_timeout_ms, tuple(m.protocols)),
            member_epoch=epoch,
            previous_member_epoch=epoch,
            assigned=assigned,
        )

    def _end_classic_group(self, op: Operation, classic: ClassicGroup) -> None:
        """Parked joins and syncs learn of the new rebalance; the classic timers stop."""
        rebalancing = ErrorCode.REBALANCE_IN_PROGRESS
        for m in classic.members.values():
            if m.awaiting_join is not None:
                op.side.respond(m.awaiting_join, join_error(m.member_id, rebalancing))
            if m.awaiting_sync is not None:
                op.side.respond(m.awaiting_sync, sync_error(rebalancing))
            self.timers.cancel((HEARTBEAT, classic.group_id, m.member_id))
        self.timers.cancel((JOIN, classic.group_id, ""))
        self.timers.cancel((SYNC, classic.group_id, str(classic.generation_id)))
        op.delete_classic_group()

    def fence_member(self, op: Operation, member: ConsumerGroupMember) -> None:
        group = op.group
        others = [m for m in group.members.values() if m.member_id != member.member_id]
        if (
            others
            and not member.uses_classic_protocol
            and all(m.uses_classic_protocol for m in others)
            and self.config.consumer_migration_policy in DOWNGRADE_POLICIES
            and len(others) <= self.config.max_size
        ):
            self._downgrade(op, others)
        else:
            super().fence_member(op, member)

    def _downgrade(self, op: Operation, remaining: list[ConsumerGroupMember]) -> None:
        """The last member of the consumer protocol left: a classic group again, with the
        current assignments, rebalancing."""
        group = op.group
        log.info("[GroupId %s] Downgrading the consumer group to a classic group.", op.group_id)
        epoch, image = group.group_epoch, self.image()
        for m in group.members.values():
            self.cancel_consumer_timers(op.group_id, m.member_id)
        group_tombstones(op)
        classic = ClassicGroup(op.group_id, GroupState.STABLE, generation_id=epoch)
        assignments = {}
        for m in remaining:
            assert m.classic is not None
            protocols = list(m.classic.supported_protocols)
            data = encode_assignment(m.assigned, image, subscription_version(protocols[0][1]))
            classic.add(
                Member(
                    m.member_id,
                    m.instance_id,
                    m.client_id,
                    m.client_host,
                    m.rebalance_timeout_ms,
                    m.classic.session_timeout_ms,
                    "consumer",
                    protocols,
                    assignment=data,
                )
            )
            assignments[m.member_id] = data
        classic.protocol_name = classic.select_protocol()
        op.records.append(self.group_metadata_record(classic, assignments))
        self.groups[op.group_id] = classic
        for member in classic.members.values():
            self.schedule_heartbeat(classic, member, op.now_ms)
        self.prepare_rebalance(classic, op.now_ms, op.side)


def _owned(
    subscription: ConsumerProtocolSubscription, shard: ClassicMemberOps
) -> dict[bytes, list[int]]:
    pairs = [(t.topic, t.partitions) for t in subscription.owned_partitions]
    return {t: sorted(ps) for t, ps in to_ids(pairs, shard.image()).items()}


def _waiting_on_unreleased(group: ConsumerGroup, member: ConsumerGroupMember) -> bool:
    """Kafka's waitingOnUnreleasedPartition: a partition of its target still held."""
    for topic_id, partitions in group.target_of(member.member_id).items():
        mine = member.assigned.get(topic_id, frozenset())
        for p in partitions:
            if p not in mine and group.current_partition_epoch(topic_id, p) != -1:
                return True
    return False
