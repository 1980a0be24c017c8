"""Typed option tables for the producer and consumer (sans-IO).

Each option is Kafka's dotted name with Kafka's default. :func:`read_options`
checks a user's dict against a table: unknown names, values of the wrong type
and values out of range raise :class:`ConfigError` naming the option. Values
may be given as Python values or as the strings of a .properties file.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from strom.client.config import ConfigError

Parser = Callable[[str, Any], Any]


def as_int(key: str, value: Any) -> int:
    """An integer (bools are refused); ConfigError otherwise."""
    if isinstance(value, bool):
        raise ConfigError(f"{key}: {value!r} is not an integer")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key}: {value!r} is not an integer") from None


def as_bool(key: str, value: Any) -> bool:
    """A bool, or true/false, 1/0, yes/no in any case; ConfigError otherwise."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise ConfigError(f"{key}: {value!r} is not true or false")


def as_str(key: str, value: Any) -> str:
    """A str, int or float as text; ConfigError for other types."""
    if not isinstance(value, (str, int, float)):
        raise ConfigError(f"{key}: {value!r} is not a string")
    return str(value)


def as_opt_str(key: str, value: Any) -> str | None:
    """As :func:`as_str`, with None or an empty string meaning unset (None)."""
    return None if value is None or value == "" else as_str(key, value)


def as_list(key: str, value: Any) -> list[str]:
    """A comma-separated string (empty items dropped) or a list/tuple -> stripped strings."""
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, (list, tuple)):
        return [as_str(key, v).strip() for v in value]
    raise ConfigError(f"{key}: {value!r} is not a list")


def as_any(key: str, value: Any) -> Any:
    """The value unchanged."""
    return value


def one_of(*choices: str) -> Parser:
    """A parser that accepts one of ``choices`` in any case and returns it lowercased."""

    def parse(key: str, value: Any) -> str:
        """``value`` lowercased when it is one of the choices; ConfigError otherwise."""
        text = str(value).strip().lower()
        if text not in choices:
            raise ConfigError(f"{key}: {value!r} is not one of {', '.join(choices)}")
        return text

    return parse


def at_least(minimum: int, parser: Parser = as_int) -> Parser:
    """A parser: ``parser``'s number, with ConfigError when it is below ``minimum``."""

    def parse(key: str, value: Any) -> int:
        """``parser``'s number; ConfigError when it is below the minimum."""
        number: int = parser(key, value)
        if number < minimum:
            raise ConfigError(f"{key}: {value!r} must be at least {minimum}")
        return number

    return parse


@dataclass(frozen=True, slots=True)
class Option:
    """One option: Kafka's name, Kafka's default and the parser of user values."""

    name: str
    default: Any
    parse: Parser = as_any


def read_options(
    table: Mapping[str, Option], cfg: Mapping[str, Any], kind: str
) -> tuple[dict[str, Any], set[str]]:
    """Parsed values for every option of ``table`` and the names the user set.

    Raises ConfigError naming the first unknown option.
    """
    for key in cfg:
        if key not in table:
            raise ConfigError(f"{key}: unknown {kind} option")
    values: dict[str, Any] = {}
    for name, option in table.items():
        if name in cfg and cfg[name] is not None:
            values[name] = option.parse(name, cfg[name])
        else:
            values[name] = option.default
    return values, {k for k, v in cfg.items() if v is not None}


# TLS and SASL settings (Kafka's client names; sasl.username and sasl.password as
# librdkafka's), read by strom.net.security
SECURITY_KEYS = (
    "ssl.truststore.type",
    "ssl.truststore.location",
    "ssl.truststore.password",
    "ssl.truststore.certificates",
    "ssl.keystore.type",
    "ssl.keystore.location",
    "ssl.keystore.password",
    "ssl.keystore.key",
    "ssl.keystore.certificate.chain",
    "ssl.key.password",
    "ssl.endpoint.identification.algorithm",
    "ssl.enabled.protocols",
    "ssl.cipher.suites",
    "ssl.protocol",
    "sasl.mechanism",
    "sasl.jaas.config",
    "sasl.username",
    "sasl.password",
    "sasl.oauthbearer.config",
)


def common_options() -> list[Option]:
    """Connection options shared by producer and consumer (Kafka's defaults)."""
    return [
        Option("bootstrap.servers", "localhost:9092", as_str),
        Option("client.id", "", as_str),
        Option(
            "client.dns.lookup",
            "use_all_dns_ips",
            one_of("use_all_dns_ips", "resolve_canonical_bootstrap_servers_only", "default"),
        ),
        Option("request.timeout.ms", 30_000, at_least(0)),
        Option("socket.connection.setup.timeout.ms", 10_000, at_least(0)),
        Option("socket.connection.setup.timeout.max.ms", 30_000, at_least(0)),
        Option("metadata.max.age.ms", 300_000, at_least(0)),
        Option("retry.backoff.ms", 100, at_least(0)),
        Option("retry.backoff.max.ms", 1000, at_least(0)),
        Option("reconnect.backoff.ms", 50, at_least(0)),
        Option("reconnect.backoff.max.ms", 1000, at_least(0)),
        Option("connections.max.idle.ms", 540_000, as_int),
        Option(
            "security.protocol",
            "PLAINTEXT",
            one_of("plaintext", "ssl", "sasl_plaintext", "sasl_ssl"),
        ),
        *(Option(key, None, as_any) for key in SECURITY_KEYS),
        Option("send.buffer.bytes", 131_072, as_int),
        Option("receive.buffer.bytes", 65_536, as_int),
        Option("metrics.sample.window.ms", 30_000, as_int),
        Option("metrics.num.samples", 2, as_int),
    ]


def client_dict(values: Mapping[str, Any], client_id: str) -> dict[str, Any]:
    """The subset :class:`~strom.client.config.ClientConfig` reads."""
    keys = (
        "bootstrap.servers",
        "request.timeout.ms",
        "socket.connection.setup.timeout.ms",
        "metadata.max.age.ms",
        "retry.backoff.ms",
        "client.dns.lookup",
    )
    out = {k: values[k] for k in keys}
    out["security.protocol"] = str(values["security.protocol"]).upper()
    out.update({k: values[k] for k in SECURITY_KEYS if values.get(k) is not None})
    out["client.id"] = client_id
    return out
