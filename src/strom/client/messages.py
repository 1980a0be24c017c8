"""The values users hand to and get from the producer and consumer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from strom.common.types import TopicPartition
from strom.protocol.errors import ErrorCode, KafkaError

Header = tuple[str, bytes | None]


@dataclass(frozen=True, slots=True)
class ProducerRecord:
    """A record to send: ``topic`` and ``value`` are required (the value may be None)."""

    topic: str
    value: Any
    key: Any = None
    partition: int | None = None
    timestamp: int | None = None
    headers: Sequence[tuple[str, bytes | str | None]] | None = None


class RecordMetadata(NamedTuple):
    """Where an acknowledged record was written (offset -1 with acks=0)."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    serialized_key_size: int = -1
    serialized_value_size: int = -1

    @property
    def topic_partition(self) -> TopicPartition:
        """The record's TopicPartition."""
        return TopicPartition(self.topic, self.partition)


class ConsumerRecord(NamedTuple):
    """A record returned by ``poll``; key and value went through the deserializers.

    The first five fields are those of :class:`strom.protocol.records.Record`, so a
    fetch decodes each record straight into one of these.
    """

    offset: int
    timestamp: int
    key: Any
    value: Any
    headers: tuple[Header, ...]
    topic: str
    partition: int
    timestamp_type: int = 0  # 0 CreateTime, 1 LogAppendTime
    leader_epoch: int = -1

    @property
    def topic_partition(self) -> TopicPartition:
        """The record's TopicPartition."""
        return TopicPartition(self.topic, self.partition)


class RecordTooLargeError(KafkaError):
    """The serialized record exceeds max.request.size or buffer.memory (MESSAGE_TOO_LARGE)."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.MESSAGE_TOO_LARGE, message)


class BufferExhaustedError(KafkaError):
    """send() waited max.block.ms for buffer.memory to free up (a timeout, as in Kafka)."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.REQUEST_TIMED_OUT, message)


class ProducerFencedError(KafkaError):
    """Another producer with the same transactional.id took over (fatal)."""


class TransactionStateError(KafkaError):
    """A transactional method was called in the wrong state (e.g. commit before begin)."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.INVALID_TXN_STATE, message)


class CommitFailedError(KafkaError):
    """A synchronous commit failed because the group rebalanced (not retriable)."""


class RecordDeserializationError(KafkaError):
    """A key or value deserializer raised; the position stays at ``offset`` (seek past it)."""

    def __init__(self, tp: TopicPartition, offset: int, cause: BaseException) -> None:
        super().__init__(
            ErrorCode.UNKNOWN_SERVER_ERROR,
            f"cannot deserialize the record at offset {offset} of {tp}: {cause!r}",
        )
        self.topic_partition = tp
        self.offset = offset
