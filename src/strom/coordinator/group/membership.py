"""JoinGroup of the classic protocol; SyncGroup, Heartbeat and LeaveGroup are in
session.py, the rebalance and its timers in rebalance.py.

Kafka's classic protocol (GroupCoordinator / ClassicGroup), decision for
decision: MEMBER_ID_REQUIRED for dynamic members joining with JoinGroup v4+
(KIP-394), static members replaced in place and fenced with FENCED_INSTANCE_ID
(KIP-345), and a member's join answered at once when the group need not
rebalance for it.
"""

from __future__ import annotations

from dataclasses import dataclass

from strom.coordinator.group.base import PENDING, join_error, sync_error
from strom.coordinator.group.consumer.admin import give_way_to_classic
from strom.coordinator.group.rebalance import RebalanceOps
from strom.coordinator.group.result import CoordinatorResult, map_store_error
from strom.coordinator.group.state import ClassicGroup, GroupState, Member
from strom.protocol.errors import ErrorCode

S = GroupState


@dataclass(frozen=True, slots=True)
class JoinRequest:
    """A JoinGroup as the coordinator sees it (version-independent)."""

    group_id: str
    member_id: str
    group_instance_id: str | None
    protocol_type: str
    protocols: list[tuple[str, bytes]]
    session_timeout_ms: int
    rebalance_timeout_ms: int
    client_id: str = ""
    client_host: str = ""
    require_known_member_id: bool = True  # JoinGroup v4+
    supports_skip_assignment: bool = False  # JoinGroup v9+


