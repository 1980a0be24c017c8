"""Per-partition batching of records to produce (sans-IO).

Records queue per partition in batches of up to ``batch.size`` bytes (a
record larger than that gets a batch of its own). A partition is *ready* when
its first batch is full, another batch queues behind it, it has waited
``linger.ms``, a flush is in progress or memory is exhausted; a batch waiting
for a retry is ready only after its backoff. :meth:`RecordAccumulator.drain`
hands out the first batch of each ready partition, within ``max.request.size``.

``buffer.memory`` is accounted here: every queued or in-flight record holds its
estimated size until its batch is released. The IO front waits (up to
``max.block.ms``) while :meth:`RecordAccumulator.has_room` is false.

Each record carries an opaque completion token (the IO front puts its future
there). Nothing here reads a clock: ``now_ms`` is passed in.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from strom.common.types import TopicPartition
from strom.protocol.records import build_batch

T = TypeVar("T")

RECORD_OVERHEAD = 22  # varints and attributes of one record, roughly
BATCH_OVERHEAD = 61
RecordTuple = tuple[bytes | None, bytes | None, Sequence[tuple[str, bytes | None]], int]


def estimate_size(
    key: bytes | None, value: bytes | None, headers: Sequence[tuple[str, bytes | None]]
) -> int:
    """An upper estimate of one record's encoded size (uncompressed)."""
    size = RECORD_OVERHEAD + len(key or b"") + len(value or b"")
    for hk, hv in headers:
        size += len(hk) + len(hv or b"") + 4
    return size


@dataclass(slots=True, eq=False)
class ProducerBatch(Generic[T]):
    """Records queued for one partition, sent as one v2 RecordBatch (Kafka's ProducerBatch)."""

    tp: TopicPartition
    created_ms: int
    records: list[RecordTuple] = field(default_factory=list)
    tokens: list[T] = field(default_factory=list)
    size: int = BATCH_OVERHEAD
    attempts: int = 0
    retry_at_ms: int = 0
    producer_id: int = -1
    producer_epoch: int = -1
    base_sequence: int = -1
    is_transactional: bool = False
    drained: bool = False
    _encoded: bytes | None = None

    @property
    def record_count(self) -> int:
        """Number of records in the batch."""
        return len(self.records)

    @property
    def is_retry(self) -> bool:
        """True once the batch was sent (``attempts`` > 0): re-queued, it waits for its backoff."""
        return self.attempts > 0

    def set_producer_state(
        self, producer_id: int, producer_epoch: int, base_sequence: int, transactional: bool
    ) -> None:
        """Stamp idempotence fields; the encoded bytes are rebuilt on the next encode."""
        self.producer_id = producer_id
        self.producer_epoch = producer_epoch
        self.base_sequence = base_sequence
        self.is_transactional = transactional
        self._encoded = None

    def encode(self, compression: int) -> bytes:
        """The v2 RecordBatch; cached, so a retry resends the very same bytes."""
        if self._encoded is None:
            self._encoded = build_batch(
                self.records,
                compression=compression,
                producer_id=self.producer_id,
                producer_epoch=self.producer_epoch,
                base_sequence=self.base_sequence,
                is_transactional=self.is_transactional,
            )
        return self._encoded


