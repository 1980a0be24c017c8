"""The group coordinator's configuration: Kafka's group.* and offsets.* broker settings.

A module of its own: the broker builds (and checks) it at start, while the coordinator's
code is loaded only with the first ``__consumer_offsets`` partition this broker leads.
"""

from __future__ import annotations

from typing import ClassVar, Final

from strom.common.values import Value

NEW_MEMBER_JOIN_TIMEOUT_MS = 5 * 60 * 1000
# group.consumer.assignors also accepts Kafka's class names
ASSIGNOR_CLASS_NAMES = {
    "org.apache.kafka.coordinator.group.assignor.UniformAssignor": "uniform",
    "org.apache.kafka.coordinator.group.assignor.RangeAssignor": "range",
}


class GroupConfig(Value):
    """Kafka's group.* and offsets.* broker settings that the coordinator obeys."""

    __slots__ = (
        "consumer_assignors",
        "consumer_heartbeat_interval_ms",
        "consumer_max_size",
        "consumer_migration_policy",
        "consumer_session_timeout_ms",
        "initial_rebalance_delay_ms",
        "max_session_timeout_ms",
        "max_size",
        "min_session_timeout_ms",
        "new_member_join_timeout_ms",
        "offset_metadata_max_bytes",
        "offsets_retention_ms",
        "rebalance_protocols",
    )
    FIELDS: ClassVar[tuple[str, ...]] = (
        "min_session_timeout_ms",
        "max_session_timeout_ms",
        "initial_rebalance_delay_ms",
        "max_size",
        "offset_metadata_max_bytes",
        "offsets_retention_ms",
        "new_member_join_timeout_ms",
        "rebalance_protocols",
        "consumer_session_timeout_ms",
        "consumer_heartbeat_interval_ms",
        "consumer_max_size",
        "consumer_assignors",
        "consumer_migration_policy",
    )
    min_session_timeout_ms: Final[int]
    max_session_timeout_ms: Final[int]
    initial_rebalance_delay_ms: Final[int]
    max_size: Final[int]
    offset_metadata_max_bytes: Final[int]
    offsets_retention_ms: Final[int]
    new_member_join_timeout_ms: Final[int]
    # consumer groups (KIP-848): group.consumer.*, group.coordinator.rebalance.protocols
    rebalance_protocols: Final[tuple[str, ...]]
    consumer_session_timeout_ms: Final[int]
    consumer_heartbeat_interval_ms: Final[int]
    consumer_max_size: Final[int]
    consumer_assignors: Final[tuple[str, ...]]  # the first is the default
    consumer_migration_policy: Final[str]  # disabled, downgrade, upgrade

    def __init__(
        self,
        min_session_timeout_ms: int = 6000,
        max_session_timeout_ms: int = 1_800_000,
        initial_rebalance_delay_ms: int = 3000,
        max_size: int = 2**31 - 1,
        offset_metadata_max_bytes: int = 4096,
        offsets_retention_ms: int = 7 * 24 * 60 * 60 * 1000,
        new_member_join_timeout_ms: int = NEW_MEMBER_JOIN_TIMEOUT_MS,
        rebalance_protocols: tuple[str, ...] = ("classic", "consumer"),
        consumer_session_timeout_ms: int = 45_000,
        consumer_heartbeat_interval_ms: int = 5_000,
        consumer_max_size: int = 2**31 - 1,
        consumer_assignors: tuple[str, ...] = ("uniform", "range"),
        consumer_migration_policy: str = "bidirectional",
    ) -> None:
        self.min_session_timeout_ms = min_session_timeout_ms
        self.max_session_timeout_ms = max_session_timeout_ms
        self.initial_rebalance_delay_ms = initial_rebalance_delay_ms
        self.max_size = max_size
        self.offset_metadata_max_bytes = offset_metadata_max_bytes
        self.offsets_retention_ms = offsets_retention_ms
        self.new_member_join_timeout_ms = new_member_join_timeout_ms
        self.rebalance_protocols = rebalance_protocols
        self.consumer_session_timeout_ms = consumer_session_timeout_ms
        self.consumer_heartbeat_interval_ms = consumer_heartbeat_interval_ms
        self.consumer_max_size = consumer_max_size
        self.consumer_assignors = consumer_assignors
        self.consumer_migration_policy = consumer_migration_policy
