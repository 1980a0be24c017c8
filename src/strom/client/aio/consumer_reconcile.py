"""Reconciliation of the consumer rebalance protocol (KIP-848), inside ``poll()``.

The heartbeat task brings the partitions the coordinator gives this member, by
topic id. ``poll()`` resolves the ids to names (from metadata), revokes what is
no longer given (auto-commit, then ``on_revoked``), takes the new partitions
(``on_assigned``) and acknowledges the result, which the next heartbeat reports;
the coordinator gives a partition to another member only after that. When the
member was fenced its partitions are lost (``on_lost``) and it joins again.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from strom.client.aio.consumer_protocol_group import ConsumerProtocolGroup
from strom.client.consumer_protocol import State, Subscription, TopicIdPartition
from strom.common.types import TopicPartition

if TYPE_CHECKING:
    from strom.client.aio.client import AIOClient
    from strom.client.subscription import SubscriptionState


class ProtocolReconcileMixin:
    """AIOConsumer's part for ``group.protocol=consumer``."""

    client: AIOClient
    _subs: SubscriptionState

    if TYPE_CHECKING:

        async def _revoke(self, tps: list[TopicPartition], *, lost: bool) -> None: ...

        async def _call(self, name: str, tps: list[TopicPartition]) -> None: ...

    def _protocol_subscription(self) -> Subscription:
        pattern = self._subs.pattern
        if pattern is not None:
            return Subscription(regex=pattern.pattern)
        return Subscription(topics=tuple(sorted(self._subs.topics)))

    async def _ensure_protocol_group(self, group: ConsumerProtocolGroup, deadline: float) -> bool:
        """Heartbeats running, lost partitions released, the latest assignment taken;
        the first time, wait (until ``deadline``) for the coordinator's answer."""
        member = group.protocol_member
        if group.fatal is not None:
            raise group.fatal
        if member.state in (State.UNSUBSCRIBED, State.LEAVING):
            group.poll_timeout_expired = False
            group.subscribe(self._protocol_subscription())
        group.start_heartbeats()
        if member.state is State.JOINING and member.target is None and not group.lost:
            await group.wait_changed(deadline - time.monotonic())
            if group.fatal is not None:
                raise group.fatal
        if group.lost:
            group.lost = False
            await self._revoke(sorted(self._subs.assignment), lost=True)
        if member.target is not None:
            await self._reconcile(group, member.target)
        return member.state is State.STABLE

    async def _reconcile(
        self, group: ConsumerProtocolGroup, target: frozenset[TopicIdPartition]
    ) -> None:
        names = await self._topic_names({topic_id for topic_id, _ in target})
        resolved = frozenset(tp for tp in target if tp[0] in names)
        wanted = {TopicPartition(names[t], p) for t, p in resolved}
        current = set(self._subs.assignment)
        revoked = sorted(current - wanted)
        added = sorted(wanted - current)
        if revoked:
            await self._revoke(revoked, lost=False)
        self._subs.add(added)
        if self._subs.pattern is not None:
            self._subs.topics = {tp.topic for tp in self._subs.assignment}
        await self._call("on_assigned", added)
        group.acknowledge(resolved)

    async def _topic_names(self, topic_ids: set[bytes]) -> dict[bytes, str]:
        """Topic names by id; metadata is refreshed once when some are unknown."""

        def known() -> dict[bytes, str]:
            """Names by id of the topics in the client's metadata."""
            return {t.topic_id: t.name for t in self.client.cluster.topics.values()}

        names = known()
        if not topic_ids <= set(names):
            await self.client.refresh_metadata(None)
            names = known()
        return {t: names[t] for t in topic_ids if t in names}
