"""Blocking Producer and Consumer: the asyncio classes run on a private loop thread.

Part of the client's IO front. ``Producer.send`` returns a :class:`DeliveryFuture`
whose ``result(timeout)`` is the RecordMetadata; it serializes in the caller's
thread and hands the record over without a round trip to the loop thread.
Delivery callbacks run on the producer's loop thread, so keep them short.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Coroutine, Iterable, Mapping
from typing import Any, TypeVar

from strom.client.admin_types import OffsetAndTimestamp
from strom.client.aio.consumer import AIOConsumer, ConsumerGroupMetadata
from strom.client.aio.producer import AIOProducer, DeliveryCallback, Headers, PreparedRecord
from strom.client.messages import ConsumerRecord, ProducerRecord, RecordMetadata
from strom.client.sync import _LoopThread, _make
from strom.common.types import TopicPartition

R = TypeVar("R")

log = logging.getLogger(__name__)


_PENDING: Any = object()
_FUTURES_LOCK = threading.Lock()


class DeliveryFuture:
    """The outcome of one blocking ``send()``: ``result(timeout)`` is the record's
    RecordMetadata or raises its KafkaError.

    It has the methods of ``concurrent.futures.Future`` that a producer's caller
    uses (result, exception, done, add_done_callback, cancelled), at a fraction
    of its cost: a record's future is completed on the producer's loop thread,
    and only a caller that waits gets an Event.
    """

    __slots__ = ("_callbacks", "_error", "_value", "_waiter")

    def __init__(self) -> None:
        self._value: Any = _PENDING
        self._error: BaseException | None = None
        self._waiter: threading.Event | None = None
        self._callbacks: list[Callable[[DeliveryFuture], Any]] | None = None

    def done(self) -> bool:
        """True once the record was acknowledged or failed."""
        return self._value is not _PENDING or self._error is not None

    def cancelled(self) -> bool:
        """Always False: a record cannot be cancelled."""
        return False

    def cancel(self) -> bool:
        """Does nothing and returns False."""
        return False  # a queued record cannot be taken back

    def running(self) -> bool:
        """True while the outcome is pending."""
        return not self.done()

    def result(self, timeout: float | None = None) -> RecordMetadata:
        """The record's RecordMetadata, waiting up to ``timeout`` s; raises the delivery
        error, or TimeoutError when ``timeout`` passes first."""
        self._wait(timeout)
        if self._error is not None:
            raise self._error
        result: RecordMetadata = self._value
        return result

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """The delivery error (None on success), waiting up to ``timeout`` s; TimeoutError
        when ``timeout`` passes first."""
        self._wait(timeout)
        return self._error

    def add_done_callback(self, fn: Callable[[DeliveryFuture], Any]) -> None:
        """Call ``fn(future)`` once the outcome is known: now if it is, else on the
        producer's loop thread."""
        with _FUTURES_LOCK:
            if not self.done():
                if self._callbacks is None:
                    self._callbacks = []
                self._callbacks.append(fn)
                return
        fn(self)

    def _wait(self, timeout: float | None) -> None:
        if self.done():
            return
        with _FUTURES_LOCK:
            if self.done():
                return
            if self._waiter is None:
                self._waiter = threading.Event()
            waiter = self._waiter
        if not waiter.wait(timeout):
            raise TimeoutError(f"the record was not acknowledged within {timeout} s")

    # completion (the producer's loop thread; the sender sees an asyncio-like future)

    def set_result(self, value: RecordMetadata) -> None:
        """Complete with ``value`` (on the producer's loop thread); ignored once done."""
        self._complete(value, None)

    def set_exception(self, error: BaseException) -> None:
        """Fail with ``error`` (on the producer's loop thread); ignored once done."""
        self._complete(None, error)

    def _complete(self, value: Any, error: BaseException | None) -> None:
        with _FUTURES_LOCK:
            if self.done():
                return
            self._value, self._error = value, error
            waiter, callbacks, self._callbacks = self._waiter, self._callbacks, None
        if waiter is not None:
            waiter.set()
        for fn in callbacks or ():
            try:
                fn(self)
            except Exception:  # a failing callback must not stop the other records
                log.exception("a delivery callback raised")


