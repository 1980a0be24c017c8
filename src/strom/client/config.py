"""Client configuration: Kafka's dotted names, Kafka's defaults.

A config is a plain ``dict[str, str | int]`` as users write it (``{"acks":
"all", "linger.ms": 5}``); :class:`ClientConfig` parses and checks the keys this
client understands. Unknown keys are ignored, as the Java client only warns.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from strom.common.config_types import ConfigError as _SettingError
from strom.net.security import ClientSecurity, security_from_mapping
from strom.protocol.compression import CODEC_NAMES

ConfigValue = str | int | float | bool
ConfigDict = Mapping[str, ConfigValue]

DEFAULTS: dict[str, ConfigValue] = {
    "bootstrap.servers": "localhost:9092",
    "client.id": "strom",
    "request.timeout.ms": 30_000,
    "socket.connection.setup.timeout.ms": 10_000,
    "metadata.max.age.ms": 300_000,
    "retries": 5,
    "retry.backoff.ms": 100,
    "acks": "all",
    "compression.type": "none",
    "linger.ms": 5,
    "batch.size": 16_384,
    "max.request.size": 1_048_576,
    "delivery.timeout.ms": 120_000,
    "fetch.min.bytes": 1,
    "fetch.max.bytes": 52_428_800,
    "fetch.max.wait.ms": 500,
    "max.partition.fetch.bytes": 1_048_576,
    "isolation.level": "read_uncommitted",
}


class ConfigError(ValueError):
    """A client setting that cannot be used; the message names the key."""


def parse_bootstrap(servers: str) -> list[tuple[str, int]]:
    """``"host:port,host2:port"`` -> [(host, port), ...]; IPv6 as ``[::1]:9092``."""
    out: list[tuple[str, int]] = []
    for item in servers.split(","):
        item = item.strip()
        if not item:
            continue
        host, sep, port = item.rpartition(":")
        if not sep or not host or not (port.isascii() and port.isdigit()):
            raise ConfigError(f"bootstrap.servers: invalid address {item!r} (want HOST:PORT)")
        out.append((host.strip("[]"), int(port)))
    if not out:
        raise ConfigError("bootstrap.servers: no servers given")
    return out


def _int(cfg: Mapping[str, ConfigValue], key: str) -> int:
    value = cfg.get(key, DEFAULTS[key])
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key}: {value!r} is not an integer") from None


def parse_acks(value: ConfigValue) -> int:
    """``acks`` -> -1 (all), 0 or 1; ConfigError for anything else."""
    text = str(value).strip().lower()
    if text == "all":
        return -1
    if text in ("-1", "0", "1"):
        return int(text)
    raise ConfigError(f"acks: {value!r} is not one of all, -1, 0, 1")


def parse_compression(value: ConfigValue) -> int:
    """A ``compression.type`` name -> codec id; ConfigError for an unknown name."""
    text = str(value).strip().lower()
    for codec, name in CODEC_NAMES.items():
        if name == text:
            return codec
    raise ConfigError(
        f"compression.type: {value!r} is not one of {', '.join(CODEC_NAMES.values())}"
    )


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """The settings of :class:`AIOClient`, parsed from Kafka's dotted names."""

    bootstrap_servers: tuple[tuple[str, int], ...]
    client_id: str
    request_timeout_ms: int
    connection_setup_timeout_ms: int
    metadata_max_age_ms: int
    retries: int
    retry_backoff_ms: int
    acks: int
    compression: int
    linger_ms: int
    batch_size: int
    max_request_size: int
    fetch_min_bytes: int
    fetch_max_bytes: int
    fetch_max_wait_ms: int
    max_partition_fetch_bytes: int
    isolation_level: int
    dns_lookup: str = "use_all_dns_ips"
    # security.protocol, ssl.*, sasl.* (PLAINTEXT when unset)
    security: ClientSecurity | None = None

    @classmethod
    def from_dict(cls, cfg: ConfigDict | None = None) -> ClientConfig:
        """Parse ``cfg`` (Kafka's defaults for missing keys); ConfigError names a bad key."""
        c: Mapping[str, ConfigValue] = cfg or {}
        isolation = str(c.get("isolation.level", DEFAULTS["isolation.level"]))
        if isolation not in ("read_uncommitted", "read_committed"):
            raise ConfigError(f"isolation.level: {isolation!r} is not read_uncommitted/committed")
        return cls(
            bootstrap_servers=tuple(
                parse_bootstrap(str(c.get("bootstrap.servers", DEFAULTS["bootstrap.servers"])))
            ),
            client_id=str(c.get("client.id", DEFAULTS["client.id"])),
            request_timeout_ms=_int(c, "request.timeout.ms"),
            connection_setup_timeout_ms=_int(c, "socket.connection.setup.timeout.ms"),
            metadata_max_age_ms=_int(c, "metadata.max.age.ms"),
            retries=_int(c, "retries"),
            retry_backoff_ms=_int(c, "retry.backoff.ms"),
            acks=parse_acks(c.get("acks", DEFAULTS["acks"])),
            compression=parse_compression(c.get("compression.type", DEFAULTS["compression.type"])),
            linger_ms=_int(c, "linger.ms"),
            batch_size=_int(c, "batch.size"),
            max_request_size=_int(c, "max.request.size"),
            fetch_min_bytes=_int(c, "fetch.min.bytes"),
            fetch_max_bytes=_int(c, "fetch.max.bytes"),
            fetch_max_wait_ms=_int(c, "fetch.max.wait.ms"),
            max_partition_fetch_bytes=_int(c, "max.partition.fetch.bytes"),
            isolation_level=1 if isolation == "read_committed" else 0,
            dns_lookup=str(c.get("client.dns.lookup", "use_all_dns_ips")),
            security=_security(c),
        )


def _security(cfg: Mapping[str, ConfigValue]) -> ClientSecurity | None:
    if str(cfg.get("security.protocol", "PLAINTEXT")).upper() == "PLAINTEXT":
        return None
    try:
        return security_from_mapping(cfg)
    except _SettingError as exc:
        raise ConfigError(str(exc)) from None
