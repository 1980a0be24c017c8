"""Consumer options: Kafka's names and defaults, checked at construction (sans-IO)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from strom.client.assignors import assignor_name
from strom.client.config import ClientConfig, ConfigError
from strom.client.options import (
    Option,
    as_any,
    as_bool,
    as_list,
    as_opt_str,
    at_least,
    client_dict,
    common_options,
    one_of,
    read_options,
)

CONSUMER_OPTIONS: dict[str, Option] = {
    o.name: o
    for o in [
        *common_options(),
        Option("group.id", None, as_opt_str),
        Option("group.instance.id", None, as_opt_str),
        Option("group.protocol", "classic", one_of("classic", "consumer")),
        Option("group.remote.assignor", None, as_opt_str),
        Option("session.timeout.ms", 45_000, at_least(1)),
        Option("heartbeat.interval.ms", 3_000, at_least(1)),
        Option("max.poll.interval.ms", 300_000, at_least(1)),
        Option("max.poll.records", 500, at_least(1)),
        Option("enable.auto.commit", True, as_bool),
        Option("auto.commit.interval.ms", 5_000, at_least(0)),
        Option("auto.offset.reset", "latest", one_of("earliest", "latest", "none")),
        Option("fetch.min.bytes", 1, at_least(0)),
        Option("fetch.max.bytes", 52_428_800, at_least(0)),
        Option("fetch.max.wait.ms", 500, at_least(0)),
        Option("max.partition.fetch.bytes", 1_048_576, at_least(0)),
        Option("isolation.level", "read_uncommitted", one_of("read_uncommitted", "read_committed")),
        Option(
            "partition.assignment.strategy",
            ["range", "cooperative-sticky"],
            as_list,
        ),
        Option("check.crcs", True, as_bool),
        Option("exclude.internal.topics", True, as_bool),
        Option("allow.auto.create.topics", True, as_bool),
        Option("client.rack", "", as_any),
        Option("default.api.timeout.ms", 60_000, at_least(0)),
        Option("key.deserializer", None, as_any),
        Option("value.deserializer", None, as_any),
        Option("interceptor.classes", "", as_any),
    ]
}


@dataclass(frozen=True, slots=True)
class ConsumerConfig:
    """A checked consumer configuration; build it with :meth:`from_dict`."""

    client: ClientConfig
    group_id: str | None
    group_instance_id: str | None
    group_protocol: str  # "classic" (JoinGroup/SyncGroup) or "consumer" (KIP-848)
    group_remote_assignor: str | None  # the coordinator's assignor (consumer protocol)
    client_rack: str
    session_timeout_ms: int
    heartbeat_interval_ms: int
    max_poll_interval_ms: int
    max_poll_records: int
    enable_auto_commit: bool
    auto_commit_interval_ms: int
    auto_offset_reset: str
    fetch_min_bytes: int
    fetch_max_bytes: int
    fetch_max_wait_ms: int
    max_partition_fetch_bytes: int
    isolation_level: int
    assignors: tuple[str, ...]
    check_crcs: bool
    exclude_internal_topics: bool
    allow_auto_create_topics: bool
    default_api_timeout_ms: int
    key_deserializer: Any
    value_deserializer: Any
    retry_backoff_ms: int

    @classmethod
    def from_dict(cls, cfg: Mapping[str, Any] | None = None) -> ConsumerConfig:
        """Check ``cfg`` against CONSUMER_OPTIONS.

        ConfigError for an unknown option, a bad value, an unknown assignor,
        heartbeat.interval.ms >= session.timeout.ms, or enable.auto.commit=true without
        a group.id (left unset, auto-commit is just off without a group)."""
        values, given = read_options(CONSUMER_OPTIONS, cfg or {}, "consumer")
        _check_group_protocol(values, given)
        names: list[str] = []
        for spec in values["partition.assignment.strategy"]:
            name = assignor_name(spec)
            if name is None:
                raise ConfigError(
                    f"partition.assignment.strategy: unknown assignor {spec!r} "
                    "(range, roundrobin, sticky, cooperative-sticky)"
                )
            names.append(name)
        if not names:
            raise ConfigError("partition.assignment.strategy: no assignor given")
        session, heartbeat = values["session.timeout.ms"], values["heartbeat.interval.ms"]
        if heartbeat >= session:
            raise ConfigError(
                f"heartbeat.interval.ms: {heartbeat} must be lower than session.timeout.ms "
                f"({session})"
            )
        auto_commit = values["enable.auto.commit"]
        if values["group.id"] is None:
            if "enable.auto.commit" in given and auto_commit:
                raise ConfigError("enable.auto.commit: cannot be true without a group.id")
            auto_commit = False
        client_id = values["client.id"] or "strom-consumer"
        return cls(
            client=ClientConfig.from_dict(client_dict(values, client_id)),
            group_id=values["group.id"],
            group_instance_id=values["group.instance.id"],
            group_protocol=values["group.protocol"],
            group_remote_assignor=values["group.remote.assignor"],
            client_rack=str(values["client.rack"] or ""),
            session_timeout_ms=session,
            heartbeat_interval_ms=heartbeat,
            max_poll_interval_ms=values["max.poll.interval.ms"],
            max_poll_records=values["max.poll.records"],
            enable_auto_commit=auto_commit,
            auto_commit_interval_ms=values["auto.commit.interval.ms"],
            auto_offset_reset=values["auto.offset.reset"],
            fetch_min_bytes=values["fetch.min.bytes"],
            fetch_max_bytes=values["fetch.max.bytes"],
            fetch_max_wait_ms=values["fetch.max.wait.ms"],
            max_partition_fetch_bytes=values["max.partition.fetch.bytes"],
            isolation_level=1 if values["isolation.level"] == "read_committed" else 0,
            assignors=tuple(dict.fromkeys(names)),
            check_crcs=values["check.crcs"],
            exclude_internal_topics=values["exclude.internal.topics"],
            allow_auto_create_topics=values["allow.auto.create.topics"],
            default_api_timeout_ms=values["default.api.timeout.ms"],
            key_deserializer=values["key.deserializer"],
            value_deserializer=values["value.deserializer"],
            retry_backoff_ms=values["retry.backoff.ms"],
        )


# Settings of the classic protocol that the coordinator owns with group.protocol=consumer.
CLASSIC_ONLY = ("partition.assignment.strategy", "session.timeout.ms", "heartbeat.interval.ms")


def _check_group_protocol(values: Mapping[str, Any], given: Iterable[str]) -> None:
    """As Kafka's consumer: classic-only settings are refused with group.protocol=consumer,
    and group.remote.assignor is refused with the classic protocol."""
    if values["group.protocol"] == "consumer":
        for key in CLASSIC_ONLY:
            if key in given:
                raise ConfigError(f"{key}: not supported when group.protocol=consumer")
    elif values["group.remote.assignor"] is not None:
        raise ConfigError("group.remote.assignor: only supported when group.protocol=consumer")