class Producer:
    """``with Producer({"bootstrap.servers": "host:9092"}) as p: p.send("t", b"v")``."""

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        self._loop = _LoopThread("strom-producer")
        try:
            self._producer: AIOProducer = self._loop.run(_make(AIOProducer, config))
        except BaseException:
            self._loop.stop()
            raise
        self._lock = threading.Lock()
        self._handed: list[tuple[PreparedRecord, DeliveryCallback | None, DeliveryFuture]] = []
        self._handed_bytes = 0
        self._scheduled = False

    def __enter__(self) -> Producer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def aio(self) -> AIOProducer:
        """The asyncio producer underneath (use it only on the producer's loop)."""
        return self._producer

    def send(
        self,
        topic: str | ProducerRecord,
        value: Any = None,
        key: Any = None,
        partition: int | None = None,
        headers: Headers | None = None,
        timestamp: int | None = None,
        *,
        on_delivery: DeliveryCallback | None = None,
    ) -> DeliveryFuture:
        """Queue a record (blocking up to max.block.ms for metadata or memory).

        Errors found before queueing (oversize record, unknown partition, buffer
        exhausted, serializer errors) raise here; delivery errors come through the
        future. The checks and serializers run in the caller's thread; when the
        topic's metadata is known and buffer.memory has room, the record is handed
        to the loop thread without waiting for it (records keep their order).
        """
        rec = self._producer.prepare(topic, value, key, partition, headers, timestamp)
        result = DeliveryFuture()
        acc = self._producer.accumulator
        with self._lock:
            fast = bool(rec.partition_count) and (
                acc.used_bytes + self._handed_bytes + rec.size <= acc.buffer_memory
            )
            if fast:
                self._handed.append((rec, on_delivery, result))
                self._handed_bytes += rec.size
                if not self._scheduled:  # scheduled under the lock: no send can pass it
                    self._scheduled = True
                    self._loop.loop.call_soon_threadsafe(self._take_handed)
        if not fast:
            self._loop.run(self._send_waiting(rec, on_delivery, result))
        return result

    def _take_handed(self) -> None:
        """On the loop: queue the records handed over by send(), in order."""
        with self._lock:
            handed, self._handed = self._handed, []
            self._scheduled = False
        size = 0
        for rec, on_delivery, result in handed:
            size += rec.size
            try:
                self._producer.enqueue_into(rec, result, on_delivery)
            except BaseException as exc:
                result.set_exception(exc)
        with self._lock:
            self._handed_bytes -= size

    async def _after_handed(self, work: Coroutine[Any, Any, R]) -> R:
        """Run ``work`` on the loop once every record handed over so far is queued
        (flush, commit and close must include them)."""
        self._take_handed()
        return await work

    async def _send_waiting(
        self, rec: PreparedRecord, on_delivery: DeliveryCallback | None, result: DeliveryFuture
    ) -> None:
        self._take_handed()
        await self._producer.send_prepared_into(rec, result, on_delivery)

    def flush(self, timeout: float | None = None) -> None:
        """Send every queued record and wait until each has an outcome (Kafka's flush);
        KafkaTimeoutError after ``timeout`` s."""
        self._loop.run(self._after_handed(self._producer.flush(timeout)))

    def partitions_for(self, topic: str) -> list[int]:
        """The partition numbers of ``topic`` (waiting up to max.block.ms for its metadata)."""
        return self._loop.run(self._producer.partitions_for(topic))

    def init_transactions(self) -> None:
        """Kafka's initTransactions: get the producer id and epoch of transactional.id,
        fencing older instances."""
        self._loop.run(self._producer.init_transactions())

    def begin_transaction(self) -> None:
        """Kafka's beginTransaction (after :meth:`init_transactions`)."""
        self._loop.run(self._producer.begin_transaction())

    def send_offsets_to_transaction(
        self, offsets: Mapping[TopicPartition, Any], group_metadata: Any
    ) -> None:
        """Kafka's sendOffsetsToTransaction: commit consumer ``offsets`` with the
        transaction; ``group_metadata`` is a group id or ``Consumer.group_metadata()``."""
        self._loop.run(
            self._after_handed(self._producer.send_offsets_to_transaction(offsets, group_metadata))
        )

    def commit_transaction(self) -> None:
        """Kafka's commitTransaction: flush the transaction's records, then commit it."""
        self._loop.run(self._after_handed(self._producer.commit_transaction()))

    def abort_transaction(self) -> None:
        """Kafka's abortTransaction: fail the unsent records, wait for those in flight, abort."""
        self._loop.run(self._after_handed(self._producer.abort_transaction()))

    def close(self, timeout: float | None = None) -> None:
        """Flush for at most ``timeout`` s, then stop; idempotent."""
        if self._loop.loop.is_closed():
            return
        try:
            self._loop.run(self._after_handed(self._producer.close(timeout)))
        finally:
            self._loop.stop()


