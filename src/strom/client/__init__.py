"""strom's Python client (foundation: connection, metadata, admin, producer, reader).

Sans-IO core (no asyncio, no sockets): ``partitioner`` (murmur2 as the Java
client), ``metadata`` (cluster cache), ``versions`` (ApiVersions negotiation),
``accumulator`` (per-partition batching), ``fetcher`` (fetch data -> records),
``config`` (Kafka's dotted client configs), ``admin_types``, ``errors``.

IO front: ``strom.client.aio`` (AIOClient, BrokerConnection, AIOAdmin,
AIOProducer, AIOPartitionReader) and ``strom.client.sync`` (Admin, Producer,
PartitionReader: blocking wrappers running the asyncio classes on a thread).
"""
