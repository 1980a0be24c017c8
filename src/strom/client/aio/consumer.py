"""AIOConsumer: Kafka's consumer on asyncio, with consumer groups of either protocol
(``group.protocol``: classic, or consumer for KIP-848, see consumer_reconcile.py).

``subscribe`` (topics or a regex, with a rebalance listener) puts the consumer
in a group; ``assign`` reads chosen partitions. ``poll(timeout)`` joins or
rejoins the group when needed, initialises positions (committed offset, else
``auto.offset.reset``), auto-commits, and returns at most ``max.poll.records``
records. Heartbeats run in the background. Commits are consumer_commits.py,
positions and seeks consumer_positions.py. See docs/client.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from strom.client.aio.admin import AIOAdmin
from strom.client.aio.client import AIOClient
from strom.client.aio.consumer_commits import CommitsMixin
from strom.client.aio.consumer_fetch import Fetcher
from strom.client.aio.consumer_group import ConsumerGroup
from strom.client.aio.consumer_offsets import OffsetLookups
from strom.client.aio.consumer_positions import PositionsMixin
from strom.client.aio.consumer_protocol_group import ConsumerProtocolGroup
from strom.client.aio.consumer_reconcile import ProtocolReconcileMixin
from strom.client.aio.coordinators import now_ms
from strom.client.assignors import COOPERATIVE, Subscription
from strom.client.consumer_config import ConsumerConfig
from strom.client.membership import encode_subscription
from strom.client.messages import ConsumerRecord
from strom.client.serde import deserializer
from strom.client.subscription import SubscriptionState
from strom.common.types import TopicPartition
from strom.protocol.errors import ErrorCode, KafkaError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ConsumerGroupMetadata:
    """What send_offsets_to_transaction needs to fence zombie consumers."""

    group_id: str
    generation_id: int
    member_id: str
    group_instance_id: str | None


class AIOConsumer(CommitsMixin, PositionsMixin, OffsetLookups, ProtocolReconcileMixin):
    """``async with AIOConsumer({...}) as c: c.subscribe(["t"]); await c.poll(1.0)``."""

    def __init__(self, config: Mapping[str, Any] | ConsumerConfig | None = None) -> None:
        cfg = config if isinstance(config, ConsumerConfig) else ConsumerConfig.from_dict(config)
        self.config = cfg
        self.client = AIOClient(cfg.client)
        self._admin = AIOAdmin(self.client)
        self._subs = SubscriptionState(cfg.auto_offset_reset)
        self._fetcher = Fetcher(
            self.client,
            cfg,
            self._subs,
            deserializer(cfg.key_deserializer, "key.deserializer"),
            deserializer(cfg.value_deserializer, "value.deserializer"),
        )
        self._group: ConsumerGroup | None = None
        if cfg.group_id:
            kind = ConsumerProtocolGroup if cfg.group_protocol == "consumer" else ConsumerGroup
            self._group = kind(self.client, cfg)
        self._listener: Any = None
        self._join_task: asyncio.Task[None] | None = None
        self._next_auto_commit_ms = now_ms() + cfg.auto_commit_interval_ms
        self._commits: set[asyncio.Task[None]] = set()
        self._closed = False

    async def __aenter__(self) -> AIOConsumer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Connect to a bootstrap server and load the broker list."""
        await self.client.bootstrap()

    # -- subscription ------------------------------------------------------------------

    def subscribe(
        self, topics: Iterable[str] | str | re.Pattern[str], listener: Any = None
    ) -> None:
        """Join the group for ``topics`` (a list, or a regex str/Pattern matched in full).

        ``listener`` may define on_assigned, on_revoked and on_lost (each taking a list
        of TopicPartition; plain or async functions), called inside poll().
        """
        if self._group is None:
            raise KafkaError(ErrorCode.INVALID_GROUP_ID, "subscribe() needs a group.id")
        if isinstance(topics, (str, re.Pattern)):
            self._subs.subscribe_pattern(topics)
        else:
            self._subs.subscribe(topics)
        self._listener = listener
        if isinstance(self._group, ConsumerProtocolGroup):
            self._group.subscribe(self._protocol_subscription())
        else:
            self._group.member.request_rejoin()

    def assign(self, partitions: Iterable[TopicPartition]) -> None:
        """Read exactly these partitions (no group membership)."""
        tps = list(partitions)
        self._fetcher.discard()
        self._subs.assign_manual(tps)

    async def unsubscribe(self) -> None:
        """Leave the group (revoking the assignment first: auto-commit, ``on_revoked``) or
        drop the manual assignment; buffered records are discarded."""
        if self._group is not None and self._subs.group_managed:
            await self._revoke(list(self._subs.assignment), lost=False)
            await self._group.leave("the consumer unsubscribed")
        self._fetcher.discard()
        self._subs.unsubscribe()

    def assignment(self) -> set[TopicPartition]:
        """The partitions currently assigned to this consumer (a copy)."""
        return set(self._subs.assignment)

    def subscription(self) -> set[str]:
        """The subscribed topics (for a pattern, the topics it matched so far)."""
        return set(self._subs.topics)

    def group_metadata(self) -> ConsumerGroupMetadata:
        """Group id, generation, member id and group.instance.id, for a transactional
        producer's ``send_offsets_to_transaction``; KafkaError INVALID_GROUP_ID without
        a group.id."""
        if self._group is None:
            raise KafkaError(ErrorCode.INVALID_GROUP_ID, "the consumer has no group.id")
        generation, member_id, instance_id = self._group.identity()
        return ConsumerGroupMetadata(self._group.group_id, generation, member_id, instance_id)

    # -- polling -------------------------------------------------------------------------

    async def poll(
        self, timeout: float = 0.0, *, max_records: int | None = None
    ) -> list[ConsumerRecord]:
        """Records that arrived (at most max.poll.records), waiting up to ``timeout`` s."""
        if self._closed:
            raise KafkaError(ErrorCode.UNKNOWN_SERVER_ERROR, "the consumer is closed")
        deadline = time.monotonic() + max(0.0, timeout)
        limit = max_records or self.config.max_poll_records
        if self._group is not None:
            self._group.last_poll_ms = now_ms()
            if self._group.fatal is not None:
                raise self._group.fatal
        if self._subs.group_managed and not await self._ensure_group(deadline):
            return []
        await self._maybe_auto_commit()
        while True:
            await self._update_positions()
            self._raise_fetch_errors()
            records = self._fetcher.drain(limit)
            if records:
                self._fetcher.start(self.config.fetch_max_wait_ms)  # prefetch
                return records
            if not await self._wait_for_data(deadline):
                return []

    async def _wait_for_data(self, deadline: float) -> bool:
        """Fetch (or wait for the fetch in flight); False once the deadline passed."""
        remaining = deadline - time.monotonic()
        wait_ms = int(max(0.0, min(remaining * 1000, self.config.fetch_max_wait_ms)))
        task = self._fetcher.start(wait_ms)
        if task is None:
            if remaining <= 0:
                return False
            await asyncio.sleep(min(remaining, self.config.retry_backoff_ms / 1000))
            return True
        done, _ = await asyncio.wait({task}, timeout=max(0.0, remaining))
        if task in done and (exc := task.exception()) is not None:
            raise exc
        return time.monotonic() < deadline or self._fetcher.has_buffered

    def _raise_fetch_errors(self) -> None:
        err = self._fetcher.take_error()
        if err is not None:
            raise err

    async def _ensure_group(self, deadline: float) -> bool:
        """Join when needed; False while the join is still running at the deadline."""
        group = self._group
        assert group is not None
        if isinstance(group, ConsumerProtocolGroup):
            return await self._ensure_protocol_group(group, deadline)
        if self._subs.pattern is not None:
            await self._match_pattern()
        if not group.member.rejoin_needed and group.member.stable:
            return True
        if self._join_task is None or self._join_task.done():
            self._join_task = asyncio.get_running_loop().create_task(self._rebalance())
        task = self._join_task
        await asyncio.wait({task}, timeout=max(0.0, deadline - time.monotonic()))
        if not task.done():
            return False
        self._join_task = None
        if task.exception() is not None:
            raise task.exception()  # type: ignore[misc]
        return group.member.stable

    async def _match_pattern(self) -> None:
        if self.client.cluster.is_stale(now_ms(), 30_000) or not self._subs.topics:
            await self.client.refresh_metadata(None)
        internal = {t for t, m in self.client.cluster.topics.items() if m.is_internal}
        names = [t for t in self.client.cluster.topics if t not in internal]
        if self._subs.match(names) and self._group is not None:
            self._group.member.request_rejoin()

    async def _rebalance(self) -> None:
        group = self._group
        assert group is not None
        owned = list(self._subs.assignment)
        cooperative = group.member.protocol in COOPERATIVE
        if not cooperative and owned:
            await self._revoke(owned, lost=group.member.generation_id < 0)
            owned = []
        sub = Subscription(
            tuple(sorted(self._subs.topics)),
            tuple(owned),
            group.member.generation_id,
            group.member.group_instance_id,
        )
        protocols = [(name, encode_subscription(sub)) for name in self.config.assignors]
        protocol, assigned = await group.join(protocols)
        group.start_heartbeats()
        assigned_set = set(assigned)
        revoked = [tp for tp in owned if tp not in assigned_set]
        added = [tp for tp in assigned if tp not in set(owned)]
        if protocol in COOPERATIVE:
            if revoked:
                await self._revoke(revoked, lost=False)
                group.member.request_rejoin()  # let the next owner have them
            self._subs.add(added)
        else:
            self._subs.set_assignment(assigned)
        await self._call("on_assigned", added if protocol in COOPERATIVE else assigned)

    async def _revoke(self, tps: list[TopicPartition], *, lost: bool) -> None:
        if not tps:
            return
        if not lost and self.config.enable_auto_commit and self._group is not None:
            with contextlib.suppress(KafkaError):
                await self._commit_positions(tps)
        await self._call("on_lost" if lost else "on_revoked", tps)
        self._fetcher.discard(tps)
        self._subs.remove(tps)

    async def _call(self, name: str, tps: list[TopicPartition]) -> None:
        method = getattr(self._listener, name, None)
        if method is None and name == "on_lost":
            method = getattr(self._listener, "on_revoked", None)
        if method is not None:
            result = method(sorted(tps))
            if inspect.isawaitable(result):
                await result

    # -- fetching -----------------------------------------------------------------------

    def pause(self, partitions: Iterable[TopicPartition]) -> None:
        """Stop fetching ``partitions`` (Kafka's pause): poll() returns none of their
        records until :meth:`resume`. KafkaError INVALID_REQUEST for one not assigned."""
        tps = list(partitions)
        self._subs.pause(tps)

    def resume(self, partitions: Iterable[TopicPartition]) -> None:
        """Fetch ``partitions`` paused with :meth:`pause` again (Kafka's resume)."""
        self._subs.resume(partitions)

    def paused(self) -> set[TopicPartition]:
        """Partitions paused with :meth:`pause` (they are not fetched)."""
        return self._subs.paused()

    async def partitions_for(self, topic: str) -> list[TopicPartition]:
        """The partitions of ``topic``, once its leaders are known; KafkaError
        UNKNOWN_TOPIC_OR_PARTITION when the topic does not exist."""
        await self.client.wait_for_topic(topic)
        return self.client.cluster.partitions_for(topic)

    # -- closing -----------------------------------------------------------------------

    async def close(self) -> None:
        """Commit (with enable.auto.commit), leave the group and disconnect."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._join_task is not None:
                self._join_task.cancel()
                await asyncio.gather(self._join_task, return_exceptions=True)
            if self._group is not None:
                await self._group.stop_heartbeats()
                if (
                    self.config.enable_auto_commit
                    and self._subs.group_managed
                    and self._group.is_stable
                ):
                    with contextlib.suppress(KafkaError):
                        await self._commit_positions(list(self._subs.assignment))
                if self._commits:
                    await asyncio.gather(*self._commits, return_exceptions=True)
                if self._subs.group_managed:
                    if self._subs.assignment:
                        with contextlib.suppress(KafkaError):
                            await self._call("on_revoked", list(self._subs.assignment))
                    await self._group.leave()  # even with no partitions, as Kafka does
            await self._fetcher.stop()
        finally:
            await self.client.close()