class Consumer:
    """``with Consumer({"bootstrap.servers": ..., "group.id": "g"}) as c: c.subscribe(["t"])``.

    Heartbeats keep running on the consumer's loop thread between polls; listener
    callbacks are called on that thread too, during poll().
    """

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        self._loop = _LoopThread("strom-consumer")
        try:
            self._consumer: AIOConsumer = self._loop.run(_make(AIOConsumer, config))
        except BaseException:
            self._loop.stop()
            raise

    def __enter__(self) -> Consumer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self, coro: Coroutine[Any, Any, R]) -> R:
        return self._loop.run(coro)

    async def _call(self, func: Any, *args: Any) -> Any:
        return func(*args)

    def subscribe(
        self, topics: Iterable[str] | str | re.Pattern[str], listener: Any = None
    ) -> None:
        """Join the group for ``topics`` (a list, or a regex matched in full); see
        :meth:`AIOConsumer.subscribe`."""
        self._run(self._call(self._consumer.subscribe, topics, listener))

    def assign(self, partitions: Iterable[TopicPartition]) -> None:
        """Read exactly ``partitions``, without group membership (Kafka's assign)."""
        self._run(self._call(self._consumer.assign, list(partitions)))

    def unsubscribe(self) -> None:
        """Leave the group or drop the manual assignment (Kafka's unsubscribe)."""
        self._run(self._consumer.unsubscribe())

    def assignment(self) -> set[TopicPartition]:
        """The partitions currently assigned to this consumer."""
        result: set[TopicPartition] = self._run(self._call(self._consumer.assignment))
        return result

    def subscription(self) -> set[str]:
        """The subscribed topics."""
        result: set[str] = self._run(self._call(self._consumer.subscription))
        return result

    def poll(self, timeout: float = 0.0, *, max_records: int | None = None) -> list[ConsumerRecord]:
        """Records that arrived (at most ``max_records``, default max.poll.records),
        waiting up to ``timeout`` s."""
        return self._run(self._consumer.poll(timeout, max_records=max_records))

    def commit(
        self, offsets: Mapping[TopicPartition, Any] | None = None, *, asynchronous: bool = False
    ) -> None:
        """Commit ``offsets`` (default: the current positions) and wait (Kafka's commitSync);
        CommitFailedError when the group rebalanced. ``asynchronous`` returns at once."""
        self._run(self._consumer.commit(offsets, asynchronous=asynchronous))

    def commit_async(self, offsets: Mapping[TopicPartition, Any] | None = None) -> None:
        """Start committing ``offsets`` (default: the current positions) and return at once;
        a failed commit is logged as a warning (Kafka's commitAsync without a callback)."""
        self.commit(offsets, asynchronous=True)

    def committed(
        self, partitions: Iterable[TopicPartition]
    ) -> dict[TopicPartition, OffsetAndTimestamp | None]:
        """The last committed offset per partition, None where nothing is committed."""
        return self._run(self._consumer.committed(list(partitions)))

    def position(self, tp: TopicPartition) -> int:
        """The offset of the next record poll() returns for ``tp`` (Kafka's position)."""
        result: int = self._run(self._consumer.position(tp))
        return result

    def seek(self, tp: TopicPartition, offset: int) -> None:
        """Make ``offset`` the next offset poll() returns for ``tp`` (Kafka's seek)."""
        self._run(self._call(self._consumer.seek, tp, offset))

    def seek_to_beginning(self, partitions: Iterable[TopicPartition] | None = None) -> None:
        """Reset ``partitions`` (default: all assigned) to their earliest offset, lazily."""
        self._run(self._call(self._consumer.seek_to_beginning, partitions))

    def seek_to_end(self, partitions: Iterable[TopicPartition] | None = None) -> None:
        """Reset ``partitions`` (default: all assigned) to their end offset, lazily."""
        self._run(self._call(self._consumer.seek_to_end, partitions))

    def pause(self, partitions: Iterable[TopicPartition]) -> None:
        """Stop fetching ``partitions`` until :meth:`resume` (Kafka's pause)."""
        self._run(self._call(self._consumer.pause, list(partitions)))

    def resume(self, partitions: Iterable[TopicPartition]) -> None:
        """Fetch ``partitions`` paused with :meth:`pause` again."""
        self._run(self._call(self._consumer.resume, list(partitions)))

    def paused(self) -> set[TopicPartition]:
        """Partitions paused with :meth:`pause` (they are not fetched)."""
        result: set[TopicPartition] = self._run(self._call(self._consumer.paused))
        return result

    def offsets_for_times(
        self, timestamps: Mapping[TopicPartition, int]
    ) -> dict[TopicPartition, OffsetAndTimestamp | None]:
        """Per partition, the earliest offset whose timestamp is >= the given one, None if
        there is none (Kafka's offsetsForTimes)."""
        return self._run(self._consumer.offsets_for_times(timestamps))

    def beginning_offsets(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        """The earliest offset of each partition (Kafka's beginningOffsets)."""
        return self._run(self._consumer.beginning_offsets(list(partitions)))

    def end_offsets(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        """The end offset of each partition (Kafka's endOffsets; the last stable offset with
        read_committed)."""
        return self._run(self._consumer.end_offsets(list(partitions)))

    def partitions_for(self, topic: str) -> list[TopicPartition]:
        """The partitions of ``topic``; KafkaError UNKNOWN_TOPIC_OR_PARTITION if it is absent."""
        return self._run(self._consumer.partitions_for(topic))

    def group_metadata(self) -> ConsumerGroupMetadata:
        """The consumer's group metadata, for ``Producer.send_offsets_to_transaction``."""
        result: ConsumerGroupMetadata = self._run(self._call(self._consumer.group_metadata))
        return result

    def close(self) -> None:
        """Commit (with auto commit), leave the group and stop the loop; idempotent."""
        if self._loop.loop.is_closed():
            return
        try:
            self._loop.run(self._consumer.close())
        finally:
            self._loop.stop()
