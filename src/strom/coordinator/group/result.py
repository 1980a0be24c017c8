"""What a coordinator call returns, and its timers.

A call returns a :class:`CoordinatorResult`: responses to complete now (keyed
by the caller's request handles), records to append to the group's
``__consumer_offsets`` partition, and continuations. The runtime completes the
responses, appends the records (one batch, acks=all), then calls every
continuation with the append's error code (NONE on success) and handles the
results they return the same way. Responses that may only be sent once the
records are durable (OffsetCommit, the leader's SyncGroup) live in a
continuation.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from strom.coordinator.group.records import CoordinatorRecord
from strom.protocol.errors import ErrorCode

Continuation = Callable[[ErrorCode], "CoordinatorResult"]


@dataclass(slots=True)
class CoordinatorResult:
    responses: list[tuple[int, Any]] = field(default_factory=list)
    records: list[CoordinatorRecord] = field(default_factory=list)
    then: list[Continuation] = field(default_factory=list)

    def respond(self, handle: int | None, response: Any) -> None:
        if handle is not None:
            self.responses.append((handle, response))

    def extend(self, other: CoordinatorResult) -> None:
        self.responses += other.responses
        self.records += other.records
        self.then += other.then


TimerKey = tuple[str, str, str]  # (kind, group id, member id or generation)


class Timers:
    """Deadlines by key; re-scheduling a key replaces its deadline (lazy heap)."""

    def __init__(self) -> None:
        self._deadlines: dict[TimerKey, int] = {}
        self._heap: list[tuple[int, TimerKey]] = []

    def schedule(self, key: TimerKey, deadline_ms: int) -> None:
        self._deadlines[key] = deadline_ms
        heapq.heappush(self._heap, (deadline_ms, key))

    def cancel(self, key: TimerKey) -> None:
        self._deadlines.pop(key, None)

    def deadline(self, key: TimerKey) -> int | None:
        return self._deadlines.get(key)

    def pop_expired(self, now_ms: int) -> list[TimerKey]:
        expired: list[TimerKey] = []
        while self._heap and self._heap[0][0] <= now_ms:
            deadline, key = heapq.heappop(self._heap)
            if self._deadlines.get(key) == deadline:
                del self._deadlines[key]
                expired.append(key)
        return expired

    def next_deadline_ms(self) -> int | None:
        while self._heap and self._deadlines.get(self._heap[0][1]) != self._heap[0][0]:
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None

    def __len__(self) -> int:
        return len(self._deadlines)


def map_store_error(code: ErrorCode, *, offsets: bool) -> ErrorCode:
    """The error a client sees when appending coordinator records failed (as Kafka maps it)."""
    if code in (
        ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
        ErrorCode.NOT_ENOUGH_REPLICAS,
        ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
        ErrorCode.REQUEST_TIMED_OUT,
    ):
        return ErrorCode.COORDINATOR_NOT_AVAILABLE
    if code in (ErrorCode.NOT_LEADER_OR_FOLLOWER, ErrorCode.KAFKA_STORAGE_ERROR):
        return ErrorCode.NOT_COORDINATOR
    if code in (
        ErrorCode.MESSAGE_TOO_LARGE,
        ErrorCode.RECORD_LIST_TOO_LARGE,
        ErrorCode.INVALID_FETCH_SIZE,
    ):
        return ErrorCode.INVALID_COMMIT_OFFSET_SIZE if offsets else ErrorCode.UNKNOWN_SERVER_ERROR
    return code
