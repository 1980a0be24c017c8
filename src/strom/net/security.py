"""A client's security settings (Kafka's client configs: ``security.protocol``,
``ssl.*``, ``sasl.mechanism``, ``sasl.jaas.config``; librdkafka's ``sasl.username``
and ``sasl.password`` are accepted too) and the client side of the SASL mechanisms.

Used by strom's client and tools (``--command-config``) and by a broker talking to
other brokers over a secured inter-broker listener.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from strom.common.config_types import ConfigError
from strom.common.principal import parse_jaas_config
from strom.common.sasl import (
    GSSAPI,
    KNOWN_MECHANISMS,
    OAUTHBEARER,
    PLAIN,
    oauth_client_token,
    plain_client_token,
    unsecured_token,
)
from strom.common.scram import HASHES, ScramClient
from strom.net.tls import Get, client_context

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")


@dataclass(frozen=True, slots=True)
class ClientSecurity:
    protocol: str = "PLAINTEXT"
    ssl_context: ssl.SSLContext | None = None
    mechanism: str = GSSAPI
    username: str = ""
    password: str = ""
    # OAuthBearerLoginModule's unsecuredLogin* options
    oauth_options: Mapping[str, str] = field(default_factory=dict)

    @property
    def sasl(self) -> bool:
        return self.protocol.startswith("SASL_")

    def mechanism_client(self) -> ClientMechanism:
        """A fresh client side of the configured mechanism."""
        if self.mechanism == PLAIN:
            return _OneShot(plain_client_token(self.username, self.password))
        if self.mechanism in HASHES:
            return _Scram(ScramClient(self.mechanism, self.username, self.password))
        if self.mechanism == OAUTHBEARER:
            opts = self.oauth_options
            extensions = {
                k.removeprefix("unsecuredLoginExtension_"): v
                for k, v in opts.items()
                if k.startswith("unsecuredLoginExtension_")
            }
            token = unsecured_token(
                opts.get("unsecuredLoginStringClaim_sub", "") or self.username,
                int(opts.get("unsecuredLoginLifetimeSeconds", "3600")),
            )
            return _OneShot(oauth_client_token(token, extensions))
        raise ConfigError(
            "sasl.mechanism",
            f"SASL mechanism {self.mechanism} is not supported by strom "
            f"(supported: {', '.join(m for m in KNOWN_MECHANISMS if m != GSSAPI)})",
        )


class ClientMechanism:
    """The client side of a mechanism: ``step(challenge)`` -> the next token, or
    None when done (``step(None)`` gives the first)."""

    def step(self, challenge: bytes | None) -> bytes | None:
        raise NotImplementedError


class _OneShot(ClientMechanism):
    def __init__(self, token: bytes) -> None:
        self._token = token
        self._sent = False

    def step(self, challenge: bytes | None) -> bytes | None:
        if not self._sent:
            self._sent = True
            return self._token
        if challenge:  # OAUTHBEARER's error challenge: answer with %x01, as Kafka's client
            return b"\x01"
        return None


class _Scram(ClientMechanism):
    def __init__(self, client: ScramClient) -> None:
        self._client = client
        self._step = 0

    def step(self, challenge: bytes | None) -> bytes | None:
        self._step += 1
        if self._step == 1:
            return self._client.first_message()
        if self._step == 2:
            return self._client.final_message(challenge or b"")
        self._client.verify_server_final(challenge or b"")
        return None


def _jaas_credentials(jaas: str | None) -> tuple[str, str, dict[str, str]]:
    if not jaas:
        return "", "", {}
    try:
        entry = parse_jaas_config(jaas)[0]
    except ValueError as exc:
        raise ConfigError("sasl.jaas.config", str(exc)) from None
    return entry.options.get("username", ""), entry.options.get("password", ""), entry.options


def client_security(
    get: Get, protocol_key: str = "security.protocol", mechanism_key: str = "sasl.mechanism"
) -> ClientSecurity:
    """The settings ``get`` reads (None for an unset key) as a ClientSecurity."""
    protocol = str(get(protocol_key) or "PLAINTEXT").upper()
    if protocol not in PROTOCOLS:
        raise ConfigError(protocol_key, f"unknown security protocol {protocol}")
    context = client_context(get) if protocol.endswith("SSL") else None
    if not protocol.startswith("SASL_"):
        return ClientSecurity(protocol, context)
    mechanism = str(get(mechanism_key) or GSSAPI).upper()
    username, password, options = _jaas_credentials(_str_or_none(get("sasl.jaas.config")))
    username = username or str(get("sasl.username") or "")
    password = password or str(get("sasl.password") or "")
    oauth = dict(options)
    librdkafka_oauth = _str_or_none(get("sasl.oauthbearer.config"))
    for item in (librdkafka_oauth or "").split():
        key, _, value = item.partition("=")
        if key == "principal":
            oauth["unsecuredLoginStringClaim_sub"] = value
        elif key == "lifeSeconds":
            oauth["unsecuredLoginLifetimeSeconds"] = value
    security = ClientSecurity(protocol, context, mechanism, username, password, oauth)
    security.mechanism_client()  # an unsupported mechanism fails here, not at connect
    return security


def _str_or_none(value: object) -> str | None:
    return None if value is None or value == "" else str(value)


def security_from_mapping(config: Mapping[str, object]) -> ClientSecurity:
    """From a client config dict (Kafka's dotted names)."""
    return client_security(config.get)


MechanismFactory = Callable[[], ClientMechanism]
