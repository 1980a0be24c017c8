"""Per-topic log configuration with Kafka's topic config names and defaults."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Final

from strom.common.values import Value
from strom.protocol.errors import ErrorCode, KafkaError

LONG_MAX: Final = 2**63 - 1
CREATE_TIME: Final = "CreateTime"
LOG_APPEND_TIME: Final = "LogAppendTime"


def _int(value: str) -> int:
    return int(value.strip())


def _timestamp_type(value: str) -> str:
    if value not in (CREATE_TIME, LOG_APPEND_TIME):
        raise ValueError(value)
    return value


def _bool(value: str) -> bool:
    text = value.strip().lower()
    if text not in ("true", "false"):
        raise ValueError(value)
    return text == "true"


def _ratio(value: str) -> float:
    """A double in [0, 1] (Kafka's ``between(0, 1)``)."""
    ratio = float(value.strip())
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(value)
    return ratio


def _cleanup_policy(value: str) -> str:
    """A list of "delete" and "compact"; empty is valid (Kafka 4.0's ValidList.in): the
    log is then neither deleted by retention nor compacted, only cut at its start offset."""
    policies = [policy.strip() for policy in value.split(",") if policy.strip()]
    if any(policy not in ("delete", "compact") for policy in policies):
        raise ValueError(value)
    return ",".join(policies)


# Kafka topic config name -> (LogConfig field, parser, minimum value or None)
_TOPIC_CONFIGS: Final[dict[str, tuple[str, Callable[[str], Any], int | None]]] = {
    "segment.bytes": ("segment_bytes", _int, 14),
    "segment.ms": ("segment_ms", _int, 1),
    "retention.ms": ("retention_ms", _int, -1),
    "retention.bytes": ("retention_bytes", _int, None),
    "max.message.bytes": ("max_message_bytes", _int, 0),
    "index.interval.bytes": ("index_interval_bytes", _int, 0),
    "segment.index.bytes": ("segment_index_bytes", _int, 4),
    "flush.messages": ("flush_interval_messages", _int, 1),
    "flush.ms": ("flush_interval_ms", _int, 0),
    "message.timestamp.type": ("message_timestamp_type", _timestamp_type, None),
    "message.timestamp.difference.max.ms": ("message_timestamp_difference_max_ms", _int, 0),
    "cleanup.policy": ("cleanup_policy", _cleanup_policy, None),
    "delete.retention.ms": ("delete_retention_ms", _int, 0),
    "min.compaction.lag.ms": ("min_compaction_lag_ms", _int, 0),
    "max.compaction.lag.ms": ("max_compaction_lag_ms", _int, 1),
    "min.cleanable.dirty.ratio": ("min_cleanable_dirty_ratio", _ratio, None),
    "file.delete.delay.ms": ("file_delete_delay_ms", _int, 0),
    "message.timestamp.before.max.ms": ("message_timestamp_before_max_ms", _int, 0),
    "message.timestamp.after.max.ms": ("message_timestamp_after_max_ms", _int, 0),
    "preallocate": ("preallocate", _bool, None),
}


class LogConfig(Value):
    """Kafka topic configs that the log obeys (defaults as Kafka's)."""

    __slots__ = (
        "cleanup_policy",
        "compact_enabled",
        "delete_enabled",
        "delete_retention_ms",
        "file_delete_delay_ms",
        "flush_interval_messages",
        "flush_interval_ms",
        "index_interval_bytes",
        "log_append_time",
        "max_compaction_lag_ms",
        "max_message_bytes",
        "max_segment_ms",
        "message_timestamp_after_max_ms",
        "message_timestamp_before_max_ms",
        "message_timestamp_difference_max_ms",
        "message_timestamp_type",
        "min_cleanable_dirty_ratio",
        "min_compaction_lag_ms",
        "preallocate",
        "retention_bytes",
        "retention_ms",
        "segment_bytes",
        "segment_index_bytes",
        "segment_ms",
        "timestamp_after_max_ms",
        "timestamp_before_max_ms",
    )
    FIELDS: ClassVar[tuple[str, ...]] = (
        "segment_bytes",
        "segment_ms",
        "retention_ms",
        "retention_bytes",
        "max_message_bytes",
        "index_interval_bytes",
        "segment_index_bytes",
        "flush_interval_messages",
        "flush_interval_ms",
        "message_timestamp_type",
        "message_timestamp_difference_max_ms",
        "cleanup_policy",
        "delete_retention_ms",
        "min_compaction_lag_ms",
        "max_compaction_lag_ms",
        "min_cleanable_dirty_ratio",
        "file_delete_delay_ms",
        "message_timestamp_before_max_ms",
        "message_timestamp_after_max_ms",
        "preallocate",
    )
    segment_bytes: Final[int]
    segment_ms: Final[int]
    retention_ms: Final[int]  # -1: keep forever
    retention_bytes: Final[int]  # -1: no size limit
    max_message_bytes: Final[int]
    index_interval_bytes: Final[int]
    segment_index_bytes: Final[int]
    flush_interval_messages: Final[int]
    flush_interval_ms: Final[int]
    message_timestamp_type: Final[str]
    message_timestamp_difference_max_ms: Final[int]
    cleanup_policy: Final[str]
    delete_retention_ms: Final[int]  # how long compaction keeps tombstones
    min_compaction_lag_ms: Final[int]  # records younger than this are not compacted
    # a dirty record older than this gets its log cleaned whatever the dirty ratio
    max_compaction_lag_ms: Final[int]
    min_cleanable_dirty_ratio: Final[float]  # the cleaner skips logs less dirty than this
    file_delete_delay_ms: Final[int]  # how long a deleted segment's files stay (.deleted)
    message_timestamp_before_max_ms: Final[int]  # LONG_MAX: difference.max.ms applies
    message_timestamp_after_max_ms: Final[int]  # LONG_MAX: difference.max.ms applies
    preallocate: Final[bool]  # new segment files are sized to segment.bytes up front
    # Derived from the fields once (every produce reads them), not by properties:
    delete_enabled: Final[bool]
    compact_enabled: Final[bool]
    # segment.ms, or max.compaction.lag.ms if smaller on a compacted topic: the active
    # segment rolls in time for the cleaner (Kafka's LogConfig.maxSegmentMs)
    max_segment_ms: Final[int]
    # message.timestamp.before.max.ms (after), else message.timestamp.difference.max.ms
    # while the former keeps its default (Kafka 3.6+, KIP-937)
    timestamp_before_max_ms: Final[int]
    timestamp_after_max_ms: Final[int]
    log_append_time: Final[bool]  # message.timestamp.type is LogAppendTime

    def __init__(
        self,
        segment_bytes: int = 1024 * 1024 * 1024,
        segment_ms: int = 7 * 24 * 60 * 60 * 1000,
        retention_ms: int = 7 * 24 * 60 * 60 * 1000,
        retention_bytes: int = -1,
        max_message_bytes: int = 1048588,
        index_interval_bytes: int = 4096,
        segment_index_bytes: int = 10 * 1024 * 1024,
        flush_interval_messages: int = LONG_MAX,
        flush_interval_ms: int = LONG_MAX,
        message_timestamp_type: str = CREATE_TIME,
        message_timestamp_difference_max_ms: int = LONG_MAX,
        cleanup_policy: str = "delete",
        delete_retention_ms: int = 24 * 60 * 60 * 1000,
        min_compaction_lag_ms: int = 0,
        max_compaction_lag_ms: int = LONG_MAX,
        min_cleanable_dirty_ratio: float = 0.5,
        file_delete_delay_ms: int = 60_000,
        message_timestamp_before_max_ms: int = LONG_MAX,
        message_timestamp_after_max_ms: int = LONG_MAX,
        preallocate: bool = False,
    ) -> None:
        self.segment_bytes = segment_bytes
        self.segment_ms = segment_ms
        self.retention_ms = retention_ms
        self.retention_bytes = retention_bytes
        self.max_message_bytes = max_message_bytes
        self.index_interval_bytes = index_interval_bytes
        self.segment_index_bytes = segment_index_bytes
        self.flush_interval_messages = flush_interval_messages
        self.flush_interval_ms = flush_interval_ms
        self.message_timestamp_type = message_timestamp_type
        self.message_timestamp_difference_max_ms = message_timestamp_difference_max_ms
        self.cleanup_policy = cleanup_policy
        self.delete_retention_ms = delete_retention_ms
        self.min_compaction_lag_ms = min_compaction_lag_ms
        self.max_compaction_lag_ms = max_compaction_lag_ms
        self.min_cleanable_dirty_ratio = min_cleanable_dirty_ratio
        self.file_delete_delay_ms = file_delete_delay_ms
        self.message_timestamp_before_max_ms = message_timestamp_before_max_ms
        self.message_timestamp_after_max_ms = message_timestamp_after_max_ms
        self.preallocate = preallocate
        self.delete_enabled = "delete" in cleanup_policy  # only "delete" and "compact" parse
        self.compact_enabled = "compact" in cleanup_policy
        self.max_segment_ms = (
            min(max_compaction_lag_ms, segment_ms)
            if self.compact_enabled and max_compaction_lag_ms > 0
            else segment_ms
        )
        difference = message_timestamp_difference_max_ms
        before, after = message_timestamp_before_max_ms, message_timestamp_after_max_ms
        self.timestamp_before_max_ms = before if before != LONG_MAX else difference
        self.timestamp_after_max_ms = after if after != LONG_MAX else difference
        self.log_append_time = message_timestamp_type == LOG_APPEND_TIME

    @staticmethod
    def known_names() -> frozenset[str]:
        """The Kafka topic config names that LogConfig understands."""
        return frozenset(_TOPIC_CONFIGS)

    @classmethod
    def from_topic_config(
        cls, config: Mapping[str, str], defaults: LogConfig | None = None
    ) -> LogConfig:
        """Apply Kafka-named overrides (``segment.bytes``, ...) on top of ``defaults``.

        Names that are not log configs are ignored; bad values raise
        ``KafkaError(INVALID_CONFIG)``.
        """
        changes: dict[str, Any] = {}
        for name, raw in config.items():
            spec = _TOPIC_CONFIGS.get(name)
            if spec is None:
                continue
            field, parse, minimum = spec
            try:
                value = parse(raw)
            except ValueError as exc:
                raise KafkaError(
                    ErrorCode.INVALID_CONFIG, f"invalid value {raw!r} for {name}"
                ) from exc
            if minimum is not None and value < minimum:
                raise KafkaError(
                    ErrorCode.INVALID_CONFIG, f"{name} must be at least {minimum}, got {value}"
                )
            changes[field] = value
        return (defaults or cls()).replace(**changes)
