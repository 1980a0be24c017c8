"""Partition choice (sans-IO).

Keyed records go to ``toPositive(murmur2(key)) % num_partitions`` (Java's
``Utils.murmur2`` with seed 0x9747b28c, librdkafka's ``murmur2_random``), so a
key lands on the same partition as with the Java client and confluent-kafka.

Records without a key, by ``partitioner.class``:
  ``None`` / ``"round_robin_unkeyed"`` (default, as the founding notes say):
      round-robin per topic (:class:`DefaultPartitioner`).
  ``"sticky"`` (Kafka 3.3+'s built-in partitioner): stick to one partition until
      ``batch.size`` bytes went there, then switch; with
      ``partitioner.adaptive.partitioning.enable`` the next partition is the one
      with the fewest queued bytes (:class:`StickyPartitioner`).
  ``"org.apache.kafka.clients.producer.RoundRobinPartitioner"`` / ``"round_robin"``:
      Kafka's RoundRobinPartitioner, which ignores keys.
  ``"org.apache.kafka.clients.producer.UniformStickyPartitioner"``: sticky, keys ignored.
  a callable ``f(topic, key_bytes, num_partitions) -> int``.
``partitioner.ignore.keys=true`` treats every record as unkeyed.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any, Protocol

_M = 0x5BD1E995
_SEED = 0x9747B28C
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Java's ``Utils.murmur2``: a signed 32-bit hash of ``data``."""
    length = len(data)
    h = (_SEED ^ length) & _MASK
    end = length & ~3
    for i in range(0, end, 4):
        k = data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24)
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    rest = length & 3
    if rest == 3:
        h ^= data[end + 2] << 16
    if rest >= 2:
        h ^= data[end + 1] << 8
    if rest >= 1:
        h ^= data[end]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def to_positive(n: int) -> int:
    """Java's ``Utils.toPositive``: clear the sign bit (not ``abs``)."""
    return n & 0x7FFFFFFF


def partition_for_key(key: bytes, num_partitions: int) -> int:
    """Kafka's partition for a key: ``toPositive(murmur2(key)) % num_partitions``.

    ValueError when ``num_partitions`` is not positive.
    """
    if num_partitions <= 0:
        raise ValueError("num_partitions must be positive")
    return to_positive(murmur2(key)) % num_partitions


class DefaultPartitioner:
    """murmur2 for keyed records, round-robin per topic for the rest."""

    __slots__ = ("_counters",)

    def __init__(self) -> None:
        self._counters: dict[str, int] = {}

    def partition(self, topic: str, key: bytes | None, num_partitions: int) -> int:
        """murmur2 of ``key``, or the topic's next partition round-robin when it is None."""
        if key is not None:
            return partition_for_key(key, num_partitions)
        if num_partitions <= 0:
            raise ValueError("num_partitions must be positive")
        n = self._counters.get(topic, 0)
        self._counters[topic] = (n + 1) & 0x7FFFFFFF
        return n % num_partitions


class Partitioner(Protocol):
    """What the producer asks for a record's partition, and tells of each append."""

    def partition(self, topic: str, key: bytes | None, num_partitions: int) -> int:
        """The partition of a record with ``key`` (None: unkeyed) in ``topic``."""

    def on_append(self, topic: str, partition: int, size: int, num_partitions: int) -> None:
        """Called after a record of ``size`` bytes was queued for ``partition``."""


class _Hooks:
    def on_append(self, topic: str, partition: int, size: int, num_partitions: int) -> None:
        """Nothing to track."""
        return None


class RoundRobinPartitioner(_Hooks):
    """Kafka's RoundRobinPartitioner: every record round-robin, keys ignored."""

    def __init__(self) -> None:
        self._inner = DefaultPartitioner()

    def partition(self, topic: str, key: bytes | None, num_partitions: int) -> int:
        """The topic's next partition, round-robin, whatever the key."""
        return self._inner.partition(topic, None, num_partitions)


