"""strom's Python client: producer, consumer, admin (see docs/client.md).

Sans-IO core (no asyncio, no sockets): ``partitioner`` (murmur2 as the Java
client; round-robin, sticky), ``accumulator`` (batching, buffer.memory),
``txn_manager`` (idempotence sequences, transaction states), ``assignors``
(range, roundrobin, sticky, cooperative-sticky), ``membership`` (the group
member state machine), ``subscription`` (positions), ``fetcher`` (fetch data ->
records, read_committed), ``producer_config``/``consumer_config`` (Kafka's
options), ``serde``, ``metadata``, ``versions``, ``errors``, ``messages``.

IO front: ``strom.client.aio`` (AIOProducer, AIOConsumer, AIOAdmin, ...) and
blocking wrappers running them on a loop thread: ``Producer`` and ``Consumer``
(``strom.client.blocking``), ``Admin`` and ``PartitionReader`` (``strom.client.sync``).
They are imported lazily: ``from strom.client import Producer``.
"""

from __future__ import annotations

from typing import Any

from strom.client.messages import ConsumerRecord, ProducerRecord, RecordMetadata

__all__ = [
    "Admin",
    "Consumer",
    "ConsumerRecord",
    "Producer",
    "ProducerRecord",
    "RecordMetadata",
]


def __getattr__(name: str) -> Any:
    if name in ("Producer", "Consumer"):
        from strom.client import blocking

        return getattr(blocking, name)
    if name in ("Admin", "PartitionReader"):
        from strom.client import sync

        return getattr(sync, name)
    raise AttributeError(name)
