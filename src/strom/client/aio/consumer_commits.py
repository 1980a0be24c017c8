"""Offset commits of AIOConsumer: auto-commit from ``poll()``, ``commit`` (synchronous
or asynchronous) and ``committed``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from strom.client.admin_types import OffsetAndTimestamp
from strom.client.aio.consumer_group import ConsumerGroup
from strom.client.aio.coordinators import now_ms
from strom.client.consumer_config import ConsumerConfig
from strom.client.subscription import SubscriptionState
from strom.common.types import TopicPartition
from strom.protocol.errors import ErrorCode, KafkaError

log = logging.getLogger(__name__)


class CommitsMixin:
    """AIOConsumer's commits through its group's coordinator."""

    config: ConsumerConfig
    _group: ConsumerGroup | None
    _subs: SubscriptionState
    _commits: set[asyncio.Task[None]]
    _next_auto_commit_ms: int

    async def _maybe_auto_commit(self) -> None:
        if not self.config.enable_auto_commit or self._group is None:
            return
        now = now_ms()
        if now < self._next_auto_commit_ms:
            return
        self._next_auto_commit_ms = now + self.config.auto_commit_interval_ms
        self._spawn_commit(self._commit_positions(list(self._subs.assignment)))

    def _spawn_commit(self, coro: Any) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self._commits.add(task)
        task.add_done_callback(self._commits.discard)
        return task

    async def _commit_positions(self, tps: list[TopicPartition]) -> None:
        positions = self._subs.positions()
        offsets = {tp: (positions[tp], "") for tp in tps if tp in positions}
        await self.commit(offsets)

    async def commit(
        self, offsets: Mapping[TopicPartition, Any] | None = None, *, asynchronous: bool = False
    ) -> None:
        """Commit ``offsets`` (TopicPartition -> offset or OffsetAndMetadata; the next
        offset to read) or, by default, the current positions of all assigned partitions.
        With ``asynchronous=True`` return at once (a failure is logged as a warning)."""
        if self._group is None:
            raise KafkaError(ErrorCode.INVALID_GROUP_ID, "commit() needs a group.id")
        if offsets is None:
            chosen: dict[TopicPartition, tuple[int, str | None]] = {
                tp: (pos, "") for tp, pos in self._subs.positions().items()
            }
        else:
            chosen = {tp: _offset(v) for tp, v in offsets.items()}
        work = self._group.commit(chosen, managed=self._subs.group_managed)
        if asynchronous:
            self._spawn_commit(_quiet(work))
            return
        await work

    async def committed(
        self, partitions: Iterable[TopicPartition]
    ) -> dict[TopicPartition, OffsetAndTimestamp | None]:
        """The last committed offset per partition (OffsetFetch, stable offsets only), as an
        OffsetAndTimestamp with timestamp -1, or None where nothing is committed.
        KafkaError INVALID_GROUP_ID without a group.id."""
        if self._group is None:
            raise KafkaError(ErrorCode.INVALID_GROUP_ID, "committed() needs a group.id")
        found = await self._group.committed(list(partitions))
        return {tp: None if v is None else OffsetAndTimestamp(v[0], -1) for tp, v in found.items()}


def _offset(value: Any) -> tuple[int, str | None]:
    if isinstance(value, int):
        return value, ""
    if isinstance(value, tuple):
        return int(value[0]), value[1]
    return int(value.offset), getattr(value, "metadata", "")


async def _quiet(work: Any) -> None:
    """An asynchronous commit: its error is logged, as Kafka's commitAsync does."""
    try:
        await work
    except KafkaError as exc:
        log.warning("asynchronous offset commit failed: %s", exc)