class StickyPartitioner:
    """Kafka 3.3's built-in partitioner (KIP-794) for unkeyed records.

    ``queued`` reports the bytes waiting per partition; with ``adaptive`` the next
    sticky partition is the least loaded one (ties broken at random).
    """

    def __init__(
        self,
        batch_size: int,
        *,
        adaptive: bool = True,
        ignore_keys: bool = False,
        queued: Callable[[str, int], int] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.batch_size = max(1, batch_size)
        self.adaptive = adaptive
        self.ignore_keys = ignore_keys
        self._queued = queued
        self._rng = rng or random.Random()
        self._current: dict[str, tuple[int, int]] = {}  # topic -> (partition, bytes so far)

    def partition(self, topic: str, key: bytes | None, num_partitions: int) -> int:
        """murmur2 of ``key`` (unless keys are ignored); else the topic's sticky partition."""
        if key is not None and not self.ignore_keys:
            return partition_for_key(key, num_partitions)
        current = self._current.get(topic)
        if current is None or current[0] >= num_partitions:
            current = (self._next(topic, num_partitions, -1), 0)
            self._current[topic] = current
        return current[0]

    def on_append(self, topic: str, partition: int, size: int, num_partitions: int) -> None:
        """Count ``size`` bytes toward the sticky partition; from batch.size on, switch."""
        current = self._current.get(topic)
        if current is None or current[0] != partition:
            return
        produced = current[1] + size
        if produced >= self.batch_size:
            self._current[topic] = (self._next(topic, num_partitions, partition), 0)
        else:
            self._current[topic] = (partition, produced)

    def _next(self, topic: str, num_partitions: int, previous: int) -> int:
        if num_partitions <= 1:
            return 0
        choices = [p for p in range(num_partitions) if p != previous]
        if self.adaptive and self._queued is not None:
            loads = {p: self._queued(topic, p) for p in choices}
            least = min(loads.values())
            choices = [p for p, load in loads.items() if load == least]
        return self._rng.choice(choices)


class _CallablePartitioner(_Hooks):
    def __init__(self, func: Callable[[str, bytes | None, int], int]) -> None:
        self._func = func

    def partition(self, topic: str, key: bytes | None, num_partitions: int) -> int:
        """The user function's choice, as an int."""
        return int(self._func(topic, key, num_partitions))


class _IgnoreKeys(_Hooks):
    def __init__(self, inner: DefaultPartitioner) -> None:
        self._inner = inner

    def partition(self, topic: str, key: bytes | None, num_partitions: int) -> int:
        """The topic's next partition, round-robin, whatever the key."""
        return self._inner.partition(topic, None, num_partitions)


_KAFKA = "org.apache.kafka.clients.producer."


def make_partitioner(
    spec: Any,
    *,
    batch_size: int = 16_384,
    adaptive: bool = True,
    ignore_keys: bool = False,
    queued: Callable[[str, int], int] | None = None,
) -> Partitioner:
    """The partitioner for a ``partitioner.class`` value (see the module docstring)."""
    if callable(spec) and not isinstance(spec, str):
        return _CallablePartitioner(spec)
    name = "" if spec is None else str(spec).strip()
    if name in ("", "default", "round_robin_unkeyed", "murmur2_random", "murmur2"):
        default = DefaultPartitioner()
        return _IgnoreKeys(default) if ignore_keys else _DefaultWithHooks(default)
    if name in ("sticky", "uniform_sticky", _KAFKA + "internals.DefaultPartitioner"):
        return StickyPartitioner(
            batch_size, adaptive=adaptive, ignore_keys=ignore_keys, queued=queued
        )
    if name == _KAFKA + "UniformStickyPartitioner":
        return StickyPartitioner(batch_size, adaptive=False, ignore_keys=True, queued=queued)
    if name in ("round_robin", _KAFKA + "RoundRobinPartitioner"):
        return RoundRobinPartitioner()
    from strom.client.config import ConfigError

    raise ConfigError(
        f"partitioner.class: unknown partitioner {spec!r} (default, sticky, round_robin, "
        "a Kafka partitioner class name or a callable)"
    )


class _DefaultWithHooks(_Hooks):
    def __init__(self, inner: DefaultPartitioner) -> None:
        self._inner = inner

    def partition(self, topic: str, key: bytes | None, num_partitions: int) -> int:
        """The :class:`DefaultPartitioner`'s choice."""
        return self._inner.partition(topic, key, num_partitions)