class RecordAccumulator(Generic[T]):
    """Pending batches per partition; pure, driven by ``now_ms``."""

    def __init__(
        self,
        *,
        batch_size: int = 16_384,
        linger_ms: int = 5,
        buffer_memory: int = 33_554_432,
        retry_backoff_ms: int = 100,
    ) -> None:
        self.batch_size = batch_size
        self.linger_ms = linger_ms
        self.buffer_memory = buffer_memory
        self.retry_backoff_ms = retry_backoff_ms
        self.used_bytes = 0
        self.flushing = False
        self.closing = False
        self.exhausted = False  # someone waits for memory: send everything now
        self._queues: dict[TopicPartition, deque[ProducerBatch[T]]] = {}
        self._records = 0

    def __len__(self) -> int:
        """Records queued (not yet drained)."""
        return self._records

    # -- appending -----------------------------------------------------------

    def has_room(self, size: int) -> bool:
        """True when ``size`` more bytes fit in buffer.memory (always when none is held)."""
        return self.used_bytes + size <= self.buffer_memory or self.used_bytes == 0

    def append(
        self,
        tp: TopicPartition,
        key: bytes | None,
        value: bytes | None,
        headers: Sequence[tuple[str, bytes | None]],
        timestamp: int,
        token: T,
        now_ms: int,
        size: int = -1,
    ) -> bool:
        """Queue a record (its memory is taken); True when a batch became sendable.

        ``size`` is the record's :func:`estimate_size` when the caller has it."""
        if size < 0:
            size = estimate_size(key, value, headers)
        queue = self._queues.get(tp)
        if queue is None:
            queue = self._queues[tp] = deque()
        batch = queue[-1] if queue else None
        if (
            batch is None
            or batch.drained
            or (batch.size + size > self.batch_size and batch.records)
        ):
            batch = ProducerBatch(tp, now_ms)
            queue.append(batch)
        batch.records.append((key, value, headers, timestamp))
        batch.tokens.append(token)
        batch.size += size
        self.used_bytes += size
        self._records += 1
        return len(queue) > 1 or batch.size >= self.batch_size

    def queued_bytes(self, topic: str, partition: int) -> int:
        """Estimated bytes queued for one partition (the sticky partitioner's load figure)."""
        queue = self._queues.get(TopicPartition(topic, partition))
        return sum(b.size for b in queue) if queue else 0

    # -- readiness -----------------------------------------------------------

    def _is_ready(self, queue: deque[ProducerBatch[T]], now_ms: int) -> bool:
        first = queue[0]
        if first.is_retry:
            return now_ms >= first.retry_at_ms
        return (
            len(queue) > 1
            or first.size >= self.batch_size
            or now_ms - first.created_ms >= self.linger_ms
            or self.flushing
            or self.closing
            or self.exhausted
        )

    def ready(self, now_ms: int) -> list[TopicPartition]:
        """Partitions whose first batch may be drained now (see the module docstring)."""
        return [tp for tp, q in self._queues.items() if q and self._is_ready(q, now_ms)]

    def next_ready_ms(self) -> int | None:
        """When the earliest waiting batch becomes ready, or None if nothing waits."""
        best: int | None = None
        for queue in self._queues.values():
            if not queue:
                continue
            first = queue[0]
            if first.is_retry:
                at = first.retry_at_ms
            elif len(queue) > 1 or first.size >= self.batch_size:
                at = 0
            else:
                at = first.created_ms + self.linger_ms
            best = at if best is None else min(best, at)
        return best

    # -- draining ------------------------------------------------------------

    def drain(
        self,
        tps: Iterable[TopicPartition] | None = None,
        *,
        max_request_size: int | None = None,
        can_send: Callable[[ProducerBatch[T]], bool] | None = None,
    ) -> list[ProducerBatch[T]]:
        """Remove and return the first batch of each of ``tps`` (None: every partition).

        Stops adding batches once ``max_request_size`` would be passed (the first
        batch is always taken); batches ``can_send`` rejects stay queued.
        """
        keys = list(self._queues) if tps is None else list(tps)
        out: list[ProducerBatch[T]] = []
        total = 0
        for tp in keys:
            queue = self._queues.get(tp)
            if not queue:
                continue
            batch = queue[0]
            if can_send is not None and not can_send(batch):
                continue
            if max_request_size is not None and out and total + batch.size > max_request_size:
                break
            queue.popleft()
            if not queue:
                del self._queues[tp]
            batch.drained = True
            total += batch.size
            self._records -= batch.record_count
            out.append(batch)
        return out

    def drain_all(self) -> list[ProducerBatch[T]]:
        """Every queued batch (to abort them); their memory is released."""
        out = [b for q in self._queues.values() for b in q]
        self._queues.clear()
        self._records = 0
        for batch in out:
            self.release(batch)
        return out

    def drain_where(self, pred: Callable[[ProducerBatch[T]], bool]) -> list[ProducerBatch[T]]:
        """Remove (and release) every queued batch ``pred`` accepts."""
        out: list[ProducerBatch[T]] = []
        for tp in list(self._queues):
            queue = self._queues[tp]
            keep = deque(b for b in queue if not pred(b))
            for batch in queue:
                if pred(batch):
                    out.append(batch)
                    self._records -= batch.record_count
                    self.release(batch)
            if keep:
                self._queues[tp] = keep
            else:
                del self._queues[tp]
        return out

    def reenqueue(self, batch: ProducerBatch[T], now_ms: int) -> None:
        """Put a drained batch back for a retry, in sequence order, after the backoff."""
        batch.retry_at_ms = now_ms + self.retry_backoff_ms
        queue = self._queues.get(batch.tp)
        if queue is None:
            queue = self._queues[batch.tp] = deque()
        index = 0
        if batch.base_sequence >= 0:
            while (
                index < len(queue)
                and queue[index].base_sequence >= 0
                and queue[index].base_sequence < batch.base_sequence
            ):
                index += 1
        queue.insert(index, batch)
        self._records += batch.record_count

    def split(self, batch: ProducerBatch[T]) -> list[ProducerBatch[T]]:
        """Halve a drained batch the broker refused as too large (MESSAGE_TOO_LARGE).

        The halves keep the batch's creation time, attempts and producer id and
        epoch; with a base sequence, the first half keeps it and the second
        continues after it, so later batches' sequences stay valid. The caller
        puts the halves back with :meth:`reenqueue`; memory passes to them.
        """
        if batch.record_count < 2:
            raise ValueError("a batch of one record cannot be split")
        half = batch.record_count // 2
        out: list[ProducerBatch[T]] = []
        sequence = batch.base_sequence
        for records, tokens in (
            (batch.records[:half], batch.tokens[:half]),
            (batch.records[half:], batch.tokens[half:]),
        ):
            piece = ProducerBatch(batch.tp, batch.created_ms, records, tokens)
            piece.size += sum(estimate_size(k, v, h) for k, v, h, _ in records)
            piece.attempts = batch.attempts
            piece.drained = True  # closed: new records go to a batch of their own
            if sequence >= 0:
                piece.set_producer_state(
                    batch.producer_id, batch.producer_epoch, sequence, batch.is_transactional
                )
                sequence = (sequence + len(records)) & 0x7FFFFFFF
            out.append(piece)
        return out

    def release(self, batch: ProducerBatch[T]) -> None:
        """The batch is done (acknowledged or failed): give its memory back."""
        self.used_bytes = max(0, self.used_bytes - (batch.size - BATCH_OVERHEAD))

    def expired(self, now_ms: int, delivery_timeout_ms: int) -> list[ProducerBatch[T]]:
        """Remove and return queued batches older than ``delivery.timeout.ms``."""
        out: list[ProducerBatch[T]] = []
        for tp in list(self._queues):
            queue = self._queues[tp]
            while queue and now_ms - queue[0].created_ms >= delivery_timeout_ms:
                batch = queue.popleft()
                self._records -= batch.record_count
                self.release(batch)
                out.append(batch)
            if not queue:
                del self._queues[tp]
        return out
