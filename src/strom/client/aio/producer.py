"""AIOProducer: a simple batching producer (no idempotence or transactions yet).

``send`` chooses the partition (murmur2 for keys, round-robin otherwise),
queues the record and returns a future of its :class:`RecordMetadata`. A
sender task drains batches that are full or have waited ``linger.ms`` and
sends, per leader, one Produce request holding one RecordBatch per partition.
Retriable errors refresh metadata and retry up to ``retries`` times.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from strom.client.accumulator import ProducerBatch, RecordAccumulator
from strom.client.aio.client import AIOClient
from strom.client.config import ClientConfig, ConfigDict
from strom.client.errors import error_for
from strom.client.partitioner import DefaultPartitioner
from strom.common.types import TopicPartition
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.generated.produce import ProduceRequest, ProduceResponse

Headers = Sequence[tuple[str, bytes | None]]


@dataclass(frozen=True, slots=True)
class RecordMetadata:
    topic: str
    partition: int
    offset: int  # -1 with acks=0
    timestamp: int


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class AIOProducer:
    def __init__(self, config: ConfigDict | ClientConfig | None = None) -> None:
        self.client = AIOClient(config)
        cfg = self.client.config
        self.config = cfg
        self._acc: RecordAccumulator[asyncio.Future[RecordMetadata]] = RecordAccumulator(
            batch_size=cfg.batch_size, linger_ms=cfg.linger_ms
        )
        self._partitioner = DefaultPartitioner()
        self._wakeup = asyncio.Event()
        self._inflight: set[asyncio.Task[None]] = set()
        self._sender: asyncio.Task[None] | None = None
        self._closing = False

    async def __aenter__(self) -> AIOProducer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        await self.client.bootstrap()
        self._sender = asyncio.get_running_loop().create_task(self._run())

    async def send(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None = None,
        partition: int | None = None,
        headers: Headers | None = None,
        timestamp: int | None = None,
    ) -> asyncio.Future[RecordMetadata]:
        """Queue a record; the returned future resolves when the broker acknowledges it."""
        if self._sender is None or self._closing:
            raise KafkaError(ErrorCode.UNKNOWN_SERVER_ERROR, "producer is not running")
        count = self.client.cluster.partition_count(topic)
        if count is None:
            count = await self.client.wait_for_topic(topic, auto_create=True)
        if partition is None:
            partition = self._partitioner.partition(topic, key, count)
        elif not 0 <= partition < count:
            raise KafkaError(
                ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                f"topic {topic!r} has no partition {partition}",
            )
        future: asyncio.Future[RecordMetadata] = asyncio.get_running_loop().create_future()
        now = _now_ms()
        full = self._acc.append(
            TopicPartition(topic, partition),
            key,
            value,
            headers or (),
            now if timestamp is None else timestamp,
            future,
            now,
        )
        if full or self.config.linger_ms <= 0:
            self._wakeup.set()
        elif len(self._acc) == 1:
            self._wakeup.set()  # let the sender compute the linger deadline
        return future

    async def flush(self) -> None:
        """Send everything queued and wait for the answers."""
        batches = self._acc.drain()
        if batches:
            self._dispatch(batches)
        while self._inflight:
            await asyncio.gather(*self._inflight, return_exceptions=True)

    async def close(self) -> None:
        self._closing = True
        try:
            if self._sender is not None:
                await self.flush()
        finally:
            if self._sender is not None:
                self._sender.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._sender
                self._sender = None
            await self.client.close()

    # -- sender --------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            deadline = self._acc.next_ready_ms()
            timeout = None if deadline is None else max(0, deadline - _now_ms()) / 1000
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wakeup.wait()
            self._wakeup.clear()
            ready = self._acc.ready(_now_ms())
            if ready:
                self._dispatch(self._acc.drain(ready))

    def _dispatch(self, batches: list[ProducerBatch[asyncio.Future[RecordMetadata]]]) -> None:
        task = asyncio.get_running_loop().create_task(self._send_batches(batches))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    async def _send_batches(
        self, batches: list[ProducerBatch[asyncio.Future[RecordMetadata]]]
    ) -> None:
        groups: dict[int, list[ProducerBatch[asyncio.Future[RecordMetadata]]]] = defaultdict(list)
        for batch in batches:
            try:
                groups[await self.client.leader_for(batch.tp)].append(batch)
            except KafkaError as exc:
                _fail(batch, exc)
        async with asyncio.TaskGroup() as tg:
            for leader, group in groups.items():
                tg.create_task(self._produce(leader, group))

    async def _produce(
        self, leader: int, batches: list[ProducerBatch[asyncio.Future[RecordMetadata]]]
    ) -> None:
        acks = self.config.acks
        by_topic: dict[str, list[ProduceRequest.PartitionProduceData]] = defaultdict(list)
        for batch in batches:
            batch.attempts += 1
            data = batch.encode(self.config.compression)
            by_topic[batch.tp.topic].append(
                ProduceRequest.PartitionProduceData(batch.tp.partition, data)
            )
        request = ProduceRequest(
            transactional_id=None,
            acks=acks,
            timeout_ms=self.config.request_timeout_ms,
            topic_data=[ProduceRequest.TopicProduceData(t, parts) for t, parts in by_topic.items()],
        )
        try:
            conn = await self.client.node_connection(leader)
            response: ProduceResponse | None = await conn.send(request, expect_response=acks != 0)
        except KafkaError as exc:
            await self._retry_or_fail(batches, exc)
            return
        if response is None:
            for batch in batches:
                _complete(batch, -1, -1)
            return
        await self._handle_response(batches, response)

    async def _handle_response(
        self,
        batches: list[ProducerBatch[asyncio.Future[RecordMetadata]]],
        response: ProduceResponse,
    ) -> None:
        results = {(t.name, p.index): p for t in response.responses for p in t.partition_responses}
        retry: list[ProducerBatch[asyncio.Future[RecordMetadata]]] = []
        last_error: KafkaError | None = None
        for batch in batches:
            p = results.get((batch.tp.topic, batch.tp.partition))
            if p is None:
                _fail(
                    batch, KafkaError(ErrorCode.UNKNOWN_SERVER_ERROR, f"no answer for {batch.tp}")
                )
                continue
            err = error_for(p.error_code, f"partition {batch.tp}", p.error_message)
            if err is None:
                _complete(batch, p.base_offset, p.log_append_time_ms)
            elif err.retriable and batch.attempts <= self.config.retries:
                retry.append(batch)
                last_error = err
            else:
                _fail(batch, err)
        if retry and last_error is not None:
            await self._retry_or_fail(retry, last_error)

    async def _retry_or_fail(
        self, batches: list[ProducerBatch[asyncio.Future[RecordMetadata]]], error: KafkaError
    ) -> None:
        if not error.retriable or any(b.attempts > self.config.retries for b in batches):
            for batch in batches:
                _fail(batch, error)
            return
        await asyncio.sleep(self.config.retry_backoff_ms / 1000)
        try:
            await self.client.refresh_metadata(sorted({b.tp.topic for b in batches}))
        except KafkaError as exc:
            for batch in batches:
                _fail(batch, exc)
            return
        await self._send_batches(batches)


def _complete(
    batch: ProducerBatch[asyncio.Future[RecordMetadata]], base: int, log_append_ms: int
) -> None:
    for i, future in enumerate(batch.tokens):
        if future.done():
            continue
        ts = log_append_ms if log_append_ms >= 0 else batch.records[i][3]
        offset = base + i if base >= 0 else -1
        future.set_result(RecordMetadata(batch.tp.topic, batch.tp.partition, offset, ts))


def _fail(batch: ProducerBatch[asyncio.Future[RecordMetadata]], error: KafkaError) -> None:
    for future in batch.tokens:
        if not future.done():
            future.set_exception(error)
