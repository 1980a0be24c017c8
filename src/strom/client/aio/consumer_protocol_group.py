"""The consumer's group IO with ``group.protocol=consumer`` (KIP-848).

Decisions are :class:`~strom.client.consumer_protocol.ConsumerProtocolMember`'s;
this module sends its heartbeats from a background task (every
heartbeat interval the coordinator asks for, and at once when the member has
something to tell: a join, a subscription, an acknowledged assignment) and
wakes ``poll()`` when a new assignment arrived or the partitions were lost.
``poll()`` reconciles (AIOConsumer), then :meth:`acknowledge`. When
``max.poll.interval.ms`` passes without a poll the member leaves (epoch -1, or -2
for a static member) and rejoins on the next poll. Offsets are committed with
the member epoch (OffsetCommit v9).
"""

from __future__ import annotations

import asyncio
import contextlib

from strom.client.aio.client import AIOClient
from strom.client.aio.consumer_group import ConsumerGroup
from strom.client.aio.coordinators import now_ms
from strom.client.consumer_config import ConsumerConfig
from strom.client.consumer_protocol import (
    ConsumerProtocolMember,
    State,
    Step,
    Subscription,
    TopicIdPartition,
)
from strom.client.membership import COORDINATOR_ERRORS
from strom.protocol.errors import KafkaError


class ConsumerProtocolGroup(ConsumerGroup):
    """A consumer's group IO with the consumer rebalance protocol (Kafka's
    ConsumerMembershipManager and its heartbeat request manager)."""

    def __init__(self, client: AIOClient, config: ConsumerConfig) -> None:
        super().__init__(client, config)
        assert config.group_id is not None
        self.protocol_member = ConsumerProtocolMember(
            config.group_id,
            rebalance_timeout_ms=config.max_poll_interval_ms,
            group_instance_id=config.group_instance_id,
            rack_id=config.client_rack or None,
            server_assignor=config.group_remote_assignor,
        )
        self.changed = asyncio.Event()  # a new assignment, lost partitions, or an error
        self.lost = False  # fenced: the partitions owned are lost (poll calls on_lost)
        self._wake = asyncio.Event()

    # -- membership -------------------------------------------------------------------

    def subscribe(self, subscription: Subscription) -> None:
        """Join with ``subscription``, or send it with the next heartbeat."""
        self.protocol_member.subscribe(subscription)
        self._wake.set()

    def acknowledge(self, owned: frozenset[TopicIdPartition]) -> None:
        """Reconciled: report ``owned`` to the coordinator now."""
        self.protocol_member.acknowledge(owned)
        self._wake.set()

    @property
    def is_stable(self) -> bool:
        """Joined, with the latest assignment taken."""
        return self.protocol_member.stable

    def identity(self) -> tuple[int, str, str | None]:
        """(member epoch, member id, group.instance.id) that commits carry."""
        m = self.protocol_member
        return m.member_epoch, m.member_id, m.group_instance_id

    def commit_failed(self) -> None:
        """The coordinator moved on; the heartbeats find out how (fenced, or a new epoch)."""
        self._wake.set()

    # -- heartbeats ------------------------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        m = self.protocol_member
        while True:
            now = now_ms()
            if (
                m.state is State.STABLE
                and now - self.last_poll_ms > self.config.max_poll_interval_ms
            ):
                self.poll_timeout_expired = True
                await self.leave("max.poll.interval.ms expired: poll() was not called in time")
            elif m.heartbeat_due(now):
                await self._heartbeat(now)
            wait = max(10, min(m.next_heartbeat_ms() - now_ms(), 1000))
            if m.heartbeat_due(now_ms()):
                continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait / 1000):
                    await self._wake.wait()
            self._wake.clear()

    async def _heartbeat(self, now: int) -> None:
        m = self.protocol_member
        try:
            conn = await self.coordinator()
            response = await conn.send(m.heartbeat_request(now))
            target = m.target
            step = m.on_heartbeat_response(response)
        except KafkaError as exc:
            if m.state is State.FATAL or not (exc.retriable or exc.code in COORDINATOR_ERRORS):
                self.fatal = exc
                self.changed.set()
                return
            m.resend_all()  # the answer was lost: send everything again
            step = Step.FIND_COORDINATOR
        if step is Step.FENCED:
            self.lost = True
        if step is Step.FENCED or m.target != target:
            self.changed.set()
        if step is Step.FIND_COORDINATOR:
            self.coordinator_dead()
        if step in (Step.FIND_COORDINATOR, Step.BACKOFF):
            await asyncio.sleep(self.config.retry_backoff_ms / 1000)

    async def leave(self, reason: str = "the consumer is being closed") -> None:
        """Leave with epoch -1 (-2 for a static member); errors are ignored."""
        request = self.protocol_member.leave_request()
        if request is None or self._conn is None:
            return
        with contextlib.suppress(KafkaError):
            await self._conn.send(request)

    async def wait_changed(self, timeout_s: float) -> None:
        """Until a heartbeat brought news (see :attr:`changed`) or ``timeout_s`` passed."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(0.0, timeout_s)):
                await self.changed.wait()
        self.changed.clear()
