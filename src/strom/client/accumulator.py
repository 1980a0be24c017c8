"""Per-partition batching of records to produce (sans-IO).

Records wait per partition until the batch reaches ``batch.size`` bytes or
has waited ``linger.ms``; then :meth:`RecordAccumulator.drain` hands out whole
batches, one RecordBatch per partition per Produce request. Each record
carries an opaque completion token (the IO front puts its future there).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from strom.common.types import TopicPartition
from strom.protocol.records import build_batch

T = TypeVar("T")

RECORD_OVERHEAD = 22  # varints and attributes of one record, roughly
BATCH_OVERHEAD = 61


def estimate_size(
    key: bytes | None, value: bytes | None, headers: Sequence[tuple[str, bytes | None]]
) -> int:
    size = RECORD_OVERHEAD + len(key or b"") + len(value or b"")
    for hk, hv in headers:
        size += len(hk) + len(hv or b"") + 4
    return size


@dataclass(slots=True)
class ProducerBatch(Generic[T]):
    tp: TopicPartition
    created_ms: int
    records: list[tuple[bytes | None, bytes | None, list[tuple[str, bytes | None]], int]] = field(
        default_factory=list
    )
    tokens: list[T] = field(default_factory=list)
    size: int = BATCH_OVERHEAD
    attempts: int = 0

    def encode(self, compression: int) -> bytes:
        return build_batch(self.records, compression=compression)


class RecordAccumulator(Generic[T]):
    """Pending records per partition; pure, driven by ``now_ms``."""

    def __init__(self, *, batch_size: int = 16_384, linger_ms: int = 5) -> None:
        self.batch_size = batch_size
        self.linger_ms = linger_ms
        self._batches: dict[TopicPartition, ProducerBatch[T]] = {}

    def __len__(self) -> int:
        return sum(len(b.records) for b in self._batches.values())

    def append(
        self,
        tp: TopicPartition,
        key: bytes | None,
        value: bytes | None,
        headers: Sequence[tuple[str, bytes | None]],
        timestamp: int,
        token: T,
        now_ms: int,
    ) -> bool:
        """Add a record; True when its partition's batch is now full."""
        batch = self._batches.get(tp)
        size = estimate_size(key, value, headers)
        if batch is None:
            batch = self._batches[tp] = ProducerBatch(tp, now_ms)
        batch.records.append((key, value, list(headers), timestamp))
        batch.tokens.append(token)
        batch.size += size
        return batch.size >= self.batch_size

    def ready(self, now_ms: int) -> list[TopicPartition]:
        return [
            tp
            for tp, b in self._batches.items()
            if b.size >= self.batch_size or now_ms - b.created_ms >= self.linger_ms
        ]

    def next_ready_ms(self) -> int | None:
        """When the oldest waiting batch becomes ready by linger, or None if empty."""
        if not self._batches:
            return None
        return min(b.created_ms for b in self._batches.values()) + self.linger_ms

    def drain(self, tps: Sequence[TopicPartition] | None = None) -> list[ProducerBatch[T]]:
        """Remove and return the batches of ``tps`` (None: all)."""
        keys = list(self._batches) if tps is None else [tp for tp in tps if tp in self._batches]
        return [self._batches.pop(tp) for tp in keys]
