"""SyncGroup, Heartbeat and LeaveGroup of the classic protocol (see membership.py)."""

from __future__ import annotations

from strom.coordinator.group.base import SYNC, sync_error
from strom.coordinator.group.membership import MembershipOps
from strom.coordinator.group.result import CoordinatorResult, map_store_error
from strom.coordinator.group.state import ClassicGroup, GroupState
from strom.protocol.errors import ErrorCode
from strom.protocol.generated.heartbeat import HeartbeatRequest, HeartbeatResponse
from strom.protocol.generated.leave_group import LeaveGroupRequest, LeaveGroupResponse
from strom.protocol.generated.sync_group import SyncGroupRequest, SyncGroupResponse

S = GroupState


class SessionOps(MembershipOps):
    # -- SyncGroup ----------------------------------------------------------------------

    def sync_group(self, handle: int, req: SyncGroupRequest, now_ms: int) -> CoordinatorResult:
        result = CoordinatorResult()
        group = self.groups.get(req.group_id) if req.group_id else None
        error = self._validate_sync(group, req)
        if error is not None:
            result.respond(handle, sync_error(error))
            return result
        assert group is not None
        member = group.members[req.member_id]
        if group.is_(S.EMPTY):
            result.respond(handle, sync_error(ErrorCode.UNKNOWN_MEMBER_ID))
        elif group.is_(S.PREPARING_REBALANCE):
            result.respond(handle, sync_error(ErrorCode.REBALANCE_IN_PROGRESS))
        elif group.is_(S.STABLE):
            self._remove_pending_sync(group, member.member_id)
            result.respond(
                handle,
                SyncGroupResponse(
                    protocol_type=group.protocol_type,
                    protocol_name=group.protocol_name,
                    assignment=member.assignment,
                ),
            )
            self.schedule_heartbeat(group, member, now_ms)
        else:
            if member.awaiting_sync is not None:
                result.respond(member.awaiting_sync, sync_error(ErrorCode.REBALANCE_IN_PROGRESS))
            member.awaiting_sync = handle
            self._remove_pending_sync(group, member.member_id)
            if group.leader_id == member.member_id:
                self._store_assignment(group, req, now_ms, result)
        return result

    def _validate_sync(self, group: ClassicGroup | None, req: SyncGroupRequest) -> ErrorCode | None:
        if not req.group_id:
            return ErrorCode.INVALID_GROUP_ID
        if group is None:
            return ErrorCode.UNKNOWN_MEMBER_ID
        if group.is_(S.DEAD):
            return ErrorCode.COORDINATOR_NOT_AVAILABLE
        error = self.validate_current_member(group, req.member_id, req.group_instance_id)
        if error is not None:
            return error
        if req.generation_id != group.generation_id:
            return ErrorCode.ILLEGAL_GENERATION
        if req.protocol_type is not None and req.protocol_type != group.protocol_type:
            return ErrorCode.INCONSISTENT_GROUP_PROTOCOL
        if req.protocol_name is not None and req.protocol_name != group.protocol_name:
            return ErrorCode.INCONSISTENT_GROUP_PROTOCOL
        return None

    def _remove_pending_sync(self, group: ClassicGroup, member_id: str) -> None:
        group.pending_sync_members.discard(member_id)
        if not group.pending_sync_members:
            self.timers.cancel((SYNC, group.group_id, str(group.generation_id)))

    def _store_assignment(
        self, group: ClassicGroup, req: SyncGroupRequest, now_ms: int, result: CoordinatorResult
    ) -> None:
        given = {a.member_id: a.assignment for a in req.assignments}
        assignment = {mid: given.get(mid, b"") for mid in group.members}
        generation = group.generation_id
        result.records.append(self.group_metadata_record(group, assignment))

        def then(error: ErrorCode) -> CoordinatorResult:
            out = CoordinatorResult()
            if self.groups.get(group.group_id) is not group:
                return out
            if not group.is_(S.COMPLETING_REBALANCE) or group.generation_id != generation:
                return out
            if error != ErrorCode.NONE:
                code = map_store_error(error, offsets=False)
                self._propagate_assignment_error(group, code, now_ms, out)
                self.maybe_prepare_rebalance(group, now_ms, out)
            else:
                self._propagate_assignment(group, assignment, now_ms, out)
                group.transition_to(S.STABLE, now_ms)
            return out

        result.then.append(then)

    # -- Heartbeat and LeaveGroup ------------------------------------------------------------

    def heartbeat(self, req: HeartbeatRequest, now_ms: int) -> HeartbeatResponse:
        return HeartbeatResponse(error_code=self._heartbeat_error(req, now_ms))

    def _heartbeat_error(self, req: HeartbeatRequest, now_ms: int) -> ErrorCode:
        if not req.group_id:
            return ErrorCode.INVALID_GROUP_ID
        group = self.groups.get(req.group_id)
        if group is None:
            return ErrorCode.UNKNOWN_MEMBER_ID
        if group.is_(S.DEAD):
            return ErrorCode.COORDINATOR_NOT_AVAILABLE
        error = self.validate_current_member(group, req.member_id, req.group_instance_id)
        if error is not None:
            return error
        if req.generation_id != group.generation_id:
            return ErrorCode.ILLEGAL_GENERATION
        if group.is_(S.EMPTY):
            return ErrorCode.UNKNOWN_MEMBER_ID
        self.schedule_heartbeat(group, group.members[req.member_id], now_ms)
        if group.is_(S.PREPARING_REBALANCE):
            return ErrorCode.REBALANCE_IN_PROGRESS
        return ErrorCode.NONE

    def leave_group(self, handle: int, req: LeaveGroupRequest, now_ms: int) -> CoordinatorResult:
        """``req.members`` holds the leaving members (the handler folds v0-2 into it)."""
        result = CoordinatorResult()
        response = LeaveGroupResponse()
        group = self.groups.get(req.group_id)
        if not req.group_id:
            response.error_code = ErrorCode.INVALID_GROUP_ID
        elif group is not None and group.is_(S.DEAD):
            response.error_code = ErrorCode.COORDINATOR_NOT_AVAILABLE
        else:
            for identity in req.members:
                code = (
                    ErrorCode.UNKNOWN_MEMBER_ID
                    if group is None
                    else self._leave_one(group, identity, now_ms, result)
                )
                response.members.append(
                    LeaveGroupResponse.MemberResponse(
                        identity.member_id, identity.group_instance_id, code
                    )
                )
        result.respond(handle, response)
        return result

    def _leave_one(
        self,
        group: ClassicGroup,
        identity: LeaveGroupRequest.MemberIdentity,
        now_ms: int,
        result: CoordinatorResult,
    ) -> ErrorCode:
        member_id, instance = identity.member_id, identity.group_instance_id
        if member_id == "":
            current = group.static_members.get(instance) if instance is not None else None
            if current is None:
                return ErrorCode.UNKNOWN_MEMBER_ID
            self.remove_member_and_update_group(group, group.members[current], now_ms, result)
            return ErrorCode.NONE
        if member_id in group.pending_members:
            self.remove_pending_member(group, member_id, now_ms, result)
            return ErrorCode.NONE
        error = self.validate_current_member(group, member_id, instance)
        if error is not None:
            return error
        self.remove_member_and_update_group(group, group.members[member_id], now_ms, result)
        return ErrorCode.NONE
