"""Kafka's placement of a group or transactional id on its coordinator partition."""

from __future__ import annotations


def java_string_hash(s: str) -> int:
    """Java's String.hashCode (over UTF-16 code units, int32 arithmetic)."""
    h = 0
    data = s.encode("utf-16-be")
    for i in range(0, len(data), 2):
        h = (31 * h + ((data[i] << 8) | data[i + 1])) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def coordinator_partition(key: str, num_partitions: int) -> int:
    """Kafka's Utils.abs(key.hashCode) % partitions, as both the group coordinator
    (__consumer_offsets) and the transaction coordinator (__transaction_state) place
    their keys; Utils.abs(Integer.MIN_VALUE) is 0."""
    h = java_string_hash(key)
    return (0 if h == -(1 << 31) else abs(h)) % num_partitions
