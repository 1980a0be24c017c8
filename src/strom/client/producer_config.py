"""Producer options: Kafka's names and defaults, checked at construction (sans-IO).

Idempotence follows Kafka 3.x (``ProducerConfig.postProcessAndValidateIdempotenceConfigs``):
``enable.idempotence`` defaults to true; it needs ``acks=all``, ``retries > 0``
and ``max.in.flight.requests.per.connection <= 5``. When the user set
``enable.idempotence=true`` (or a ``transactional.id``) a contradiction raises
ConfigError naming the option; when the user left it unset, a contradicting
option silently turns idempotence off, as in Kafka.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from strom.client.config import ClientConfig, ConfigError, parse_acks, parse_compression
from strom.client.options import (
    Option,
    as_any,
    as_bool,
    as_int,
    as_opt_str,
    as_str,
    at_least,
    client_dict,
    common_options,
    read_options,
)

MAX_IN_FLIGHT_FOR_IDEMPOTENCE = 5

PRODUCER_OPTIONS: dict[str, Option] = {
    o.name: o
    for o in [
        *common_options(),
        Option("acks", "all", as_str),
        Option("buffer.memory", 33_554_432, at_least(0)),
        Option("compression.type", "none", as_str),
        Option("compression.gzip.level", -1, as_int),
        Option("compression.lz4.level", 9, as_int),
        Option("compression.zstd.level", 3, as_int),
        Option("enable.idempotence", True, as_bool),
        Option("max.in.flight.requests.per.connection", 5, at_least(1)),
        Option("retries", 2_147_483_647, at_least(0)),
        Option("delivery.timeout.ms", 120_000, at_least(0)),
        Option("batch.size", 16_384, at_least(0)),
        Option("linger.ms", 5, at_least(0)),
        Option("max.request.size", 1_048_576, at_least(1)),
        Option("max.block.ms", 60_000, at_least(0)),
        Option("transactional.id", None, as_opt_str),
        Option("transaction.timeout.ms", 60_000, at_least(1)),
        Option("partitioner.class", None, as_any),
        Option("partitioner.ignore.keys", False, as_bool),
        Option("partitioner.adaptive.partitioning.enable", True, as_bool),
        Option("partitioner.availability.timeout.ms", 0, at_least(0)),
        Option("key.serializer", None, as_any),
        Option("value.serializer", None, as_any),
        Option("metadata.max.idle.ms", 300_000, as_int),
        Option("interceptor.classes", "", as_str),
    ]
}


@dataclass(frozen=True, slots=True)
class ProducerConfig:
    """A checked producer configuration; build it with :meth:`from_dict`."""

    client: ClientConfig
    acks: int
    buffer_memory: int
    compression: int
    idempotent: bool
    max_in_flight: int
    retries: int
    retry_backoff_ms: int
    retry_backoff_max_ms: int
    delivery_timeout_ms: int
    request_timeout_ms: int
    batch_size: int
    linger_ms: int
    max_request_size: int
    max_block_ms: int
    transactional_id: str | None
    transaction_timeout_ms: int
    partitioner: Any
    ignore_keys: bool
    adaptive: bool
    key_serializer: Any
    value_serializer: Any

    @classmethod
    def from_dict(cls, cfg: Mapping[str, Any] | None = None) -> ProducerConfig:
        """Check ``cfg`` against PRODUCER_OPTIONS and Kafka's rules.

        Idempotence as the module describes; delivery.timeout.ms must be at least
        linger.ms + request.timeout.ms (ConfigError when set, else raised to that sum).
        ConfigError names the offending option."""
        values, given = read_options(PRODUCER_OPTIONS, cfg or {}, "producer")
        acks = parse_acks(values["acks"])
        idempotent = _idempotence(values, given, acks)
        linger, request_timeout = values["linger.ms"], values["request.timeout.ms"]
        delivery = values["delivery.timeout.ms"]
        if delivery < linger + request_timeout:
            if "delivery.timeout.ms" in given:
                raise ConfigError(
                    f"delivery.timeout.ms: {delivery} should be equal to or larger than "
                    f"linger.ms + request.timeout.ms ({linger + request_timeout})"
                )
            delivery = linger + request_timeout
        client_id = values["client.id"] or "strom-producer"
        client = ClientConfig.from_dict(
            {**client_dict(values, client_id), "retries": min(values["retries"], 1 << 30)}
        )
        return cls(
            client=client,
            acks=acks,
            buffer_memory=values["buffer.memory"],
            compression=parse_compression(values["compression.type"]),
            idempotent=idempotent,
            max_in_flight=values["max.in.flight.requests.per.connection"],
            retries=values["retries"],
            retry_backoff_ms=values["retry.backoff.ms"],
            retry_backoff_max_ms=max(values["retry.backoff.max.ms"], values["retry.backoff.ms"]),
            delivery_timeout_ms=delivery,
            request_timeout_ms=request_timeout,
            batch_size=values["batch.size"],
            linger_ms=linger,
            max_request_size=values["max.request.size"],
            max_block_ms=values["max.block.ms"],
            transactional_id=values["transactional.id"],
            transaction_timeout_ms=values["transaction.timeout.ms"],
            partitioner=values["partitioner.class"],
            ignore_keys=values["partitioner.ignore.keys"],
            adaptive=values["partitioner.adaptive.partitioning.enable"],
            key_serializer=values["key.serializer"],
            value_serializer=values["value.serializer"],
        )


def _idempotence(values: Mapping[str, Any], given: set[str], acks: int) -> bool:
    """Whether the producer is idempotent; raises on contradictions the user asked for."""
    transactional = values["transactional.id"] is not None
    explicit = "enable.idempotence" in given
    wanted: bool = values["enable.idempotence"]
    if transactional and explicit and not wanted:
        raise ConfigError(
            "transactional.id: cannot set a transactional.id without also enabling "
            "idempotence (enable.idempotence=false)"
        )
    strict = transactional or (explicit and wanted)
    problems = []
    if values["max.in.flight.requests.per.connection"] > MAX_IN_FLIGHT_FOR_IDEMPOTENCE:
        problems.append(
            (
                "max.in.flight.requests.per.connection",
                f"must be at most {MAX_IN_FLIGHT_FOR_IDEMPOTENCE} to use the idempotent producer",
            )
        )
    if values["retries"] == 0:
        problems.append(("retries", "must be non-zero when using the idempotent producer"))
    if acks != -1:
        problems.append(
            (
                "acks",
                "must be all (-1) to use the idempotent producer; otherwise we cannot "
                "guarantee idempotence",
            )
        )
    if problems and strict:
        name, text = problems[0]
        why = "transactional.id is set" if transactional else "enable.idempotence=true"
        raise ConfigError(f"{name}: {values[name]!r} {text} ({why})")
    if problems:
        return False  # not asked for explicitly: Kafka quietly turns it off
    return wanted or transactional