class MembershipOps(RebalanceOps):
    # -- JoinGroup ------------------------------------------------------------------

    def join_group(self, handle: int, req: JoinRequest, now_ms: int) -> CoordinatorResult:
        result = CoordinatorResult()
        tombstones = give_way_to_classic(self, req.group_id)
        if tombstones is None:  # a consumer group with members
            result.respond(handle, join_error(req.member_id, ErrorCode.INCONSISTENT_GROUP_PROTOCOL))
            return result
        result.records += tombstones
        group, error = self._join_target(req, now_ms)
        if group is None:
            result.respond(handle, join_error(req.member_id, error))
            return result
        unknown = req.member_id == ""
        if not self._accept_joining_member(group, req.member_id):
            if group.remove(req.member_id) is not None:
                self.cancel_heartbeat(group, req.member_id)
            result.respond(handle, join_error("", ErrorCode.GROUP_MAX_SIZE_REACHED))
        elif group.is_(S.DEAD):
            result.respond(handle, join_error(req.member_id, ErrorCode.COORDINATOR_NOT_AVAILABLE))
        elif not group.supports_protocols(req.protocol_type, [n for n, _ in req.protocols]):
            result.respond(handle, join_error(req.member_id, ErrorCode.INCONSISTENT_GROUP_PROTOCOL))
        elif unknown:
            self._new_member_join(group, handle, req, now_ms, result)
        else:
            self._current_member_join(group, handle, req, now_ms, result)
        if group.is_(S.PREPARING_REBALANCE):
            self.maybe_complete_join(group, now_ms, result)
        return result

    def _join_target(self, req: JoinRequest, now_ms: int) -> tuple[ClassicGroup | None, ErrorCode]:
        """The group a JoinGroup goes to (created for unknown members), else the error."""
        cfg = self.config
        if not req.group_id:
            return None, ErrorCode.INVALID_GROUP_ID
        if not cfg.min_session_timeout_ms <= req.session_timeout_ms <= cfg.max_session_timeout_ms:
            return None, ErrorCode.INVALID_SESSION_TIMEOUT
        group = self.groups.get(req.group_id)
        if group is None:
            if req.member_id != "":
                return None, ErrorCode.UNKNOWN_MEMBER_ID
            group = self.get_or_create_group(req.group_id, now_ms)
        return group, ErrorCode.NONE

    def _accept_joining_member(self, group: ClassicGroup, member_id: str) -> bool:
        max_size = self.config.max_size
        if group.state in (S.EMPTY, S.DEAD):
            return True
        member = group.members.get(member_id)
        if group.is_(S.PREPARING_REBALANCE):
            awaiting = member is not None and member.awaiting_join is not None
            return awaiting or group.num_awaiting_join < max_size
        return member is not None or len(group.members) < max_size

    def _new_member_join(
        self,
        group: ClassicGroup,
        handle: int,
        req: JoinRequest,
        now_ms: int,
        result: CoordinatorResult,
    ) -> None:
        instance = req.group_instance_id
        new_id = self.new_member_id(instance if instance is not None else req.client_id)
        if instance is not None:
            old_id = group.static_members.get(instance)
            if old_id is not None:
                self._update_static_member(group, old_id, new_id, handle, req, now_ms, result)
            else:
                self._add_member_and_rebalance(group, new_id, handle, req, now_ms, result)
        elif req.require_known_member_id:
            group.pending_members.add(new_id)
            self.timers.schedule((PENDING, group.group_id, new_id), now_ms + req.session_timeout_ms)
            result.respond(handle, join_error(new_id, ErrorCode.MEMBER_ID_REQUIRED))
        else:
            self._add_member_and_rebalance(group, new_id, handle, req, now_ms, result)

    def _current_member_join(
        self,
        group: ClassicGroup,
        handle: int,
        req: JoinRequest,
        now_ms: int,
        result: CoordinatorResult,
    ) -> None:
        member_id = req.member_id
        if member_id in group.pending_members:
            self.timers.cancel((PENDING, group.group_id, member_id))
            self._add_member_and_rebalance(group, member_id, handle, req, now_ms, result)
            return
        error = self.validate_current_member(group, member_id, req.group_instance_id)
        if error is not None:
            result.respond(handle, join_error(member_id, error))
            return
        member = group.members[member_id]
        if group.is_(S.PREPARING_REBALANCE):
            self._update_member_and_rebalance(group, member, handle, req, now_ms, result)
        elif group.is_(S.COMPLETING_REBALANCE):
            if member.matches(req.protocols):
                result.respond(handle, self._join_response(group, member, with_members=True))
            else:
                self._update_member_and_rebalance(group, member, handle, req, now_ms, result)
        elif group.is_(S.STABLE):
            if group.leader_id == member_id or not member.matches(req.protocols):
                self._update_member_and_rebalance(group, member, handle, req, now_ms, result)
            else:
                result.respond(handle, self._join_response(group, member, with_members=False))
        else:
            result.respond(handle, join_error(member_id, ErrorCode.UNKNOWN_MEMBER_ID))

    def _add_member_and_rebalance(
        self,
        group: ClassicGroup,
        member_id: str,
        handle: int,
        req: JoinRequest,
        now_ms: int,
        result: CoordinatorResult,
    ) -> None:
        member = Member(
            member_id,
            req.group_instance_id,
            req.client_id,
            req.client_host,
            req.rebalance_timeout_ms,
            req.session_timeout_ms,
            req.protocol_type,
            list(req.protocols),
            awaiting_join=handle,
            is_new=True,
        )
        if group.is_(S.PREPARING_REBALANCE) and group.generation_id == 0:
            group.new_member_added = True
        group.add(member)
        self.schedule_heartbeat(group, member, now_ms)
        self.maybe_prepare_rebalance(group, now_ms, result)

    def _set_awaiting_join(self, member: Member, handle: int, result: CoordinatorResult) -> None:
        if member.awaiting_join is not None and member.awaiting_join != handle:
            result.respond(
                member.awaiting_join, join_error(member.member_id, ErrorCode.REBALANCE_IN_PROGRESS)
            )
        member.awaiting_join = handle

    def _update_member_and_rebalance(
        self,
        group: ClassicGroup,
        member: Member,
        handle: int,
        req: JoinRequest,
        now_ms: int,
        result: CoordinatorResult,
    ) -> None:
        member.protocols = list(req.protocols)
        member.rebalance_timeout_ms = req.rebalance_timeout_ms
        member.session_timeout_ms = req.session_timeout_ms
        self._set_awaiting_join(member, handle, result)
        self.maybe_prepare_rebalance(group, now_ms, result)

    def _update_static_member(
        self,
        group: ClassicGroup,
        old_id: str,
        new_id: str,
        handle: int,
        req: JoinRequest,
        now_ms: int,
        result: CoordinatorResult,
    ) -> None:
        instance = req.group_instance_id
        assert instance is not None
        current_leader = group.leader_id
        member = group.replace_static_member(instance, old_id, new_id)
        if member.awaiting_join is not None:
            result.respond(member.awaiting_join, join_error(old_id, ErrorCode.FENCED_INSTANCE_ID))
            member.awaiting_join = None
        if member.awaiting_sync is not None:
            result.respond(member.awaiting_sync, sync_error(ErrorCode.FENCED_INSTANCE_ID))
            member.awaiting_sync = None
        self.cancel_heartbeat(group, old_id)
        self.schedule_heartbeat(group, member, now_ms)
        old = (member.protocols, member.rebalance_timeout_ms, member.session_timeout_ms)
        member.protocols = list(req.protocols)
        member.rebalance_timeout_ms = req.rebalance_timeout_ms
        member.session_timeout_ms = req.session_timeout_ms
        member.awaiting_join = handle
        if group.is_(S.STABLE):
            if group.protocol_name != group.select_protocol():
                self.maybe_prepare_rebalance(group, now_ms, result)
                return
            assignment = {m.member_id: m.assignment for m in group.members.values()}
            result.records.append(self.group_metadata_record(group, assignment))

            def then(error: ErrorCode) -> CoordinatorResult:
                out = CoordinatorResult()
                if member.awaiting_join != handle:
                    return out
                member.awaiting_join = None
                if error != ErrorCode.NONE:
                    member.protocols, member.rebalance_timeout_ms, member.session_timeout_ms = old
                    group.replace_static_member(instance, new_id, old_id)
                    self.cancel_heartbeat(group, new_id)
                    self.schedule_heartbeat(group, member, now_ms)
                    response = join_error("", map_store_error(error, offsets=False))
                    response.generation_id = group.generation_id
                    out.respond(handle, response)
                    return out
                skip = req.supports_skip_assignment
                is_leader = group.leader_id == new_id
                out.respond(
                    handle,
                    self._join_response(
                        group,
                        member,
                        with_members=skip and is_leader,
                        leader=group.leader_id if skip else current_leader,
                        skip_assignment=skip and is_leader,
                    ),
                )
                return out

            result.then.append(then)
        elif group.is_(S.COMPLETING_REBALANCE):
            self.prepare_rebalance(group, now_ms, result)
