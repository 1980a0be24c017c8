"""What one listener needs to authenticate its clients, built from the broker config
at start (a problem is a ConfigError then, as Kafka fails to start): the TLS context
of SSL and SASL_SSL listeners, the enabled SASL mechanisms with their JAAS options
(``listener.name.<listener>.<mechanism>.sasl.jaas.config``), the KIP-368 session
limits, and ``ssl.principal.mapping.rules``. The SASL code (strom.common.sasl) is
imported only for SASL listeners."""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from typing import TYPE_CHECKING, ClassVar, Final

from strom.broker.listeners import Listener
from strom.common.config import BrokerConfig, ConfigError
from strom.common.principal import MappingRule, parse_jaas_config, parse_mapping_rules
from strom.common.values import Value

if TYPE_CHECKING:
    from strom.common.sasl import UnsecuredValidatorOptions

PLAIN_MODULE = "org.apache.kafka.common.security.plain.PlainLoginModule"


class ListenerSecurity(Value):
    __slots__ = (
        "failed_delay_ms",
        "listener",
        "mapping_rules",
        "max_receive",
        "mechanisms",
        "oauth",
        "plain_users",
        "protocol",
        "reauth_ms",
        "ssl_context",
    )
    FIELDS: ClassVar[tuple[str, ...]] = (
        "listener",
        "protocol",
        "ssl_context",
        "mechanisms",
        "plain_users",
        "oauth",
        "reauth_ms",
        "failed_delay_ms",
        "max_receive",
        "mapping_rules",
    )
    listener: Final[str]
    protocol: Final[str]
    ssl_context: Final[ssl.SSLContext | None]
    mechanisms: Final[tuple[str, ...]]
    plain_users: Final[Mapping[str, str]]
    oauth: Final[UnsecuredValidatorOptions | None]  # OAUTHBEARER's (SASL listeners)
    reauth_ms: Final[Mapping[str, int]]  # by mechanism
    failed_delay_ms: Final[int]
    max_receive: Final[int]
    mapping_rules: Final[tuple[MappingRule, ...]]

    def __init__(
        self,
        listener: str,
        protocol: str,
        ssl_context: ssl.SSLContext | None = None,
        mechanisms: tuple[str, ...] = (),
        plain_users: Mapping[str, str] | None = None,
        oauth: UnsecuredValidatorOptions | None = None,
        reauth_ms: Mapping[str, int] | None = None,
        failed_delay_ms: int = 100,
        max_receive: int = 524_288,
        mapping_rules: tuple[MappingRule, ...] = (),
    ) -> None:
        self.listener = listener
        self.protocol = protocol
        self.ssl_context = ssl_context
        self.mechanisms = mechanisms
        self.plain_users = {} if plain_users is None else plain_users
        self.oauth = oauth
        self.reauth_ms = {} if reauth_ms is None else reauth_ms
        self.failed_delay_ms = failed_delay_ms
        self.max_receive = max_receive
        self.mapping_rules = mapping_rules

    @property
    def sasl(self) -> bool:
        return self.protocol.startswith("SASL_")


def _jaas(config: BrokerConfig, listener: str, mechanism: str) -> dict[str, str] | None:
    text = config.listener_get(listener, "sasl.jaas.config", mechanism)
    if not text:
        return None
    try:
        return parse_jaas_config(str(text))[0].options
    except ValueError as exc:
        key = f"listener.name.{listener.lower()}.{mechanism.lower()}.sasl.jaas.config"
        raise ConfigError(key, str(exc)) from None


def _mechanisms(config: BrokerConfig, listener: str) -> tuple[str, ...]:
    from strom.common.sasl import GSSAPI, KNOWN_MECHANISMS

    value = config.listener_get(listener, "sasl.enabled.mechanisms")
    items = value if isinstance(value, list) else []
    names = tuple(str(m).strip().upper() for m in items if str(m).strip())
    if not names:
        raise ConfigError("sasl.enabled.mechanisms", f"no SASL mechanism enabled for {listener}")
    for name in names:
        if name == GSSAPI:
            raise ConfigError(
                "sasl.enabled.mechanisms",
                f"listener {listener}: GSSAPI (Kerberos) is not supported by strom; enable "
                f"{', '.join(m for m in KNOWN_MECHANISMS if m != GSSAPI)} "
                "(sasl.enabled.mechanisms)",
            )
        if name not in KNOWN_MECHANISMS:
            raise ConfigError(
                "sasl.enabled.mechanisms", f"listener {listener}: unknown SASL mechanism {name}"
            )
    return names


def listener_security(config: BrokerConfig, lst: Listener) -> ListenerSecurity:
    name, protocol = lst.name, lst.security_protocol

    def get(key: str) -> object:
        return config.listener_get(name, key)

    try:
        rules = tuple(parse_mapping_rules(str(get("ssl.principal.mapping.rules") or "DEFAULT")))
    except ValueError as exc:
        raise ConfigError("ssl.principal.mapping.rules", str(exc)) from None
    context = None
    if protocol.endswith("SSL"):
        from strom.net.tls import server_context  # not imported by a plaintext broker

        context = server_context(get)
    if not protocol.startswith("SASL_"):
        return ListenerSecurity(name, protocol, context, mapping_rules=rules)
    from strom.common.sasl import OAUTHBEARER, PLAIN, UnsecuredValidatorOptions

    mechanisms = _mechanisms(config, name)
    users: dict[str, str] = {}
    oauth = UnsecuredValidatorOptions()
    if PLAIN in mechanisms:
        options = _jaas(config, name, PLAIN)
        if options is None:
            raise ConfigError(
                f"listener.name.{name.lower()}.plain.sasl.jaas.config",
                f"listener {name} enables PLAIN but has no JAAS config ({PLAIN_MODULE} with "
                'user_NAME="password" options)',
            )
        users = {k[5:]: v for k, v in options.items() if k.startswith("user_")}
    if OAUTHBEARER in mechanisms:
        oauth = UnsecuredValidatorOptions.from_jaas(_jaas(config, name, OAUTHBEARER) or {})
    reauth = {
        m: int(str(config.listener_get(name, "connections.max.reauth.ms", m) or 0))
        for m in mechanisms
    }
    return ListenerSecurity(
        name,
        protocol,
        context,
        mechanisms,
        users,
        oauth,
        reauth,
        failed_delay_ms=config.get_int("connection.failed.authentication.delay.ms"),
        max_receive=int(str(config.listener_get(name, "sasl.server.max.receive.size") or 524_288)),
        mapping_rules=rules,
    )


__all__ = ["ListenerSecurity", "listener_security"]
