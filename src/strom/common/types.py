"""Plain values used across layers."""

from __future__ import annotations

import os
from time import time_ns
from typing import NamedTuple, Protocol


class TopicPartition(NamedTuple):
    """A topic and a partition (a NamedTuple: hashing and comparing run in C, and it is
    a dict key on every hot path)."""

    topic: str
    partition: int

    def __str__(self) -> str:
        return f"{self.topic}-{self.partition}"


class Clock(Protocol):
    """Milliseconds since the epoch; injected so logic is testable with a fake clock."""

    def now_ms(self) -> int: ...


class SystemClock:
    def now_ms(self) -> int:
        return time_ns() // 1_000_000


class FakeClock:
    """A clock that moves only when told to (unit tests)."""

    def __init__(self, start_ms: int = 1_700_000_000_000) -> None:
        self._now = start_ms

    def now_ms(self) -> int:
        return self._now

    def advance(self, ms: int) -> None:
        self._now += ms


def random_uuid() -> bytes:
    """A random (version 4) UUID's 16 bytes, as ``uuid.uuid4().bytes``: Kafka's topic and
    cluster ids. Made here because the uuid module imports platform, a few ms of a
    broker's start."""
    b = bytearray(os.urandom(16))
    b[6] = (b[6] & 0x0F) | 0x40  # version 4
    b[8] = (b[8] & 0x3F) | 0x80  # the RFC 4122 variant
    return bytes(b)
