"""Positions of AIOConsumer: the committed offset, else ``auto.offset.reset``, looked
up (ListOffsets) when a partition needs one; ``position`` and the seeks."""

from __future__ import annotations

from collections.abc import Iterable

from strom.client.admin_types import OffsetSpec
from strom.client.aio.admin import AIOAdmin
from strom.client.aio.consumer_fetch import Fetcher
from strom.client.aio.consumer_group import ConsumerGroup
from strom.client.consumer_config import ConsumerConfig
from strom.client.subscription import EARLIEST, LATEST, SubscriptionState
from strom.common.types import TopicPartition
from strom.protocol.errors import ErrorCode, KafkaError


class PositionsMixin:
    """AIOConsumer's fetch positions: initialised, reset and sought."""

    config: ConsumerConfig
    _admin: AIOAdmin
    _group: ConsumerGroup | None
    _subs: SubscriptionState
    _fetcher: Fetcher

    async def _update_positions(self) -> None:
        missing = self._subs.needs_position()
        if missing and self._group is not None:
            committed = await self._group.committed(missing)
            for tp, found in committed.items():
                if found is not None:
                    self._subs.seek(tp, found[0])
            missing = [tp for tp in missing if committed.get(tp) is None]
        missing += [tp for tp in self._fetcher.out_of_range if tp in self._subs.assignment]
        self._fetcher.out_of_range.clear()
        if missing:
            if self.config.auto_offset_reset == "none":
                raise KafkaError(
                    ErrorCode.OFFSET_OUT_OF_RANGE,
                    f"no valid offset for {sorted(missing)} and auto.offset.reset=none",
                )
            self._subs.request_reset(missing, self.config.auto_offset_reset)
        await self._apply_resets()

    async def _apply_resets(self) -> None:
        resets = self._subs.pending_resets()
        if not resets:
            return
        specs = {
            tp: OffsetSpec.EARLIEST if s == EARLIEST else OffsetSpec.LATEST
            for tp, s in resets.items()
        }
        found = await self._admin.list_offsets(specs, isolation_level=self.config.isolation_level)
        for tp, ot in found.items():
            if tp in self._subs.assignment:
                self._subs.seek(tp, ot.offset)

    async def position(self, tp: TopicPartition) -> int:
        """The offset of the next record poll() will return for ``tp``."""
        self._subs.state(tp)
        await self._update_positions()
        pos = self._subs.state(tp).position
        assert pos is not None
        return pos

    def seek(self, tp: TopicPartition, offset: int) -> None:
        """Make ``offset`` the next offset poll() returns for ``tp`` (Kafka's seek); buffered
        records of ``tp`` are dropped. KafkaError INVALID_REQUEST if ``tp`` is not assigned."""
        self._subs.seek(tp, offset)
        self._fetcher.discard([tp])

    def seek_to_beginning(self, partitions: Iterable[TopicPartition] | None = None) -> None:
        """Reset ``partitions`` (default: every assigned one) to their earliest offset,
        looked up at the next poll() or position() (Kafka's seekToBeginning)."""
        tps = list(self._subs.assignment if partitions is None else partitions)
        self._subs.request_reset(tps, EARLIEST)
        self._fetcher.discard(tps)

    def seek_to_end(self, partitions: Iterable[TopicPartition] | None = None) -> None:
        """Reset ``partitions`` (default: every assigned one) to their end offset (the last
        stable offset with read_committed), looked up at the next poll() or position()
        (Kafka's seekToEnd)."""
        tps = list(self._subs.assignment if partitions is None else partitions)
        self._subs.request_reset(tps, LATEST)
        self._fetcher.discard(tps)
