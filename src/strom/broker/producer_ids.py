"""Producer ids for idempotent and transactional producers; never reused.

Ids are reserved from the metadata store in blocks (as Kafka's
ProducerIdManager does with /latest_producer_id_block), so a restart skips
the rest of a block rather than handing an id out twice. Reserving a block may
block (a ZooKeeper round trip): :meth:`ProducerIdManager.ensure_available`
does it in a worker thread before InitProducerId asks for an id, and the next
block is fetched ahead when the current one runs low.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from strom.metadata.store import MetadataStore
from strom.protocol.errors import ErrorCode, KafkaError

if TYPE_CHECKING:
    from strom.broker.broker import Broker

log = logging.getLogger(__name__)
BLOCK_SIZE = 1000
PREFETCH_BELOW = 100


class ProducerIdManager:
    def __init__(self, store: MetadataStore) -> None:
        self._store = store
        self._next = 0
        self._end = 0
        self._spare: tuple[int, int] | None = None  # the next block, fetched ahead
        self._fetching: asyncio.Future[None] | None = None

    async def ensure_available(self, broker: Broker) -> None:
        """Make sure :meth:`generate` has an id to hand out (a worker thread reserves a
        block when needed); starts fetching the next block when this one runs low.
        KafkaError(COORDINATOR_LOAD_IN_PROGRESS) when no block could be reserved."""
        has_id = self._next < self._end or self._spare is not None
        if has_id:
            low = self._end - self._next < PREFETCH_BELOW
            if low and self._spare is None and self._fetching is None:
                self._fetching = asyncio.ensure_future(self._reserve(broker))
            return
        if self._fetching is None:
            self._fetching = asyncio.ensure_future(self._reserve(broker))
        await asyncio.shield(self._fetching)
        if self._next >= self._end and self._spare is None:
            raise KafkaError(ErrorCode.COORDINATOR_LOAD_IN_PROGRESS)

    async def _reserve(self, broker: Broker) -> None:
        try:
            first = await broker.store_call(self._store.allocate_producer_ids, BLOCK_SIZE)
            self._spare = (first, first + BLOCK_SIZE)
        except Exception:
            log.exception("could not reserve a block of producer ids")
        finally:
            self._fetching = None

    def generate(self) -> int:
        if self._next >= self._end:
            if self._spare is None:
                # ensure_available was not awaited (or its block is used up): Kafka's
                # answer while a new block is on its way.
                raise KafkaError(ErrorCode.COORDINATOR_LOAD_IN_PROGRESS)
            self._next, self._end = self._spare
            self._spare = None
        pid = self._next
        self._next += 1
        return pid
