"""One shard of the group coordinator: the groups and offsets of one ``__consumer_offsets``
partition.

Calls take ``now_ms`` and return a CoordinatorResult (see result.py); nothing
here sleeps, reads a clock or touches a file. ``replay(key, value)`` rebuilds
the shard from the partition's records at load; ``tick(now_ms)`` fires the
session, rebalance, initial-delay and sync deadlines (``next_deadline_ms``
says when to call it next).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from strom.coordinator.group.base import OffsetAndMetadata
from strom.coordinator.group.consumer.admin import ConsumerAdminOps
from strom.coordinator.group.consumer.classic_ops import ClassicMemberOps
from strom.coordinator.group.consumer.leave import CONSUMER_TIMERS
from strom.coordinator.group.membership import JoinRequest
from strom.coordinator.group.offsets import OffsetOps
from strom.coordinator.group.result import CoordinatorResult
from strom.coordinator.group.session import SessionOps
from strom.coordinator.group.state import ClassicGroup, GroupState, Member
from strom.coordinator.group.txn_offsets import TxnOffsetOps
from strom.protocol.consumer_group_records import ConsumerGroupKey, decode_value
from strom.protocol.errors import ErrorCode
from strom.protocol.generated.describe_groups import DescribeGroupsResponse
from strom.protocol.generated.heartbeat import HeartbeatRequest, HeartbeatResponse
from strom.protocol.generated.leave_group import LeaveGroupRequest
from strom.protocol.generated.list_groups import ListGroupsResponse
from strom.protocol.generated.sync_group import SyncGroupRequest
from strom.protocol.group_records import (
    GroupMetadataKey,
    OffsetCommitKey,
    decode_group_metadata_value,
    decode_key,
    decode_offset_commit_value,
)

S = GroupState
DescribedGroup = DescribeGroupsResponse.DescribedGroup
DescribedMember = DescribeGroupsResponse.DescribedGroupMember
GROUP_TYPE_CLASSIC = "classic"


class GroupCoordinatorShard(
    SessionOps, OffsetOps, TxnOffsetOps, ClassicMemberOps, ConsumerAdminOps
):
    # -- classic requests for consumer groups (members using the classic protocol) ---------

    def _consumer_group_with_members(self, group_id: str) -> bool:
        group = self.consumer_groups.get(group_id)
        return group is not None and not group.is_empty()

    def join_group(self, handle: int, req: JoinRequest, now_ms: int) -> CoordinatorResult:
        if self._consumer_group_with_members(req.group_id):
            return self.classic_join_to_consumer_group(handle, req, now_ms)
        return super().join_group(handle, req, now_ms)

    def sync_group(self, handle: int, req: SyncGroupRequest, now_ms: int) -> CoordinatorResult:
        if self._consumer_group_with_members(req.group_id):
            return self.classic_sync_to_consumer_group(handle, req, now_ms)
        return super().sync_group(handle, req, now_ms)

    def heartbeat(self, req: HeartbeatRequest, now_ms: int) -> HeartbeatResponse:
        if self._consumer_group_with_members(req.group_id):
            return self.classic_heartbeat_to_consumer_group(req, now_ms)
        return super().heartbeat(req, now_ms)

    def leave_group(self, handle: int, req: LeaveGroupRequest, now_ms: int) -> CoordinatorResult:
        if self._consumer_group_with_members(req.group_id):
            return self.classic_leave_to_consumer_group(handle, req, now_ms)
        return super().leave_group(handle, req, now_ms)

    # -- timers ---------------------------------------------------------------------------

    def tick(self, now_ms: int) -> CoordinatorResult:
        """Fire the due timers one by one: a timer that an earlier one of the same tick
        re-scheduled (a join completed: new heartbeat deadlines) waits for its new
        deadline."""
        result = CoordinatorResult()
        for key in self.timers.pop_expired(now_ms):
            if self.timers.deadline(key) is not None:
                continue  # re-armed by an earlier timer of this tick
            kind, group_id, arg = key
            if kind in CONSUMER_TIMERS:
                result.extend(self.on_consumer_timer(kind, group_id, arg, now_ms))
            else:
                result.extend(self.on_timer(kind, group_id, arg, now_ms))
        return result

    def next_deadline_ms(self) -> int | None:
        return self.timers.next_deadline_ms()

    # -- DescribeGroups / ListGroups / DeleteGroups ----------------------------------------

    def describe_group(self, group_id: str) -> DescribedGroup:
        group = self.live_group(group_id)
        if group is None:
            return DescribedGroup(group_id=group_id, group_state=S.DEAD.value)
        stable = group.is_(S.STABLE)
        protocol = group.protocol_name if stable else None
        members = [
            DescribedMember(
                member_id=m.member_id,
                group_instance_id=m.group_instance_id,
                client_id=m.client_id,
                client_host=m.client_host,
                member_metadata=m.metadata(protocol) if stable else b"",
                member_assignment=m.assignment if stable else b"",
            )
            for m in group.members.values()
        ]
        return DescribedGroup(
            group_id=group_id,
            group_state=group.state.value,
            protocol_type=group.protocol_type or "",
            protocol_data=protocol or "",
            members=members,
        )

    def list_groups(
        self, states: Iterable[str] = (), types: Iterable[str] = ()
    ) -> list[ListGroupsResponse.ListedGroup]:
        wanted_states = {s.lower() for s in states}
        wanted_types = {t.lower() for t in types}
        consumer = self.consumer_listed_groups(wanted_states, wanted_types)
        if wanted_types and GROUP_TYPE_CLASSIC not in wanted_types:
            return consumer
        return [
            ListGroupsResponse.ListedGroup(
                group_id=g.group_id,
                protocol_type=g.protocol_type or "",
                group_state=g.state.value,
                group_type=GROUP_TYPE_CLASSIC,
            )
            for g in self.groups.values()
            if not g.is_(S.DEAD) and (not wanted_states or g.state.value.lower() in wanted_states)
        ] + consumer

    def delete_groups(
        self, group_ids: Sequence[str], now_ms: int
    ) -> tuple[dict[str, ErrorCode], CoordinatorResult]:
        errors: dict[str, ErrorCode] = {}
        result = CoordinatorResult()
        for group_id in group_ids:
            group = self.live_group(group_id)
            consumer_group = self.consumer_groups.get(group_id)
            if consumer_group is not None and not consumer_group.is_empty():
                errors[group_id] = ErrorCode.NON_EMPTY_GROUP
            elif consumer_group is not None:
                result.records += self._remove_offsets(
                    group_id, list(self.offsets.get(group_id, {}))
                )
                result.records += self.delete_consumer_group(group_id)
                errors[group_id] = ErrorCode.NONE
            elif group is None:
                errors[group_id] = ErrorCode.GROUP_ID_NOT_FOUND
            elif not group.is_(S.EMPTY):
                errors[group_id] = ErrorCode.NON_EMPTY_GROUP
            else:
                result.records += self.delete_group_records(group, now_ms)
                errors[group_id] = ErrorCode.NONE
        return errors, result

    def offset_delete(
        self, group_id: str, partitions: Sequence[tuple[str, int]]
    ) -> tuple[ErrorCode, dict[tuple[str, int], ErrorCode], CoordinatorResult]:
        error, partition_errors, records = self.delete_offsets(group_id, partitions)
        return error, partition_errors, CoordinatorResult(records=records)

    def expire(self, now_ms: int) -> CoordinatorResult:
        return CoordinatorResult(
            records=self.expire_offsets(now_ms, self.config.offsets_retention_ms)
        )

    # -- loading --------------------------------------------------------------------------

    def replay(self, key: bytes, value: bytes | None) -> None:
        """Apply one record of the partition (at load). Raises DecodeError on bad bytes."""
        decoded = decode_key(key)
        if isinstance(decoded, OffsetCommitKey):
            self._replay_offset(decoded, value)
        elif isinstance(decoded, GroupMetadataKey):
            self._replay_group(decoded.group, value)
        elif isinstance(decoded, ConsumerGroupKey):
            parsed = None if value is None else decode_value(decoded.record_type, value)
            self.replay_consumer_record(decoded, parsed)

    def _replay_offset(self, key: OffsetCommitKey, value: bytes | None) -> None:
        tp = (key.topic, key.partition)
        if value is None:
            committed = self.offsets.get(key.group)
            if committed is not None:
                committed.pop(tp, None)
                if not committed:
                    del self.offsets[key.group]
            return
        v = decode_offset_commit_value(value)
        self.offsets.setdefault(key.group, {})[tp] = OffsetAndMetadata(
            v.offset, v.leader_epoch, v.metadata, v.commit_timestamp, v.expire_timestamp
        )
        if key.group not in self.consumer_groups:
            self.groups.setdefault(key.group, ClassicGroup(key.group))

    def _replay_group(self, group_id: str, value: bytes | None) -> None:
        if value is None:
            self.groups.pop(group_id, None)
            if group_id in self.offsets and group_id not in self.consumer_groups:
                self.groups[group_id] = ClassicGroup(group_id)
            return
        v = decode_group_metadata_value(value)
        group = ClassicGroup(
            group_id,
            state=S.STABLE if v.members else S.EMPTY,
            state_timestamp_ms=v.current_state_timestamp,
            generation_id=v.generation,
            protocol_type=v.protocol_type or None,
            protocol_name=v.protocol,
        )
        for m in v.members:
            protocols = [(v.protocol, m.subscription)] if v.protocol is not None else []
            group.add(
                Member(
                    m.member_id,
                    m.group_instance_id,
                    m.client_id,
                    m.client_host,
                    m.rebalance_timeout,
                    m.session_timeout,
                    v.protocol_type,
                    protocols,
                    assignment=m.assignment,
                )
            )
        group.leader_id = v.leader if v.leader in group.members else group.leader_id
        self.groups[group_id] = group

    def on_loaded(self, now_ms: int) -> None:
        """After replay: expect a heartbeat from every loaded member within its session."""
        for group in self.groups.values():
            for member in group.members.values():
                self.schedule_heartbeat(group, member, now_ms)
        self.on_consumer_groups_loaded(now_ms)
