"""What a consumer reads and where it is (Kafka's SubscriptionState, sans-IO).

Three exclusive modes: topics, a pattern (both with a group) or manual
``assign``. Each assigned partition has a position (None until it is
initialised from the committed offset or ``auto.offset.reset``), a paused
flag, a pending reset (seek_to_beginning/end) and the last known high
watermark and last stable offset.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from strom.common.types import TopicPartition
from strom.protocol.errors import ErrorCode, KafkaError


class Mode(Enum):
    """How partitions are chosen: none yet, topics or a pattern (group), or assign()."""

    NONE = "none"
    TOPICS = "topics"
    PATTERN = "pattern"
    MANUAL = "manual"


EARLIEST = "earliest"
LATEST = "latest"


@dataclass(slots=True)
class PartitionState:
    """One assigned partition: position, leader epoch, paused flag, pending reset, and
    last known high watermark and last stable offset."""

    position: int | None = None
    leader_epoch: int = -1
    paused: bool = False
    reset: str | None = None  # "earliest" / "latest" when a reset is pending
    high_watermark: int = -1
    last_stable_offset: int = -1


class SubscriptionState:
    """The consumer's mode, topics or pattern, and assigned partitions' state."""

    def __init__(self, default_reset: str = LATEST) -> None:
        self.default_reset = default_reset
        self.mode = Mode.NONE
        self.topics: set[str] = set()
        self.pattern: re.Pattern[str] | None = None
        self.assignment: dict[TopicPartition, PartitionState] = {}

    def _set_mode(self, mode: Mode) -> None:
        if self.mode not in (Mode.NONE, mode):
            raise KafkaError(
                ErrorCode.INVALID_REQUEST,
                "subscribe() and assign() cannot be mixed; call unsubscribe() first",
            )
        self.mode = mode

    def subscribe(self, topics: Iterable[str]) -> None:
        """Subscribe to ``topics``; KafkaError INVALID_REQUEST in another mode."""
        self._set_mode(Mode.TOPICS)
        self.topics = set(topics)

    def subscribe_pattern(self, pattern: str | re.Pattern[str]) -> None:
        """Subscribe to the topics ``pattern`` matches in full (see :meth:`match`);
        KafkaError INVALID_REQUEST in another mode."""
        self._set_mode(Mode.PATTERN)
        self.pattern = re.compile(pattern) if isinstance(pattern, str) else pattern

    def match(self, all_topics: Iterable[str]) -> bool:
        """For a pattern: refresh the subscribed topics; True when they changed."""
        if self.pattern is None:
            return False
        matched = {t for t in all_topics if self.pattern.fullmatch(t)}
        changed = matched != self.topics
        self.topics = matched
        return changed

    def assign_manual(self, tps: Iterable[TopicPartition]) -> None:
        """Assign exactly ``tps`` (Kafka's assign); KafkaError INVALID_REQUEST in another mode."""
        self._set_mode(Mode.MANUAL)
        self.set_assignment(tps)
        self.topics = {tp.topic for tp in self.assignment}

    def unsubscribe(self) -> None:
        """Drop the mode, topics, pattern and assignment."""
        self.mode = Mode.NONE
        self.topics = set()
        self.pattern = None
        self.assignment = {}

    @property
    def group_managed(self) -> bool:
        """True when subscribed to topics or a pattern (the group assigns partitions)."""
        return self.mode in (Mode.TOPICS, Mode.PATTERN)

    def set_assignment(self, tps: Iterable[TopicPartition]) -> None:
        """Keep the state of partitions that stay; new ones start without a position."""
        new = list(tps)
        self.assignment = {tp: self.assignment.get(tp) or PartitionState() for tp in new}

    def add(self, tps: Iterable[TopicPartition]) -> None:
        """Add partitions without a position; those already assigned keep their state."""
        for tp in tps:
            self.assignment.setdefault(tp, PartitionState())

    def remove(self, tps: Iterable[TopicPartition]) -> None:
        """Drop partitions and their state (absent ones are ignored)."""
        for tp in tps:
            self.assignment.pop(tp, None)

    def state(self, tp: TopicPartition) -> PartitionState:
        """The state of ``tp``; KafkaError INVALID_REQUEST if it is not assigned."""
        st = self.assignment.get(tp)
        if st is None:
            raise KafkaError(
                ErrorCode.INVALID_REQUEST, f"partition {tp} is not assigned to this consumer"
            )
        return st

    def seek(self, tp: TopicPartition, offset: int) -> None:
        """Make ``offset`` the position of ``tp`` and cancel its pending reset;
        KafkaError INVALID_REQUEST if it is not assigned."""
        st = self.state(tp)
        st.position = offset
        st.reset = None

    def request_reset(self, tps: Iterable[TopicPartition], strategy: str) -> None:
        """Clear the positions of ``tps`` until a reset to ``strategy`` (EARLIEST or
        LATEST) is applied; KafkaError INVALID_REQUEST for a partition not assigned."""
        for tp in tps:
            st = self.state(tp)
            st.reset = strategy
            st.position = None

    def needs_position(self) -> list[TopicPartition]:
        """Partitions with neither a position nor a pending reset."""
        return [tp for tp, st in self.assignment.items() if st.position is None and not st.reset]

    def pending_resets(self) -> dict[TopicPartition, str]:
        """Partition -> reset strategy, for partitions waiting for a reset."""
        return {tp: st.reset for tp, st in self.assignment.items() if st.reset}

    def fetchable(self) -> dict[TopicPartition, int]:
        """Partition -> position, for partitions with a position that are not paused."""
        return {
            tp: st.position
            for tp, st in self.assignment.items()
            if st.position is not None and not st.paused
        }

    def positions(self) -> dict[TopicPartition, int]:
        """Partition -> position, for every assigned partition with a position."""
        return {tp: st.position for tp, st in self.assignment.items() if st.position is not None}

    def pause(self, tps: Iterable[TopicPartition]) -> None:
        """Pause ``tps``; KafkaError INVALID_REQUEST for a partition not assigned."""
        for tp in tps:
            self.state(tp).paused = True

    def resume(self, tps: Iterable[TopicPartition]) -> None:
        """Resume ``tps``; KafkaError INVALID_REQUEST for a partition not assigned."""
        for tp in tps:
            self.state(tp).paused = False

    def paused(self) -> set[TopicPartition]:
        """Partitions paused with :meth:`pause` (they are not fetched)."""
        return {tp for tp, st in self.assignment.items() if st.paused}
