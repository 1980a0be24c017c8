"""Listeners: what the broker binds, what it advertises, and which one brokers use.

Kafka's rules (KafkaConfig): ``listeners`` is a list of ``NAME://host:port``
with distinct names (and distinct ports); each name maps to a security
protocol through ``listener.security.protocol.map``; ``advertised.listeners``
(default: ``listeners``) names a subset of them and may not advertise
0.0.0.0; brokers talk to each other on ``inter.broker.listener.name``, or on
the listener whose protocol is ``security.inter.broker.protocol``, never both.
"""

from __future__ import annotations

from typing import ClassVar, Final

from strom.common.config import BrokerConfig, ConfigError
from strom.common.values import Value
from strom.metadata.image import SECURITY_PROTOCOL_IDS, Endpoint

# Security protocols strom serves (all of Kafka's).
SUPPORTED_PROTOCOLS = frozenset({"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"})
DEFAULT_HOST = "127.0.0.1"


class Listener(Value):
    """A listener the broker binds."""

    __slots__ = ("host", "name", "port", "security_protocol")
    FIELDS: ClassVar[tuple[str, ...]] = ("name", "host", "port", "security_protocol")
    name: Final[str]
    host: Final[str]
    port: Final[int]
    security_protocol: Final[str]

    def __init__(self, name: str, host: str, port: int, security_protocol: str) -> None:
        self.name = name
        self.host = host
        self.port = port
        self.security_protocol = security_protocol


def parse_listener(listener: str, key: str = "listeners") -> tuple[str, str, int]:
    """'PLAINTEXT://host:port' -> (name, host, port); an empty host is 127.0.0.1."""
    name, sep, rest = listener.partition("://")
    if not sep or not name:
        raise ConfigError(key, f"invalid listener {listener!r} (expected NAME://host:port)")
    host, colon, port = rest.rpartition(":")
    try:
        port_n = int(port)
    except ValueError:
        raise ConfigError(key, f"invalid port in {listener!r}") from None
    if not colon or not 0 <= port_n <= 65535:
        raise ConfigError(key, f"invalid port in {listener!r}")
    return name.upper(), host.strip("[]") or DEFAULT_HOST, port_n


def security_protocol_map(config: BrokerConfig) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in config.get_list("listener.security.protocol.map"):
        name, sep, proto = item.partition(":")
        if not sep or not name.strip() or proto.strip().upper() not in SECURITY_PROTOCOL_IDS:
            raise ConfigError(
                "listener.security.protocol.map",
                f"invalid entry {item!r} (expected LISTENER_NAME:SECURITY_PROTOCOL, the protocol "
                f"one of {', '.join(SECURITY_PROTOCOL_IDS)})",
            )
        out[name.strip().upper()] = proto.strip().upper()
    return out


def _parse_all(config: BrokerConfig, key: str, values: list[str]) -> list[tuple[str, str, int]]:
    parsed = [parse_listener(v, key) for v in values]
    names = [name for name, _, _ in parsed]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup is not None:
        raise ConfigError(key, f"Each listener must have a different name, {dup} appears twice")
    return parsed


def bound_listeners(config: BrokerConfig) -> list[Listener]:
    """Every listener of ``listeners``, with its security protocol. ConfigError for a
    malformed list, a duplicate name or port, an unmapped name, or a security protocol
    strom does not serve yet."""
    values = config.get_list("listeners")
    if not values:
        raise ConfigError("listeners", "at least one listener is required")
    protocols = security_protocol_map(config)
    out: list[Listener] = []
    ports: set[int] = set()
    for name, host, port in _parse_all(config, "listeners", values):
        proto = protocols.get(name)
        if proto is None:
            raise ConfigError(
                "listener.security.protocol.map",
                f"No security protocol defined for listener {name}",
            )
        if proto not in SUPPORTED_PROTOCOLS:
            raise ConfigError(
                "listeners",
                f"listener {name} uses security protocol {proto}, which strom does not serve "
                f"yet (supported: {', '.join(sorted(SUPPORTED_PROTOCOLS))})",
            )
        if port != 0 and port in ports:
            raise ConfigError("listeners", f"Each listener must have a different port: {port}")
        ports.add(port)
        out.append(Listener(name, host, port, proto))
    return out


def advertised_endpoints(config: BrokerConfig, bound: list[Listener]) -> tuple[Endpoint, ...]:
    """What the broker advertises: ``advertised.listeners`` (default: the bound listeners
    with their actual ports), each naming a bound listener."""
    by_name = {lst.name: lst for lst in bound}
    values = config.get_list("advertised.listeners")
    if not values:
        return tuple(Endpoint(lst.name, lst.host, lst.port, lst.security_protocol) for lst in bound)
    out = []
    for name, host, port in _parse_all(config, "advertised.listeners", values):
        lst = by_name.get(name)
        if lst is None:
            raise ConfigError(
                "advertised.listeners",
                f"advertised listener {name} is not one of the listeners ({', '.join(by_name)})",
            )
        if host == "0.0.0.0":
            raise ConfigError(
                "advertised.listeners",
                "advertised.listeners cannot use the nonroutable meta-address 0.0.0.0. "
                "Use a routable IP address.",
            )
        out.append(Endpoint(name, host, port, lst.security_protocol))
    return tuple(out)


def inter_broker_listener(config: BrokerConfig, advertised: tuple[Endpoint, ...]) -> str:
    """The listener name brokers (and the controller) use to reach this broker."""
    name = config.get_str("inter.broker.listener.name")
    protocol = config.get_str("security.inter.broker.protocol")
    if name and config.source_of("security.inter.broker.protocol") != 5:  # not the default
        raise ConfigError(
            "inter.broker.listener.name",
            "Only one of inter.broker.listener.name and security.inter.broker.protocol "
            "should be set.",
        )
    names = [ep.listener for ep in advertised]
    if name:
        name = name.upper()
        if name not in names:
            raise ConfigError(
                "inter.broker.listener.name",
                f"inter.broker.listener.name must be a listener name defined in "
                f"advertised.listeners. The valid options based on currently configured "
                f"listeners are {','.join(names)}",
            )
        return name
    wanted = (protocol or "PLAINTEXT").upper()
    for ep in advertised:
        if ep.security_protocol == wanted:
            return ep.listener
    raise ConfigError(
        "security.inter.broker.protocol",
        f"no advertised listener uses security.inter.broker.protocol {wanted} "
        f"(advertised: {','.join(names)})",
    )
