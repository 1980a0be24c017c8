"""The producer's sender task: drain ready batches, send Produce requests, settle futures.

One loop: get a producer id when idempotent (InitProducerId), add new partitions
to the transaction (AddPartitionsToTxn), expire batches older than
``delivery.timeout.ms``, drain ready partitions whose leader is known into one
Produce request per leader (at most ``max.in.flight.requests.per.connection``
in flight per leader), then sleep until a batch is due or something wakes it.
Responses are handled by :class:`~strom.client.txn_manager.TransactionManager`'s
classification: success, retry (re-queued after ``retry.backoff.ms``, metadata
refreshed) or failure (the records' futures get a KafkaError with the code). A
batch of several records refused with MESSAGE_TOO_LARGE is split in halves and
re-queued until each part fits (or a single record fails), as Kafka's sender does.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Callable
from typing import Any, Protocol

from strom.client.accumulator import ProducerBatch, RecordAccumulator
from strom.client.aio.client import AIOClient
from strom.client.aio.coordinators import now_ms
from strom.client.aio.txn_requests import add_partitions, init_producer_id
from strom.client.errors import KafkaTimeoutError, error_for
from strom.client.messages import RecordMetadata
from strom.client.producer_config import ProducerConfig
from strom.client.txn_manager import Outcome, TransactionManager
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.generated.produce import ProduceRequest, ProduceResponse

Future = asyncio.Future[RecordMetadata]
_new = tuple.__new__


class RecordFuture(Protocol):
    """What completes with a record's outcome: an asyncio future, or the blocking
    Producer's DeliveryFuture."""

    def done(self) -> bool:
        """True once the outcome is set."""

    def set_result(self, result: RecordMetadata, /) -> None:
        """Complete with the record's metadata."""

    def set_exception(self, exception: BaseException, /) -> None:
        """Complete with the record's error."""

    def add_done_callback(self, fn: Callable[[Any], object], /) -> None:
        """Call ``fn(future)`` once the outcome is set."""


Batch = ProducerBatch[RecordFuture]

_REFRESH_ON = frozenset(
    {
        ErrorCode.NOT_LEADER_OR_FOLLOWER,
        ErrorCode.LEADER_NOT_AVAILABLE,
        ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
        ErrorCode.NETWORK_EXCEPTION,
        ErrorCode.REQUEST_TIMED_OUT,
        ErrorCode.FENCED_LEADER_EPOCH,
        ErrorCode.KAFKA_STORAGE_ERROR,
    }
)


