"""Blocking Producer and Consumer: the asyncio classes run on a private loop thread.

Part of the client's IO front. ``Producer.send`` returns a
``concurrent.futures.Future`` whose ``result(timeout)`` is the RecordMetadata;
delivery callbacks run on the producer's loop thread, so keep them short.
"""

from __future__ import annotations

import concurrent.futures
import re
from collections.abc import Coroutine, Iterable, Mapping
from typing import Any, TypeVar

from strom.client.admin_types import OffsetAndTimestamp
from strom.client.aio.consumer import AIOConsumer, ConsumerGroupMetadata
from strom.client.aio.producer import AIOProducer, DeliveryCallback, Headers
from strom.client.messages import ConsumerRecord, ProducerRecord, RecordMetadata
from strom.client.sync import _LoopThread, _make, _transfer
from strom.common.types import TopicPartition

R = TypeVar("R")


class Producer:
    """``with Producer({"bootstrap.servers": "host:9092"}) as p: p.send("t", b"v")``."""

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        self._loop = _LoopThread("strom-producer")
        try:
            self._producer: AIOProducer = self._loop.run(_make(AIOProducer, config))
        except BaseException:
            self._loop.stop()
            raise

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
    ) -> concurrent.futures.Future[RecordMetadata]:
        """Queue a record (blocking up to max.block.ms for metadata or memory).

        Errors found before queueing (oversize record, unknown partition, buffer
        exhausted) raise here; delivery errors come through the future.
        """
        result: concurrent.futures.Future[RecordMetadata] = concurrent.futures.Future()
        producer = self._producer

        async def enqueue() -> None:
            fut = await producer.send(
                topic, value, key, partition, headers, timestamp, on_delivery=on_delivery
            )
            fut.add_done_callback(lambda f: _transfer(f, result))

        self._loop.run(enqueue())
        return result

    def flush(self, timeout: float | None = None) -> None:
        self._loop.run(self._producer.flush(timeout))

    def partitions_for(self, topic: str) -> list[int]:
        return self._loop.run(self._producer.partitions_for(topic))

    def init_transactions(self) -> None:
        self._loop.run(self._producer.init_transactions())

    def begin_transaction(self) -> None:
        self._loop.run(self._producer.begin_transaction())

    def send_offsets_to_transaction(
        self, offsets: Mapping[TopicPartition, Any], group_metadata: Any
    ) -> None:
        self._loop.run(self._producer.send_offsets_to_transaction(offsets, group_metadata))

    def commit_transaction(self) -> None:
        self._loop.run(self._producer.commit_transaction())

    def abort_transaction(self) -> None:
        self._loop.run(self._producer.abort_transaction())

    def close(self, timeout: float | None = None) -> None:
        """Flush for at most ``timeout`` s, then stop; idempotent."""
        if self._loop.loop.is_closed():
            return
        try:
            self._loop.run(self._producer.close(timeout))
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
        self._run(self._call(self._consumer.subscribe, topics, listener))

    def assign(self, partitions: Iterable[TopicPartition]) -> None:
        self._run(self._call(self._consumer.assign, list(partitions)))

    def unsubscribe(self) -> None:
        self._run(self._consumer.unsubscribe())

    def assignment(self) -> set[TopicPartition]:
        result: set[TopicPartition] = self._run(self._call(self._consumer.assignment))
        return result

    def subscription(self) -> set[str]:
        result: set[str] = self._run(self._call(self._consumer.subscription))
        return result

    def poll(self, timeout: float = 0.0, *, max_records: int | None = None) -> list[ConsumerRecord]:
        return self._run(self._consumer.poll(timeout, max_records=max_records))

    def commit(
        self, offsets: Mapping[TopicPartition, Any] | None = None, *, asynchronous: bool = False
    ) -> None:
        self._run(self._consumer.commit(offsets, asynchronous=asynchronous))

    def commit_async(self, offsets: Mapping[TopicPartition, Any] | None = None) -> None:
        self.commit(offsets, asynchronous=True)

    def committed(
        self, partitions: Iterable[TopicPartition]
    ) -> dict[TopicPartition, OffsetAndTimestamp | None]:
        return self._run(self._consumer.committed(list(partitions)))

    def position(self, tp: TopicPartition) -> int:
        result: int = self._run(self._consumer.position(tp))
        return result

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self._run(self._call(self._consumer.seek, tp, offset))

    def seek_to_beginning(self, partitions: Iterable[TopicPartition] | None = None) -> None:
        self._run(self._call(self._consumer.seek_to_beginning, partitions))

    def seek_to_end(self, partitions: Iterable[TopicPartition] | None = None) -> None:
        self._run(self._call(self._consumer.seek_to_end, partitions))

    def pause(self, partitions: Iterable[TopicPartition]) -> None:
        self._run(self._call(self._consumer.pause, list(partitions)))

    def resume(self, partitions: Iterable[TopicPartition]) -> None:
        self._run(self._call(self._consumer.resume, list(partitions)))

    def paused(self) -> set[TopicPartition]:
        result: set[TopicPartition] = self._run(self._call(self._consumer.paused))
        return result

    def offsets_for_times(
        self, timestamps: Mapping[TopicPartition, int]
    ) -> dict[TopicPartition, OffsetAndTimestamp | None]:
        return self._run(self._consumer.offsets_for_times(timestamps))

    def beginning_offsets(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        return self._run(self._consumer.beginning_offsets(list(partitions)))

    def end_offsets(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        return self._run(self._consumer.end_offsets(list(partitions)))

    def partitions_for(self, topic: str) -> list[TopicPartition]:
        return self._run(self._consumer.partitions_for(topic))

    def group_metadata(self) -> ConsumerGroupMetadata:
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
