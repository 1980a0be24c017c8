"""Per-topic log configuration with Kafka's topic config names and defaults."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

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
}


@dataclass(frozen=True, slots=True)
class LogConfig:
    """Kafka topic configs that the log obeys (defaults as Kafka's)."""

    segment_bytes: int = 1024 * 1024 * 1024
    segment_ms: int = 7 * 24 * 60 * 60 * 1000
    retention_ms: int = 7 * 24 * 60 * 60 * 1000  # -1: keep forever
    retention_bytes: int = -1  # -1: no size limit
    max_message_bytes: int = 1048588
    index_interval_bytes: int = 4096
    segment_index_bytes: int = 10 * 1024 * 1024
    flush_interval_messages: int = LONG_MAX
    flush_interval_ms: int = LONG_MAX
    message_timestamp_type: str = CREATE_TIME
    message_timestamp_difference_max_ms: int = LONG_MAX
    cleanup_policy: str = "delete"
    delete_retention_ms: int = 24 * 60 * 60 * 1000  # how long compaction keeps tombstones
    min_compaction_lag_ms: int = 0  # records younger than this are not compacted

    @property
    def delete_enabled(self) -> bool:
        return "delete" in self.cleanup_policy  # only "delete" and "compact" pass the parser

    @property
    def compact_enabled(self) -> bool:
        return "compact" in self.cleanup_policy

    @property
    def log_append_time(self) -> bool:
        return self.message_timestamp_type == LOG_APPEND_TIME

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
        return dataclasses.replace(defaults or cls(), **changes)
