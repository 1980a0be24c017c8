"""Offset lookups of AIOConsumer: by time, beginning and end (ListOffsets)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from strom.client.admin_types import OffsetAndTimestamp, OffsetSpec
from strom.client.aio.admin import AIOAdmin
from strom.client.consumer_config import ConsumerConfig
from strom.common.types import TopicPartition


class OffsetLookups:
    """AIOConsumer's ListOffsets lookups: by timestamp, beginning and end."""

    _admin: AIOAdmin
    config: ConsumerConfig

    async def offsets_for_times(
        self, timestamps: Mapping[TopicPartition, int]
    ) -> dict[TopicPartition, OffsetAndTimestamp | None]:
        """The earliest offset whose timestamp is >= the given one (None if there is none)."""
        found = await self._admin.list_offsets(
            dict(timestamps), isolation_level=self.config.isolation_level
        )
        return {tp: (v if v.offset >= 0 else None) for tp, v in found.items()}

    async def beginning_offsets(
        self, partitions: Iterable[TopicPartition]
    ) -> dict[TopicPartition, int]:
        """The earliest offset of each partition (Kafka's beginningOffsets)."""
        found = await self._admin.list_offsets(dict.fromkeys(partitions, OffsetSpec.EARLIEST))
        return {tp: v.offset for tp, v in found.items()}

    async def end_offsets(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        """The end offset of each partition (Kafka's endOffsets): the high watermark, or the
        last stable offset with read_committed."""
        found = await self._admin.list_offsets(
            dict.fromkeys(partitions, OffsetSpec.LATEST),
            isolation_level=self.config.isolation_level,
        )
        return {tp: v.offset for tp, v in found.items()}
