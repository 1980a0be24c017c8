"""strom.server.sendfile._empty_write_buffer: the transport's limits come back as they were."""

from __future__ import annotations

import asyncio
from typing import Any

from strom.server.sendfile import _empty_write_buffer


class _Transport:
    """asyncio's transport API: get_write_buffer_limits() answers (low, high), and
    high below low is refused, as uvloop refuses it."""

    def __init__(self) -> None:
        self.low, self.high = 16 * 1024, 64 * 1024
        self.size = 5000

    def get_write_buffer_size(self) -> int:
        return self.size

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self.low, self.high

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        high = 64 * 1024 if high is None else high
        low = high // 4 if low is None else low
        if not high >= low >= 0:
            raise ValueError(f"high ({high}) must be >= low ({low}) must be >= 0")
        self.high, self.low = high, low


class _Writer:
    def __init__(self) -> None:
        self.transport = _Transport()

    async def drain(self) -> None:
        self.transport.size = 0  # the peer read it all


def test_limits_are_restored_as_they_were() -> None:
    writer: Any = _Writer()
    asyncio.run(_empty_write_buffer(writer))
    assert writer.transport.get_write_buffer_limits() == (16 * 1024, 64 * 1024)
    assert writer.transport.size == 0
