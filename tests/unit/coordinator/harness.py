"""A fake runtime around one GroupCoordinatorShard: fake clock, in-memory log, handles."""

from __future__ import annotations

import itertools
from typing import Any

from strom.common.types import FakeClock
from strom.coordinator.group.config import GroupConfig
from strom.coordinator.group.coordinator import GroupCoordinatorShard
from strom.coordinator.group.membership import JoinRequest
from strom.coordinator.group.offsets import CommitRequest, OffsetCommit
from strom.coordinator.group.records import CoordinatorRecord
from strom.coordinator.group.result import CoordinatorResult
from strom.coordinator.group.state import GroupState
from strom.protocol.errors import ErrorCode
from strom.protocol.generated.heartbeat import HeartbeatRequest
from strom.protocol.generated.leave_group import LeaveGroupRequest
from strom.protocol.generated.sync_group import SyncGroupRequest

PROTOCOLS = [("range", b"range-meta"), ("roundrobin", b"rr-meta")]


class Harness:
    def __init__(self, **config: Any) -> None:
        config.setdefault("initial_rebalance_delay_ms", 0)
        self.config = GroupConfig(**config)
        self.clock = FakeClock()
        counter = itertools.count(1)
        self.shard = GroupCoordinatorShard(
            self.config, member_id_factory=lambda prefix: f"{prefix}-{next(counter)}"
        )
        self.log: list[CoordinatorRecord] = []
        self.responses: dict[int, Any] = {}
        self.write_error = ErrorCode.NONE
        self._handles = itertools.count(1)

    @property
    def now(self) -> int:
        return self.clock.now_ms()

    def run(self, result: CoordinatorResult) -> None:
        queue = [result]
        while queue:
            current = queue.pop(0)
            for handle, response in current.responses:
                assert handle not in self.responses, f"handle {handle} answered twice"
                self.responses[handle] = response
            error = ErrorCode.NONE
            if current.records:
                if self.write_error == ErrorCode.NONE:
                    self.log += current.records
                error = self.write_error
            queue += [then(error) for then in current.then]

    def call(self, op: Any) -> int:
        handle = next(self._handles)
        self.run(op(handle))
        self.run(self.shard.tick(self.now))  # as the runtime does: fire what is already due
        return handle

    def advance(self, ms: int) -> None:
        self.clock.advance(ms)
        self.run(self.shard.tick(self.now))

    def group(self, group_id: str = "g") -> Any:
        return self.shard.groups[group_id]

    def state(self, group_id: str = "g") -> GroupState:
        return self.shard.groups[group_id].state  # type: ignore[no-any-return]

    # -- requests ----------------------------------------------------------------

    def join(
        self,
        member_id: str = "",
        *,
        group: str = "g",
        instance: str | None = None,
        protocols: list[tuple[str, bytes]] | None = None,
        protocol_type: str = "consumer",
        session_ms: int = 10_000,
        rebalance_ms: int = 30_000,
        v4: bool = True,
        v9: bool = False,
    ) -> int:
        req = JoinRequest(
            group,
            member_id,
            instance,
            protocol_type,
            PROTOCOLS if protocols is None else protocols,
            session_ms,
            rebalance_ms,
            client_id="client",
            client_host="/127.0.0.1",
            require_known_member_id=v4,
            supports_skip_assignment=v9,
        )
        return self.call(lambda h: self.shard.join_group(h, req, self.now))

    def join_new(self, **kwargs: Any) -> str:
        """A dynamic member's two-step join; returns its member id (its join stays parked)."""
        first = self.responses[self.join(**kwargs)]
        assert first.error_code == ErrorCode.MEMBER_ID_REQUIRED
        self.last_join = self.join(first.member_id, **kwargs)
        return str(first.member_id)

    def sync(
        self,
        member_id: str,
        generation: int,
        assignments: dict[str, bytes] | None = None,
        *,
        group: str = "g",
        instance: str | None = None,
    ) -> int:
        req = SyncGroupRequest(
            group_id=group,
            generation_id=generation,
            member_id=member_id,
            group_instance_id=instance,
            assignments=[
                SyncGroupRequest.SyncGroupRequestAssignment(m, a)
                for m, a in (assignments or {}).items()
            ],
        )
        return self.call(lambda h: self.shard.sync_group(h, req, self.now))

    def heartbeat(
        self, member_id: str, generation: int, *, group: str = "g", instance: str | None = None
    ) -> ErrorCode:
        req = HeartbeatRequest(group, generation, member_id, instance)
        return ErrorCode(self.shard.heartbeat(req, self.now).error_code)

    def leave(self, *members: tuple[str, str | None], group: str = "g") -> Any:
        req = LeaveGroupRequest(
            group_id=group, members=[LeaveGroupRequest.MemberIdentity(m, i) for m, i in members]
        )
        return self.responses[self.call(lambda h: self.shard.leave_group(h, req, self.now))]

    def commit(
        self,
        offsets: dict[tuple[str, int], tuple[int, str | None]],
        *,
        group: str = "g",
        generation: int = -1,
        member_id: str = "",
        instance: str | None = None,
    ) -> dict[tuple[str, int], ErrorCode]:
        req = CommitRequest(
            group,
            generation,
            member_id,
            instance,
            -1,
            [OffsetCommit(t, p, o, 3, meta) for (t, p), (o, meta) in offsets.items()],
        )
        handle = self.call(lambda h: self.shard.commit_offsets(h, req, self.now))
        return dict(self.responses[handle])

    def form(self, n: int, **kwargs: Any) -> list[str]:
        """n dynamic members joined and synced (leader assigns b"a-<id>"): a Stable group."""
        ids = [self.join_new(**kwargs) for _ in range(n)]
        while self.state() is GroupState.PREPARING_REBALANCE:
            for m in list(self.group().members.values()):
                if m.awaiting_join is None:
                    self.join(m.member_id, **kwargs)
        gen = self.group().generation_id
        leader = self.group().leader_id
        for m in ids:
            if m != leader:
                self.sync(m, gen)
        self.sync(leader, gen, {m: f"a-{m}".encode() for m in ids})
        assert self.state() is GroupState.STABLE
        return ids
