"""InitProducerId for idempotent producers; producer ids are never reused.

Ids are reserved from the metadata store in blocks (as Kafka's
ProducerIdManager does with /latest_producer_id_block), so a restart skips
the rest of a block rather than handing an id out twice.
"""

from __future__ import annotations

from strom.metadata.store import MetadataStore

BLOCK_SIZE = 1000


class ProducerIdManager:
    def __init__(self, store: MetadataStore) -> None:
        self._store = store
        self._next = 0
        self._end = 0

    def generate(self) -> int:
        if self._next >= self._end:
            self._next = self._store.allocate_producer_ids(BLOCK_SIZE)
            self._end = self._next + BLOCK_SIZE
        pid = self._next
        self._next += 1
        return pid