class Sender:
    """The producer's background task (Kafka's Sender): sends ready batches and settles
    their records' futures."""

    def __init__(
        self,
        client: AIOClient,
        config: ProducerConfig,
        acc: RecordAccumulator[RecordFuture],
        txn: TransactionManager,
        on_done: Callable[[Batch], None],
    ) -> None:
        self.client = client
        self.config = config
        self.acc = acc
        self.txn = txn
        self._on_done = on_done
        self.wakeup = asyncio.Event()
        self._in_flight: dict[int, int] = defaultdict(int)
        self._muted: set[Any] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._sending: set[Batch] = set()
        self._stale_topics: set[str] = set()
        self._metadata_task: asyncio.Task[None] | None = None
        self.produce_requests = 0  # sent so far (statistics, tests)
        self.batches_split = 0  # split after MESSAGE_TOO_LARGE (statistics, tests)
        self.fatal: KafkaError | None = None

    def wake(self) -> None:
        """Wake the loop for another step now."""
        self.wakeup.set()

    @property
    def in_flight(self) -> int:
        """Produce requests awaiting a response, over all brokers."""
        return sum(self._in_flight.values())

    async def run(self) -> None:
        """Step, then sleep until the next batch is due or :meth:`wake`; until cancelled."""
        while True:
            idle_ms = await self._step()
            timeout = None if idle_ms is None else idle_ms / 1000
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self.wakeup.wait()
            self.wakeup.clear()

    async def _step(self) -> int | None:
        """One round; returns how long to sleep (None: until woken)."""
        if not await self._maybe_producer_id():
            return self.config.retry_backoff_ms
        if self.txn.pending_partitions:
            await self._add_partitions()
        now = now_ms()
        for batch in self.acc.expired(now, self.config.delivery_timeout_ms):
            age = now - batch.created_ms
            self._fail(batch, KafkaTimeoutError(_expired(batch, age)))
        stalled = self._send_ready(now)
        self._maybe_refresh_metadata()
        due = self.acc.next_ready_ms()
        if due is None:
            return None
        wait = max(0, due - now_ms())
        return max(wait, self.config.retry_backoff_ms) if stalled else wait

    async def _maybe_producer_id(self) -> bool:
        txn = self.txn
        if not txn.idempotent or txn.transactional:
            return not txn.transactional or txn.has_producer_id or len(self.acc) == 0
        if txn.has_producer_id and not txn.needs_new_producer_id:
            return True
        if len(self.acc) == 0:
            return True
        if txn.needs_new_producer_id and self.in_flight:
            return False  # wait for in-flight batches before resetting sequences
        try:
            producer_id, epoch = await init_producer_id(self.client, None, 0)
        except KafkaError as exc:
            if exc.retriable:
                return False
            self.fatal = exc
            for batch in self.acc.drain_all():
                self._fail(batch, exc, released=True)
            return False
        txn.set_producer_id(producer_id, epoch)
        return True

    async def _add_partitions(self) -> None:
        try:
            await add_partitions(self.client, self.txn)
        except KafkaError as exc:
            if exc.retriable:
                return
            pending = set(self.txn.pending_partitions)
            self.txn.pending_partitions.clear()
            for batch in self.acc.drain_where(lambda b: b.tp in pending):
                self._fail(batch, exc, released=True)

    def _send_ready(self, now: int) -> bool:
        by_node: dict[int, list[Any]] = defaultdict(list)
        stalled = False
        for tp in self.acc.ready(now):
            leader = self.client.cluster.leader_for(tp)
            if leader is None:
                self._stale_topics.add(tp.topic)
                stalled = True
                continue
            by_node[leader].append(tp)
        for node, tps in by_node.items():
            if self._in_flight[node] >= self.config.max_in_flight:
                continue
            batches = self.acc.drain(
                tps, max_request_size=self.config.max_request_size, can_send=self._can_send
            )
            if not batches:
                stalled = True
                continue
            for batch in batches:
                if self.txn.is_stale(batch):
                    self.txn.restamp(batch)
                else:
                    self.txn.stamp(batch)
                batch.attempts += 1
            self._spawn(self._produce(node, batches))
        return stalled

    def _can_send(self, batch: Batch) -> bool:
        if self.config.max_in_flight == 1 and batch.tp in self._muted:
            return False
        if self.txn.idempotent and not self.txn.has_producer_id:
            return False
        return self.txn.can_send(batch)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _produce(self, node: int, batches: list[Batch]) -> None:
        self._in_flight[node] += 1
        self._sending.update(batches)
        if self.config.max_in_flight == 1:
            self._muted.update(b.tp for b in batches)
        try:
            await self._produce_inner(node, batches)
        finally:
            self._in_flight[node] -= 1
            self._sending.difference_update(batches)
            self._muted.difference_update(b.tp for b in batches)
            self.wake()

    async def _produce_inner(self, node: int, batches: list[Batch]) -> None:
        acks = self.config.acks
        by_topic: dict[str, list[ProduceRequest.PartitionProduceData]] = defaultdict(list)
        for batch in batches:
            data = batch.encode(self.config.compression)
            by_topic[batch.tp.topic].append(
                ProduceRequest.PartitionProduceData(batch.tp.partition, data)
            )
        request = ProduceRequest(
            transactional_id=self.txn.transactional_id,
            acks=acks,
            timeout_ms=self.config.request_timeout_ms,
            topic_data=[ProduceRequest.TopicProduceData(t, ps) for t, ps in by_topic.items()],
        )
        self.produce_requests += 1
        try:
            conn = await self.client.node_connection(node)
            response: ProduceResponse | None = await conn.send(request, expect_response=acks != 0)
        except KafkaError as exc:
            for batch in batches:
                self._settle(batch, exc.code, exc, -1, -1)
            return
        if response is None:
            for batch in batches:
                self._complete(batch, -1, -1)
            return
        results = {(t.name, p.index): p for t in response.responses for p in t.partition_responses}
        for batch in batches:
            p = results.get((batch.tp.topic, batch.tp.partition))
            if p is None:
                err = KafkaError(ErrorCode.UNKNOWN_SERVER_ERROR, f"no answer for {batch.tp}")
                self._settle(batch, err.code, err, -1, -1)
                continue
            perr = error_for(p.error_code, f"partition {batch.tp}", p.error_message)
            self._settle(batch, p.error_code, perr, p.base_offset, p.log_append_time_ms)

    def _settle(
        self, batch: Batch, code: int, err: KafkaError | None, base: int, append_ms: int
    ) -> None:
        outcome = self.txn.classify(batch, code)
        if outcome is Outcome.SUCCESS:
            self.txn.completed(batch)
            self._complete(batch, base, append_ms)
            return
        if code == ErrorCode.MESSAGE_TOO_LARGE and batch.record_count > 1 and self.fatal is None:
            self._split(batch)
            return
        assert err is not None
        if code in _REFRESH_ON:
            self._stale_topics.add(batch.tp.topic)
        now = now_ms()
        if (
            outcome is Outcome.RETRY
            and batch.attempts <= self.config.retries
            and now - batch.created_ms < self.config.delivery_timeout_ms
            and self.fatal is None
        ):
            self.acc.reenqueue(batch, now)
            return
        if code in (ErrorCode.PRODUCER_FENCED, ErrorCode.INVALID_PRODUCER_EPOCH):
            self.txn.fatal(err)
        self._fail(batch, err)

    def _split(self, batch: Batch) -> None:
        """Too large for the broker: send the records again in two halves (as Kafka's
        producer splits a batch); a single record too large fails."""
        pieces = self.acc.split(batch)
        self.txn.split(batch, pieces)
        now = now_ms()
        for piece in reversed(pieces):  # unsequenced pieces go to the front: last first
            self.acc.reenqueue(piece, now)
        self.batches_split += 1

    def _complete(self, batch: Batch, base: int, append_ms: int) -> None:
        topic, partition = batch.tp
        offset = base if base >= 0 else -1
        step = 1 if base >= 0 else 0
        for future, (key, value, _, ts) in zip(batch.tokens, batch.records, strict=True):
            if not future.done():
                md = (
                    topic,
                    partition,
                    offset,
                    append_ms if append_ms >= 0 else ts,
                    -1 if key is None else len(key),
                    -1 if value is None else len(value),
                )
                future.set_result(_new(RecordMetadata, md))
            offset += step
        self.acc.release(batch)
        self._on_done(batch)

    def _fail(self, batch: Batch, error: KafkaError, *, released: bool = False) -> None:
        self.txn.failed(batch, error)
        for future in batch.tokens:
            if not future.done():
                future.set_exception(error)
        if not released:
            self.acc.release(batch)
        self._on_done(batch)

    def fail_queued(self, error: KafkaError) -> None:
        """Fail every queued batch (close with a timeout, abort_transaction)."""
        for batch in self.acc.drain_all():
            self._fail(batch, error, released=True)

    def _maybe_refresh_metadata(self) -> None:
        if not self._stale_topics or (
            self._metadata_task is not None and not self._metadata_task.done()
        ):
            return
        topics = sorted(self._stale_topics)
        self._stale_topics.clear()
        self._metadata_task = asyncio.get_running_loop().create_task(self._refresh(topics))

    async def _refresh(self, topics: list[str]) -> None:
        await asyncio.sleep(self.config.retry_backoff_ms / 1000)
        try:
            await self.client.refresh_metadata(topics)
        except KafkaError:
            self._stale_topics.update(topics)
        self.wake()

    async def stop(self) -> None:
        """Cancel the in-flight requests and the metadata refresh."""
        tasks = list(self._tasks)
        sending = list(self._sending)
        if self._metadata_task is not None:
            tasks.append(self._metadata_task)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        closed = KafkaError(ErrorCode.NETWORK_EXCEPTION, "the producer was closed")
        for batch in sending:
            self._fail(batch, closed)
        self._sending.clear()

    async def wait_in_flight(self) -> None:
        """Wait until no Produce request is in flight (their exceptions are not raised)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


def _expired(batch: Batch, age_ms: int) -> str:
    return (
        f"Expiring {batch.record_count} record(s) for {batch.tp}: {age_ms} ms has passed "
        "since batch creation (delivery.timeout.ms)"
    )
