"""The asyncio front of the strom client: connections, admin, producer, consumer, reader."""

from strom.client.aio.admin import AIOAdmin
from strom.client.aio.client import AIOClient
from strom.client.aio.connection import BrokerConnection
from strom.client.aio.producer import AIOProducer
from strom.client.aio.reader import AIOPartitionReader

__all__ = ["AIOAdmin", "AIOClient", "AIOPartitionReader", "AIOProducer", "BrokerConnection"]
