"""The consumer's group IO: coordinator, join/sync, background heartbeats, offsets.

Decisions are :class:`~strom.client.membership.GroupMember`'s; this module only
sends what it asks for. Heartbeats run in their own task, independent of poll,
every ``heartbeat.interval.ms``; when ``max.poll.interval.ms`` passes without a
poll the member leaves the group (as Kafka's heartbeat thread does) and rejoins
on the next poll. JoinGroup may wait up to the rebalance timeout
(max.poll.interval.ms), so it gets that much more than request.timeout.ms.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Iterable, Mapping

from strom.client.aio.client import AIOClient
from strom.client.aio.connection import BrokerConnection
from strom.client.aio.coordinators import GROUP, find_coordinator, now_ms
from strom.client.assignors import Subscription, assign
from strom.client.consumer_config import ConsumerConfig
from strom.client.errors import error_for
from strom.client.membership import (
    COORDINATOR_ERRORS,
    GroupMember,
    JoinResult,
    Next,
    decode_assignment,
    encode_assignment,
)
from strom.client.messages import CommitFailedError
from strom.common.types import TopicPartition
from strom.protocol.api_versions import ApiKey
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.generated.offset_commit import OffsetCommitRequest
from strom.protocol.generated.offset_fetch import OffsetFetchRequest, OffsetFetchResponse

Offsets = Mapping[TopicPartition, tuple[int, str | None]]
_REJOIN_CODES = (
    ErrorCode.ILLEGAL_GENERATION,
    ErrorCode.UNKNOWN_MEMBER_ID,
    ErrorCode.REBALANCE_IN_PROGRESS,
    ErrorCode.FENCED_INSTANCE_ID,
    ErrorCode.STALE_MEMBER_EPOCH,
    ErrorCode.FENCED_MEMBER_EPOCH,
)


class ConsumerGroup:
    """A consumer's classic-group IO (Kafka's ConsumerCoordinator): join and sync,
    heartbeats, offset commits and fetches."""

    def __init__(self, client: AIOClient, config: ConsumerConfig) -> None:
        assert config.group_id is not None
        self.client = client
        self.config = config
        self.group_id = config.group_id
        self.member = GroupMember(
            config.group_id,
            session_timeout_ms=config.session_timeout_ms,
            rebalance_timeout_ms=config.max_poll_interval_ms,
            heartbeat_interval_ms=config.heartbeat_interval_ms,
            group_instance_id=config.group_instance_id,
        )
        self._conn: BrokerConnection | None = None
        self._heartbeat_task: asyncio.Task[None] | None = None
        self.last_poll_ms = now_ms()
        self.fatal: KafkaError | None = None
        self.poll_timeout_expired = False

    async def coordinator(self) -> BrokerConnection:
        """A connection to the group coordinator, looked up (FindCoordinator, within
        default.api.timeout.ms) when unknown or closed."""
        if self._conn is None or self._conn.closed:
            self._conn = await find_coordinator(
                self.client, self.group_id, GROUP, timeout_ms=self.config.default_api_timeout_ms
            )
        return self._conn

    def coordinator_dead(self) -> None:
        """Forget the coordinator, so the next request looks it up again."""
        self._conn = None

    # -- join / sync -------------------------------------------------------------------

    async def join(
        self, protocols: list[tuple[str, bytes]], reason: str = ""
    ) -> tuple[str, list[TopicPartition]]:
        """Join and sync until this member has an assignment: (protocol, partitions)."""
        while True:
            try:
                conn = await self.coordinator()
                request = self.member.join_request(protocols, reason)
                response = await conn.send(
                    request,
                    timeout_ms=self.config.max_poll_interval_ms
                    + self.config.client.request_timeout_ms,
                )
                step = self.member.on_join_response(response)
                if step is Next.SYNC:
                    assert self.member.join_result is not None
                    step, assigned = await self._sync(conn, self.member.join_result)
                    if step is Next.DONE:
                        return self.member.protocol or "", assigned
            except KafkaError as exc:
                if not (exc.retriable or exc.code in COORDINATOR_ERRORS):
                    raise
                step = Next.FIND_COORDINATOR
            if step is Next.FIND_COORDINATOR:
                self.coordinator_dead()
            if step in (Next.FIND_COORDINATOR, Next.BACKOFF):
                await asyncio.sleep(self.config.retry_backoff_ms / 1000)

    async def _sync(
        self, conn: BrokerConnection, join: JoinResult
    ) -> tuple[Next, list[TopicPartition]]:
        assignments: dict[str, bytes] = {}
        if join.is_leader:
            assignments = await self._leader_assign(join.protocol, join.members)
        response = await conn.send(self.member.sync_request(assignments))
        step = self.member.on_sync_response(response, now_ms())
        if step is not Next.DONE:
            return step, []
        return step, decode_assignment(response.assignment)

    async def _leader_assign(
        self, protocol: str, members: Mapping[str, Subscription]
    ) -> dict[str, bytes]:
        topics = sorted({t for s in members.values() for t in s.topics})
        await self.client.refresh_metadata(topics)
        counts = {t: self.client.cluster.partition_count(t) or 0 for t in topics}
        result = assign(protocol, counts, members)
        return {m: encode_assignment(tps) for m, tps in result.items()}

    # -- heartbeats -----------------------------------------------------------------

    def start_heartbeats(self) -> None:
        """Start the background heartbeat task unless it is running."""
        if self._heartbeat_task is None or self._heartbeat_task.done():
            loop = asyncio.get_running_loop()
            self._heartbeat_task = loop.create_task(self._heartbeat_loop())

    async def _heartbeat_loop(self) -> None:
        while True:
            now = now_ms()
            member = self.member
            if member.stable and now - self.last_poll_ms > self.config.max_poll_interval_ms:
                self.poll_timeout_expired = True
                await self.leave("max.poll.interval.ms expired: poll() was not called in time")
            elif member.stable and member.heartbeat_due(now):
                await self._heartbeat(now)
            elif member.session_expired(now):
                self.coordinator_dead()
                member.request_rejoin()
            wait = max(10, min(member.next_heartbeat_ms() - now_ms(), 1000))
            await asyncio.sleep(wait / 1000)

    async def _heartbeat(self, now: int) -> None:
        try:
            conn = await self.coordinator()
            response = await conn.send(self.member.heartbeat_request(now))
            step = self.member.on_heartbeat_response(response.error_code, now_ms())
        except KafkaError as exc:
            if not exc.retriable:  # e.g. FENCED_INSTANCE_ID: the next poll() raises it
                self.fatal = exc
                self.member.request_rejoin()
                return
            step = Next.FIND_COORDINATOR
        if step is Next.FIND_COORDINATOR:
            self.coordinator_dead()

    async def stop_heartbeats(self) -> None:
        """Cancel the heartbeat task and wait for it (a KafkaError it ended with is dropped)."""
        task, self._heartbeat_task = self._heartbeat_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, KafkaError):
                await task

    async def leave(self, reason: str = "the consumer is being closed") -> None:
        """Send LeaveGroup with ``reason`` (not for a static member or one without a
        member id) and mark the member for rejoin; errors are ignored."""
        request = self.member.leave_request(reason)
        self.member.request_rejoin()
        if request is None or self._conn is None:
            return
        with contextlib.suppress(KafkaError):
            await self._conn.send(request)

    # -- offsets ------------------------------------------------------------------------

    async def commit(self, offsets: Offsets, *, managed: bool) -> None:
        """OffsetCommit; CommitFailedError when the group rebalanced meanwhile."""
        if not offsets:
            return
        topics = _commit_topics(offsets)
        for attempt in range(5):
            generation, member_id, instance_id = self.identity() if managed else (-1, "", None)
            request = OffsetCommitRequest(
                group_id=self.group_id,
                generation_id_or_member_epoch=generation,
                member_id=member_id,
                group_instance_id=instance_id,
                topics=topics,
            )
            try:
                response = await (await self.coordinator()).send(request)
                code = next(
                    (p.error_code for t in response.topics for p in t.partitions if p.error_code),
                    0,
                )
            except KafkaError as exc:
                if not exc.retriable or attempt == 4:
                    raise
                code = ErrorCode.COORDINATOR_NOT_AVAILABLE
            if code == ErrorCode.NONE:
                return
            if code == ErrorCode.STALE_MEMBER_EPOCH and attempt < 4:
                await asyncio.sleep(self.config.retry_backoff_ms / 1000)
                continue  # the member's epoch moved on: again with the new one
            if code in _REJOIN_CODES:
                self.commit_failed()
                raise CommitFailedError(
                    ErrorCode(code),
                    f"commit failed: {ErrorCode(code).name}: the group rebalanced and the "
                    "partitions may belong to another member now",
                )
            err = error_for(code, f"OffsetCommit for group {self.group_id!r}")
            assert err is not None
            if attempt == 4 or (not err.retriable and code not in COORDINATOR_ERRORS):
                raise err  # retriable errors too, once the attempts are used up
            if code in COORDINATOR_ERRORS:
                self.coordinator_dead()
            await asyncio.sleep(self.config.retry_backoff_ms / 1000)

    @property
    def is_stable(self) -> bool:
        """The member holds its assignment and has nothing to rebalance."""
        return self.member.stable

    def identity(self) -> tuple[int, str, str | None]:
        """(generation, member id, group.instance.id) that commits carry."""
        m = self.member
        return m.generation_id, m.member_id, m.group_instance_id

    def commit_failed(self) -> None:
        """A commit failed because the group moved on: rejoin."""
        self.member.request_rejoin()

    async def committed(
        self, tps: Iterable[TopicPartition], *, require_stable: bool = True
    ) -> dict[TopicPartition, tuple[int, str | None] | None]:
        """Committed (offset, metadata) per partition, None where nothing is committed
        (OffsetFetch; ``require_stable`` waits out pending transactional commits).
        A group or partition error code raises its KafkaError."""
        tps = list(tps)
        by_topic: dict[str, list[int]] = defaultdict(list)
        for tp in tps:
            by_topic[tp.topic].append(tp.partition)
        conn = await self.coordinator()
        version = conn.versions.get(ApiKey.OFFSET_FETCH, 1)
        if version >= 8:
            request = OffsetFetchRequest(
                groups=[
                    OffsetFetchRequest.OffsetFetchRequestGroup(
                        group_id=self.group_id,
                        topics=[
                            OffsetFetchRequest.OffsetFetchRequestTopics(t, ps)
                            for t, ps in by_topic.items()
                        ],
                    )
                ],
                require_stable=require_stable,
            )
        else:
            request = OffsetFetchRequest(
                group_id=self.group_id,
                topics=[
                    OffsetFetchRequest.OffsetFetchRequestTopic(t, ps) for t, ps in by_topic.items()
                ],
                require_stable=require_stable,
            )
        response: OffsetFetchResponse = await conn.send(request)
        return _committed(response, version, tps)


def _commit_topics(offsets: Offsets) -> list[OffsetCommitRequest.OffsetCommitRequestTopic]:
    by_topic: dict[str, list[OffsetCommitRequest.OffsetCommitRequestPartition]] = defaultdict(list)
    for tp, (offset, metadata) in offsets.items():
        by_topic[tp.topic].append(
            OffsetCommitRequest.OffsetCommitRequestPartition(
                partition_index=tp.partition, committed_offset=offset, committed_metadata=metadata
            )
        )
    return [OffsetCommitRequest.OffsetCommitRequestTopic(t, ps) for t, ps in by_topic.items()]


def _committed(
    response: OffsetFetchResponse, version: int, tps: list[TopicPartition]
) -> dict[TopicPartition, tuple[int, str | None] | None]:
    out: dict[TopicPartition, tuple[int, str | None] | None] = dict.fromkeys(tps)
    if version >= 8:
        group = response.groups[0] if response.groups else None
        code = group.error_code if group is not None else 0
        rows = [(t.name, p) for t in group.topics for p in t.partitions] if group else []
    else:
        code = response.error_code
        rows = [(t.name, p) for t in response.topics for p in t.partitions]  # type: ignore[misc]
    err = error_for(code, "OffsetFetch")
    if err is not None:
        raise err
    for topic, p in rows:
        perr = error_for(p.error_code, f"OffsetFetch {topic}-{p.partition_index}")
        if perr is not None:
            raise perr
        tp = TopicPartition(topic, p.partition_index)
        if tp in out and p.committed_offset >= 0:
            out[tp] = (p.committed_offset, p.metadata)
    return out
