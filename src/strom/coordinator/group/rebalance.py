"""The classic protocol's rebalance and its timers (Kafka's GroupCoordinator /
ClassicGroup): a rebalance prepared, the join phase completed and the assignment
propagated to SyncGroup's waiting members; the initial rebalance delay extended
while new members arrive, members that do not rejoin within the rebalance timeout
dropped (static members kept), members that do not send SyncGroup within the
rebalance timeout dropped, and silent members expired after their session timeout.
JoinGroup itself is membership.py.
"""

from __future__ import annotations

import logging

from strom.coordinator.group.base import (
    HEARTBEAT,
    JOIN,
    PENDING,
    SYNC,
    ShardBase,
    join_error,
    sync_error,
)
from strom.coordinator.group.result import CoordinatorResult
from strom.coordinator.group.state import ClassicGroup, GroupState, Member
from strom.protocol.errors import ErrorCode
from strom.protocol.generated.join_group import JoinGroupResponse
from strom.protocol.generated.sync_group import SyncGroupResponse

S = GroupState
log = logging.getLogger(__name__)


class RebalanceOps(ShardBase):
    def _join_response(
        self,
        group: ClassicGroup,
        member: Member,
        *,
        with_members: bool,
        leader: str | None = None,
        skip_assignment: bool = False,
    ) -> JoinGroupResponse:
        members = []
        if with_members and group.leader_id == member.member_id:
            members = [
                JoinGroupResponse.JoinGroupResponseMember(mid, iid, meta)
                for mid, iid, meta in group.current_member_metadata()
            ]
        return JoinGroupResponse(
            error_code=0,
            generation_id=group.generation_id,
            protocol_type=group.protocol_type,
            protocol_name=group.protocol_name,
            leader=(leader if leader is not None else group.leader_id) or "",
            skip_assignment=skip_assignment,
            member_id=member.member_id,
            members=members,
        )

    # -- rebalance ----------------------------------------------------------------------

    def maybe_prepare_rebalance(
        self, group: ClassicGroup, now_ms: int, result: CoordinatorResult
    ) -> None:
        if group.can_rebalance():
            self.prepare_rebalance(group, now_ms, result)

    def prepare_rebalance(
        self, group: ClassicGroup, now_ms: int, result: CoordinatorResult
    ) -> None:
        if group.is_(S.COMPLETING_REBALANCE):
            self._propagate_assignment_error(group, ErrorCode.REBALANCE_IN_PROGRESS, now_ms, result)
        group.pending_sync_members.clear()
        self.timers.cancel((SYNC, group.group_id, str(group.generation_id)))
        key = (JOIN, group.group_id, "")
        if group.is_(S.EMPTY):
            delay = self.config.initial_rebalance_delay_ms
            group.initial_delay_remaining_ms = max(group.rebalance_timeout_ms() - delay, 0)
            group.new_member_added = False
            self.timers.schedule(key, now_ms + delay)
        else:
            self.timers.schedule(key, now_ms + group.rebalance_timeout_ms())
        group.transition_to(S.PREPARING_REBALANCE, now_ms)
        log.info(
            "Preparing to rebalance group %s with old generation %d",
            group.group_id,
            group.generation_id,
        )
        # Kafka's tryCompleteElseWatch: a join every member already awaits completes now
        # (the last member gone: the group is Empty before the next request sees it)
        self.maybe_complete_join(group, now_ms, result)

    def maybe_complete_join(
        self, group: ClassicGroup, now_ms: int, result: CoordinatorResult
    ) -> None:
        """DelayedJoin.tryComplete: every member rejoined (the initial delay always waits)."""
        if (
            group.is_(S.PREPARING_REBALANCE)
            and group.initial_delay_remaining_ms is None
            and group.has_all_members_joined()
        ):
            self.timers.cancel((JOIN, group.group_id, ""))
            self.complete_join(group, now_ms, result)

    def on_join_deadline(self, group: ClassicGroup, now_ms: int, result: CoordinatorResult) -> None:
        remaining = group.initial_delay_remaining_ms
        if remaining is not None:
            if group.new_member_added and remaining > 0:
                group.new_member_added = False
                delay = min(self.config.initial_rebalance_delay_ms, remaining)
                group.initial_delay_remaining_ms = max(remaining - delay, 0)
                self.timers.schedule((JOIN, group.group_id, ""), now_ms + delay)
                return
            group.initial_delay_remaining_ms = None
        self.complete_join(group, now_ms, result)

    def complete_join(self, group: ClassicGroup, now_ms: int, result: CoordinatorResult) -> None:
        if not group.is_(S.PREPARING_REBALANCE):
            return
        for member in group.not_yet_rejoined():
            if member.group_instance_id is None:
                log.info("Group %s removes %s: did not rejoin", group.group_id, member.member_id)
                group.remove(member.member_id)
                self.cancel_heartbeat(group, member.member_id)
        if not group.maybe_elect_new_joined_leader() and group.members:
            self.timers.schedule((JOIN, group.group_id, ""), now_ms + group.rebalance_timeout_ms())
            return
        group.init_next_generation(now_ms)
        log.info(
            "Group %s generation %d is %s with %d member(s)",
            group.group_id,
            group.generation_id,
            group.state.value,
            len(group.members),
        )
        if group.is_(S.EMPTY):
            result.records.append(self.group_metadata_record(group, {}))
            return
        for member in group.members.values():
            if member.awaiting_join is not None:
                result.respond(
                    member.awaiting_join, self._join_response(group, member, with_members=True)
                )
                member.awaiting_join = None
            member.is_new = False
            self.schedule_heartbeat(group, member, now_ms)
        self.timers.schedule(
            (SYNC, group.group_id, str(group.generation_id)),
            now_ms + group.rebalance_timeout_ms(),
        )

    def on_sync_deadline(self, group: ClassicGroup, now_ms: int, result: CoordinatorResult) -> None:
        if group.state not in (S.COMPLETING_REBALANCE, S.STABLE) or not group.pending_sync_members:
            return
        for member_id in list(group.pending_sync_members):
            member = group.remove(member_id)
            self.cancel_heartbeat(group, member_id)
            if member is not None and member.awaiting_sync is not None:
                result.respond(member.awaiting_sync, sync_error(ErrorCode.UNKNOWN_MEMBER_ID))
        self.prepare_rebalance(group, now_ms, result)

    def _propagate_assignment_error(
        self, group: ClassicGroup, error: ErrorCode, now_ms: int, result: CoordinatorResult
    ) -> None:
        for member in group.members.values():
            member.assignment = b""
            if member.awaiting_sync is not None:
                result.respond(member.awaiting_sync, sync_error(error))
                member.awaiting_sync = None
                self.schedule_heartbeat(group, member, now_ms)

    def _propagate_assignment(
        self,
        group: ClassicGroup,
        assignment: dict[str, bytes],
        now_ms: int,
        result: CoordinatorResult,
    ) -> None:
        for member in group.members.values():
            member.assignment = assignment.get(member.member_id, b"")
            if member.awaiting_sync is not None:
                result.respond(
                    member.awaiting_sync,
                    SyncGroupResponse(
                        protocol_type=group.protocol_type,
                        protocol_name=group.protocol_name,
                        assignment=member.assignment,
                    ),
                )
                member.awaiting_sync = None
                self.schedule_heartbeat(group, member, now_ms)

    def remove_pending_member(
        self, group: ClassicGroup, member_id: str, now_ms: int, result: CoordinatorResult
    ) -> None:
        group.remove(member_id)
        self.timers.cancel((PENDING, group.group_id, member_id))
        if group.is_(S.PREPARING_REBALANCE):
            self.maybe_complete_join(group, now_ms, result)

    def remove_member_and_update_group(
        self, group: ClassicGroup, member: Member, now_ms: int, result: CoordinatorResult
    ) -> None:
        log.info("Member %s leaves group %s", member.member_id, group.group_id)
        if member.awaiting_join is not None:
            result.respond(member.awaiting_join, join_error("", ErrorCode.UNKNOWN_MEMBER_ID))
            member.awaiting_join = None
        if member.awaiting_sync is not None:
            result.respond(member.awaiting_sync, sync_error(ErrorCode.UNKNOWN_MEMBER_ID))
            member.awaiting_sync = None
        group.remove(member.member_id)
        self.cancel_heartbeat(group, member.member_id)
        if group.state in (S.STABLE, S.COMPLETING_REBALANCE):
            self.maybe_prepare_rebalance(group, now_ms, result)
        elif group.is_(S.PREPARING_REBALANCE):
            self.maybe_complete_join(group, now_ms, result)

    # -- timers -----------------------------------------------------------------------------

    def on_timer(self, kind: str, group_id: str, arg: str, now_ms: int) -> CoordinatorResult:
        result = CoordinatorResult()
        group = self.live_group(group_id)
        if group is None:
            return result
        if kind == HEARTBEAT:
            member = group.members.get(arg)
            if member is None:
                return result
            waiting = member.awaiting_join is not None or member.awaiting_sync is not None
            if member.is_new or not waiting:
                log.info("Member %s in group %s has failed, removing it", arg, group_id)
                self.remove_member_and_update_group(group, member, now_ms, result)
        elif kind == PENDING:
            if arg in group.pending_members:
                self.remove_pending_member(group, arg, now_ms, result)
        elif kind == JOIN:
            if group.is_(S.PREPARING_REBALANCE):
                self.on_join_deadline(group, now_ms, result)
        elif kind == SYNC and arg == str(group.generation_id):
            self.on_sync_deadline(group, now_ms, result)
        return result
