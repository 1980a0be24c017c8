"""AIOProducer: Kafka's producer on asyncio (idempotent by default, transactions).

``send`` runs the record through the key/value serializers and the partitioner,
waits (at most ``max.block.ms``) for the topic's metadata and for room in
``buffer.memory``, and queues it in the :class:`RecordAccumulator`; it returns a
future of the record's :class:`RecordMetadata`. The :class:`Sender` task sends
batches as ``linger.ms``/``batch.size`` make them ready. See docs/client.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from strom.client.accumulator import BATCH_OVERHEAD, RecordAccumulator, estimate_size
from strom.client.aio.client import AIOClient
from strom.client.aio.coordinators import now_ms
from strom.client.aio.sender import Batch, Future, RecordFuture, Sender
from strom.client.aio.txn_api import TransactionsMixin
from strom.client.errors import KafkaTimeoutError
from strom.client.messages import (
    BufferExhaustedError,
    ProducerRecord,
    RecordMetadata,
    RecordTooLargeError,
)
from strom.client.partitioner import make_partitioner
from strom.client.producer_config import ProducerConfig
from strom.client.serde import header_bytes, serializer
from strom.client.txn_manager import TransactionManager, TxnState
from strom.client.wait_log import WaitLog
from strom.common.types import TopicPartition
from strom.protocol.errors import ErrorCode, KafkaError

__all__ = ["AIOProducer", "DeliveryCallback", "Headers", "ProducerRecord", "RecordMetadata"]

Headers = Sequence[tuple[str, bytes | str | None]]
log = logging.getLogger(__name__)

DeliveryCallback = Callable[[RecordMetadata | None, BaseException | None], Any]


class AIOProducer(TransactionsMixin):
    """``async with AIOProducer({"bootstrap.servers": ...}) as p: await p.send(...)``."""

    def __init__(self, config: Mapping[str, Any] | ProducerConfig | None = None) -> None:
        cfg = config if isinstance(config, ProducerConfig) else ProducerConfig.from_dict(config)
        self.config = cfg
        self.client = AIOClient(cfg.client)
        self._acc: RecordAccumulator[RecordFuture] = RecordAccumulator(
            batch_size=cfg.batch_size,
            linger_ms=cfg.linger_ms,
            buffer_memory=cfg.buffer_memory,
            retry_backoff_ms=cfg.retry_backoff_ms,
        )
        self._partitioner = make_partitioner(
            cfg.partitioner,
            batch_size=cfg.batch_size,
            adaptive=cfg.adaptive,
            ignore_keys=cfg.ignore_keys,
            queued=self._acc.queued_bytes,
        )
        self._key_ser = serializer(cfg.key_serializer, "key.serializer")
        self._value_ser = serializer(cfg.value_serializer, "value.serializer")
        self._txn = TransactionManager(cfg.transactional_id, cfg.idempotent)
        self._sender = Sender(self.client, cfg, self._acc, self._txn, self._batch_done)
        self._sender_task: asyncio.Task[None] | None = None
        self._pending_records = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._memory = asyncio.Event()
        self._closed = False
        self._create_future: Callable[[], Future] = _not_started
        self._linger_ms = cfg.linger_ms
        self._size_limit = min(cfg.max_request_size - BATCH_OVERHEAD, cfg.buffer_memory)

    async def __aenter__(self) -> AIOProducer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Connect to a bootstrap server and start the sender task."""
        await self.client.bootstrap()
        loop = asyncio.get_running_loop()
        self._create_future = loop.create_future
        self._sender_task = loop.create_task(self._sender.run())

    @property
    def produce_requests(self) -> int:
        """Produce requests sent so far."""
        return self._sender.produce_requests

    @property
    def accumulator(self) -> RecordAccumulator[RecordFuture]:
        """The record accumulator (read-only use: its memory figures)."""
        return self._acc

    @property
    def batches_split(self) -> int:
        """Batches split in halves after the broker refused them as too large."""
        return self._sender.batches_split

    # -- sending -------------------------------------------------------------

    async def send(
        self,
        topic: str | ProducerRecord,
        value: Any = None,
        key: Any = None,
        partition: int | None = None,
        headers: Headers | None = None,
        timestamp: int | None = None,
        *,
        on_delivery: DeliveryCallback | None = None,
    ) -> Future:
        """Queue a record; the returned future resolves to its RecordMetadata.

        ``topic`` may be a :class:`ProducerRecord`. ``on_delivery(metadata, error)``
        is called once the outcome is known. Raises RecordTooLargeError
        (MESSAGE_TOO_LARGE) for a record over max.request.size, BufferExhaustedError
        after max.block.ms without memory, KafkaError UNKNOWN_TOPIC_OR_PARTITION when
        the topic is absent for max.block.ms.
        """
        rec = self.prepare(topic, value, key, partition, headers, timestamp)
        if rec.partition_count and self._acc.has_room(rec.size):
            return self.enqueue(rec, on_delivery)
        return await self.send_prepared(rec, on_delivery)

    def prepare(
        self,
        topic: str | ProducerRecord,
        value: Any = None,
        key: Any = None,
        partition: int | None = None,
        headers: Headers | None = None,
        timestamp: int | None = None,
    ) -> PreparedRecord:
        """The checks and serialization of ``send`` that need no waiting.

        Raises what ``send`` raises before queueing (closed producer, transaction
        state, serializer errors, RecordTooLargeError, a partition the topic lacks).
        It reads the producer's state without changing it, so the blocking
        Producer calls it from the caller's thread.
        """
        if type(topic) is not str:
            topic, value, key, partition, headers, timestamp = _unpack(topic)
        if self._closed or self._sender.fatal or self._txn.transactional:
            self._check_can_send()
        key_bytes = self._key_ser(key)
        value_bytes = self._value_ser(value)
        hdrs = [(k, header_bytes(v)) for k, v in headers] if headers else ()
        size = estimate_size(key_bytes, value_bytes, hdrs)
        if size > self._size_limit:
            self._check_size(size)
        count = self.client.cluster.partition_count(topic) or 0
        if count and partition is not None:
            _check_partition(topic, partition, count)
        return PreparedRecord(
            topic, partition, key_bytes, value_bytes, hdrs, timestamp, size, count
        )

    async def send_prepared(
        self, rec: PreparedRecord, on_delivery: DeliveryCallback | None = None
    ) -> Future:
        """Queue a prepared record, waiting up to max.block.ms for its topic's metadata
        and for room in buffer.memory."""
        return self.enqueue(await self._wait_ready(rec), on_delivery)

    async def send_prepared_into(
        self, rec: PreparedRecord, future: RecordFuture, on_delivery: DeliveryCallback | None
    ) -> None:
        """:meth:`send_prepared` with the caller's future (the blocking Producer's own)."""
        self.enqueue_into(await self._wait_ready(rec), future, on_delivery)

    async def _wait_ready(self, rec: PreparedRecord) -> PreparedRecord:
        if self._closed or self._sender.fatal or self._txn.transactional:
            self._check_can_send()
        deadline = time.monotonic() + self.config.max_block_ms / 1000  # for both waits
        count = self.client.cluster.partition_count(rec.topic)
        if not count:
            count = await self._wait_topic(rec.topic, deadline)
        if rec.partition is not None:
            _check_partition(rec.topic, rec.partition, count)
        if not self._acc.has_room(rec.size):
            await self._wait_memory(rec.size, deadline)
        return rec._replace(partition_count=count)

    def enqueue(self, rec: PreparedRecord, on_delivery: DeliveryCallback | None = None) -> Future:
        """Partition a prepared record whose topic has metadata, append it to the
        accumulator and wake the sender when a batch is due (on the producer's loop)."""
        future: Future = self._create_future()
        self.enqueue_into(rec, future, on_delivery)
        return future

    def enqueue_into(
        self, rec: PreparedRecord, future: RecordFuture, on_delivery: DeliveryCallback | None
    ) -> None:
        """:meth:`enqueue` with the caller's future (the blocking Producer's own). A record
        handed over from another thread re-checks that the producer can still send."""
        if self._closed or self._sender.fatal:
            self._check_can_send()
        topic, partition, key, value, headers, timestamp, size, count = rec
        if partition is None:
            partition = self._partitioner.partition(topic, key, count)
        tp = TopicPartition(topic, partition)
        if on_delivery is not None:
            future.add_done_callback(_callback(on_delivery))
        now = now_ms()
        if self._txn.transactional:
            self._txn.maybe_add_partition(tp)
        ts = now if timestamp is None else timestamp
        sendable = self._acc.append(tp, key, value, headers, ts, future, now, size)
        self._partitioner.on_append(topic, partition, size, count)
        self._pending_records += 1
        if self._pending_records == 1:
            self._idle.clear()
            self._sender.wake()
        elif sendable or self._linger_ms == 0:
            self._sender.wake()

    async def send_and_wait(self, *args: Any, **kwargs: Any) -> RecordMetadata:
        """``send`` and wait for the acknowledgement."""
        return await (await self.send(*args, **kwargs))

    def _check_can_send(self) -> None:
        if self._closed or self._sender_task is None:
            raise KafkaError(ErrorCode.UNKNOWN_SERVER_ERROR, "the producer is closed")
        if self._sender.fatal is not None:
            raise self._sender.fatal
        if self._txn.transactional:
            if self._txn.state == TxnState.ABORTABLE_ERROR and self._txn.last_error:
                raise KafkaError(
                    self._txn.last_error.code,
                    f"cannot send: the transaction must be aborted ({self._txn.last_error})",
                )
            self._txn.require(TxnState.IN_TRANSACTION, action="send")

    def _check_size(self, size: int) -> None:
        if size + BATCH_OVERHEAD > self.config.max_request_size:
            raise RecordTooLargeError(
                f"MESSAGE_TOO_LARGE: the message is {size + BATCH_OVERHEAD} bytes when "
                f"serialized which is larger than {self.config.max_request_size}, the value "
                "of max.request.size"
            )
        if size > self.config.buffer_memory:
            raise RecordTooLargeError(
                f"MESSAGE_TOO_LARGE: the message is {size} bytes when serialized which is "
                f"larger than the total memory buffer ({self.config.buffer_memory}, "
                "buffer.memory)"
            )

    async def _wait_topic(self, topic: str, deadline: float) -> int:
        notice = WaitLog()
        while True:
            response = await self.client.refresh_metadata([topic], auto_create=True)
            count = self.client.cluster.partition_count(topic)
            if count:
                return count
            entry = next((t for t in response.topics if t.name == topic), None)
            code = entry.error_code if entry is not None else ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
            if code not in (
                0,
                ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                ErrorCode.LEADER_NOT_AVAILABLE,
            ):
                raise KafkaError(ErrorCode(code), f"topic {topic!r}: {ErrorCode(code).name}")
            if time.monotonic() >= deadline:
                # Kafka's TimeoutException text (KafkaProducer.waitOnMetadata)
                raise KafkaError(
                    ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                    f"Topic {topic} not present in metadata after {self.config.max_block_ms} ms.",
                )
            if notice.due():
                error = ErrorCode(code or ErrorCode.LEADER_NOT_AVAILABLE).name
                log.warning(
                    f"[Producer clientId={self.client.config.client_id}] Error while fetching "
                    f"metadata: {{{topic}={error}}}; waiting up to max.block.ms "
                    f"({self.config.max_block_ms} ms) for the topic to appear."
                )
            await asyncio.sleep(min(self.config.retry_backoff_ms / 1000, 0.25))

    async def _wait_memory(self, size: int, deadline: float) -> None:
        while not self._acc.has_room(size):
            self._acc.exhausted = True
            self._sender.wake()
            self._memory.clear()
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0:
                    raise TimeoutError
                async with asyncio.timeout(remaining):
                    await self._memory.wait()
            except TimeoutError:
                free = self.config.buffer_memory - self._acc.used_bytes
                raise BufferExhaustedError(
                    f"failed to allocate {size} bytes within the configured max blocking time "
                    f"{self.config.max_block_ms} ms (max.block.ms); total memory "
                    f"{self.config.buffer_memory} bytes (buffer.memory), available {free}"
                ) from None
        self._acc.exhausted = False

    def _batch_done(self, batch: Batch) -> None:
        self._pending_records -= batch.record_count
        self._memory.set()
        if self._pending_records <= 0:
            self._pending_records = 0
            self._idle.set()

    # -- flushing and closing --------------------------------------------------

    async def flush(self, timeout: float | None = None) -> None:
        """Send everything queued and wait until every record has an outcome."""
        self._acc.flushing = True
        self._sender.wake()
        try:
            async with asyncio.timeout(timeout):
                await self._idle.wait()
        except TimeoutError:
            raise KafkaTimeoutError(
                f"flush did not complete within {timeout} s ({self._pending_records} "
                "record(s) pending)"
            ) from None
        finally:
            self._acc.flushing = False

    async def partitions_for(self, topic: str) -> list[int]:
        """The partition numbers of ``topic``, waiting up to max.block.ms for its metadata
        (the topic may be auto-created); KafkaError UNKNOWN_TOPIC_OR_PARTITION after that."""
        count = self.client.cluster.partition_count(topic) or await self._wait_topic(
            topic, time.monotonic() + self.config.max_block_ms / 1000
        )
        return list(range(count))

    async def close(self, timeout: float | None = None) -> None:
        """Flush (for at most ``timeout`` seconds), then fail what is left and disconnect."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._sender_task is not None and timeout != 0:
                with contextlib.suppress(KafkaTimeoutError):
                    await self.flush(timeout)
        finally:
            closed = KafkaError(ErrorCode.UNKNOWN_SERVER_ERROR, "the producer was closed")
            self._sender.fail_queued(closed)
            if self._sender_task is not None:
                self._sender_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._sender_task
            await self._sender.stop()
            await self.client.close()


class PreparedRecord(NamedTuple):
    """A serialized record ready to queue (see :meth:`AIOProducer.prepare`)."""

    topic: str
    partition: int | None
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes | None]]
    timestamp: int | None
    size: int  # estimate_size()
    partition_count: int  # 0: the topic's metadata is not known yet


def _check_partition(topic: str, partition: int, count: int) -> None:
    if not 0 <= partition < count:
        raise KafkaError(
            ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
            f"topic {topic!r} has no partition {partition} ({count} partitions)",
        )


def _unpack(record: object) -> tuple[str, Any, Any, int | None, Headers | None, int | None]:
    if not isinstance(record, ProducerRecord):
        raise TypeError(f"send() takes a topic name or a ProducerRecord, not {record!r}")
    r = record
    return r.topic, r.value, r.key, r.partition, r.headers, r.timestamp


def _not_started() -> Future:
    raise KafkaError(ErrorCode.UNKNOWN_SERVER_ERROR, "the producer is not started")


def _callback(func: DeliveryCallback) -> Callable[[Future], None]:
    def done(future: Future) -> None:
        """Call ``func(metadata, None)``, or ``func(None, error)`` when failed or cancelled."""
        if future.cancelled():
            func(None, asyncio.CancelledError())
        elif (exc := future.exception()) is not None:
            func(None, exc)
        else:
            func(future.result(), None)

    return done
