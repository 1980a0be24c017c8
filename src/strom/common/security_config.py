"""The security-related broker configs Kafka knows (KafkaConfig, BrokerSecurityConfigs,
SslConfigs, SaslConfigs, the authorizers), with Kafka's defaults.

Every one is accepted, listed by DescribeConfigs and checked; those strom does not
obey say why (``no_effect``). A ``listener.name.<listener>.`` prefix (and for SASL
settings ``listener.name.<listener>.<mechanism>.``) scopes a setting to one
listener, as in Kafka: :func:`listener_key_base` strips it.
"""

from __future__ import annotations

from strom.common.config_types import (
    BOOL,
    DBL,
    INT,
    LONG,
    LST,
    PWD,
    STR,
    ConfigDef,
    at_least,
    one_of,
)

_KERBEROS = "strom has no GSSAPI (Kerberos) mechanism; a listener enabling it is refused"
_JAVA_SSL = "strom's TLS is Python's ssl module (OpenSSL), configured from PEM files"
_OAUTH_HTTPS = (
    "strom's OAUTHBEARER validates unsecured JWS tokens only (Kafka's default handler); "
    "there is no JWKS or token endpoint"
)
_TOKENS = "strom has no delegation tokens"
_ZK_TLS = "strom connects to ZooKeeper through kazoo without TLS or ZooKeeper ACLs"
_ENCODER = "strom stores no dynamic password configs, so nothing is encoded"
_NEGOTIATED = "Python's TLS context negotiates the highest of ssl.enabled.protocols"
_STATIC_TLS = "a key store changed at runtime is not compared with the one it replaces"
_LOGIN = (
    "strom's clients log in for each connection (a fresh unsecured OAUTHBEARER token); "
    "there is no login to refresh"
)

AUTHORIZER_CLASSES = (
    "kafka.security.authorizer.AclAuthorizer",
    "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
    "kafka.security.auth.SimpleAclAuthorizer",
)
PRINCIPAL_BUILDER = "org.apache.kafka.common.security.authenticator.DefaultKafkaPrincipalBuilder"
SSL_PROTOCOLS = ("TLSv1.2", "TLSv1.3", "TLS", "TLSv1.1", "TLSv1")

SECURITY_CONFIGS: tuple[ConfigDef, ...] = (
    # -- authorization
    ConfigDef("authorizer.class.name", STR, "", one_of("", *AUTHORIZER_CLASSES)),
    ConfigDef("super.users", STR, None),
    ConfigDef("allow.everyone.if.no.acl.found", BOOL, False),
    ConfigDef("early.start.listeners", STR, None, no_effect="every listener starts at once"),
    # -- authentication in general
    ConfigDef("principal.builder.class", STR, PRINCIPAL_BUILDER, one_of(PRINCIPAL_BUILDER)),
    ConfigDef("connections.max.reauth.ms", LONG, 0, at_least(0)),
    ConfigDef("connection.failed.authentication.delay.ms", INT, 100, at_least(0)),
    ConfigDef("security.providers", STR, None, no_effect=_JAVA_SSL),
    # -- TLS
    ConfigDef("ssl.protocol", STR, "TLSv1.3", one_of(*SSL_PROTOCOLS), no_effect=_NEGOTIATED),
    ConfigDef("ssl.provider", STR, None, no_effect=_JAVA_SSL),
    ConfigDef("ssl.cipher.suites", LST, []),
    ConfigDef("ssl.enabled.protocols", LST, ["TLSv1.2", "TLSv1.3"], one_of(*SSL_PROTOCOLS)),
    ConfigDef("ssl.keystore.type", STR, "JKS", one_of("JKS", "PKCS12", "PEM")),
    ConfigDef("ssl.keystore.location", STR, None),
    ConfigDef("ssl.keystore.password", PWD, None),
    ConfigDef("ssl.key.password", PWD, None),
    ConfigDef("ssl.keystore.key", PWD, None),
    ConfigDef("ssl.keystore.certificate.chain", PWD, None),
    ConfigDef("ssl.truststore.type", STR, "JKS", one_of("JKS", "PKCS12", "PEM")),
    ConfigDef("ssl.truststore.location", STR, None),
    ConfigDef("ssl.truststore.password", PWD, None, no_effect="PEM trust stores have no password"),
    ConfigDef("ssl.truststore.certificates", PWD, None),
    ConfigDef("ssl.keymanager.algorithm", STR, "SunX509", no_effect=_JAVA_SSL),
    ConfigDef("ssl.trustmanager.algorithm", STR, "PKIX", no_effect=_JAVA_SSL),
    ConfigDef("ssl.endpoint.identification.algorithm", STR, "https"),
    ConfigDef("ssl.secure.random.implementation", STR, None, no_effect=_JAVA_SSL),
    ConfigDef("ssl.client.auth", STR, "none", one_of("none", "requested", "required")),
    ConfigDef("ssl.principal.mapping.rules", STR, "DEFAULT"),
    ConfigDef("ssl.engine.factory.class", STR, None, no_effect=_JAVA_SSL),
    ConfigDef("ssl.allow.dn.changes", BOOL, False, no_effect=_STATIC_TLS),
    ConfigDef("ssl.allow.san.changes", BOOL, False, no_effect=_STATIC_TLS),
    # -- SASL
    ConfigDef("sasl.enabled.mechanisms", LST, ["GSSAPI"]),
    ConfigDef("sasl.mechanism.inter.broker.protocol", STR, "GSSAPI"),
    ConfigDef("sasl.jaas.config", PWD, None),
    ConfigDef("sasl.server.max.receive.size", INT, 524_288, at_least(1)),
    ConfigDef("sasl.server.callback.handler.class", STR, None, no_effect=_OAUTH_HTTPS),
    ConfigDef("sasl.client.callback.handler.class", STR, None, no_effect=_OAUTH_HTTPS),
    ConfigDef("sasl.login.class", STR, None, no_effect=_OAUTH_HTTPS),
    ConfigDef("sasl.login.callback.handler.class", STR, None, no_effect=_OAUTH_HTTPS),
    ConfigDef("sasl.login.refresh.window.factor", DBL, 0.8, no_effect=_LOGIN),
    ConfigDef("sasl.login.refresh.window.jitter", DBL, 0.05, no_effect=_LOGIN),
    ConfigDef("sasl.login.refresh.min.period.seconds", INT, 60, no_effect=_LOGIN),
    ConfigDef("sasl.login.refresh.buffer.seconds", INT, 300, no_effect=_LOGIN),
    ConfigDef("sasl.login.connect.timeout.ms", INT, None, no_effect=_OAUTH_HTTPS),
    ConfigDef("sasl.login.read.timeout.ms", INT, None, no_effect=_OAUTH_HTTPS),
    ConfigDef("sasl.login.retry.backoff.max.ms", LONG, 10_000, no_effect=_OAUTH_HTTPS),
    ConfigDef("sasl.login.retry.backoff.ms", LONG, 100, no_effect=_OAUTH_HTTPS),
    ConfigDef("sasl.kerberos.service.name", STR, None, no_effect=_KERBEROS),
    ConfigDef("sasl.kerberos.kinit.cmd", STR, "/usr/bin/kinit", no_effect=_KERBEROS),
    ConfigDef("sasl.kerberos.ticket.renew.window.factor", DBL, 0.8, no_effect=_KERBEROS),
    ConfigDef("sasl.kerberos.ticket.renew.jitter", DBL, 0.05, no_effect=_KERBEROS),
    ConfigDef("sasl.kerberos.min.time.before.relogin", LONG, 60_000, no_effect=_KERBEROS),
    ConfigDef("sasl.kerberos.principal.to.local.rules", LST, ["DEFAULT"], no_effect=_KERBEROS),
    ConfigDef("sasl.oauthbearer.scope.claim.name", STR, "scope", no_effect=_OAUTH_HTTPS),
    ConfigDef("sasl.oauthbearer.sub.claim.name", STR, "sub", no_effect=_OAUTH_HTTPS),
    ConfigDef("sasl.oauthbearer.token.endpoint.url", STR, None, no_effect=_OAUTH_HTTPS),
    ConfigDef("sasl.oauthbearer.jwks.endpoint.url", STR, None, no_effect=_OAUTH_HTTPS),
    ConfigDef("sasl.oauthbearer.jwks.endpoint.refresh.ms", LONG, 3_600_000, no_effect=_OAUTH_HTTPS),
    ConfigDef(
        "sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms", LONG, 10_000, no_effect=_OAUTH_HTTPS
    ),
    ConfigDef("sasl.oauthbearer.jwks.endpoint.retry.backoff.ms", LONG, 100, no_effect=_OAUTH_HTTPS),
    ConfigDef("sasl.oauthbearer.clock.skew.seconds", INT, 30, no_effect=_OAUTH_HTTPS),
    ConfigDef("sasl.oauthbearer.expected.audience", LST, None, no_effect=_OAUTH_HTTPS),
    ConfigDef("sasl.oauthbearer.expected.issuer", STR, None, no_effect=_OAUTH_HTTPS),
    ConfigDef("sasl.oauthbearer.header.urlencode", BOOL, False, no_effect=_OAUTH_HTTPS),
    ConfigDef("sasl.oauthbearer.jwt.retriever.class", STR, None, no_effect=_OAUTH_HTTPS),
    ConfigDef("sasl.oauthbearer.jwt.validator.class", STR, None, no_effect=_OAUTH_HTTPS),
    # -- delegation tokens
    ConfigDef("delegation.token.master.key", PWD, None, no_effect=_TOKENS),
    ConfigDef("delegation.token.secret.key", PWD, None, no_effect=_TOKENS),
    ConfigDef("delegation.token.max.lifetime.ms", LONG, 604_800_000, no_effect=_TOKENS),
    ConfigDef("delegation.token.expiry.time.ms", LONG, 86_400_000, no_effect=_TOKENS),
    ConfigDef("delegation.token.expiry.check.interval.ms", LONG, 3_600_000, no_effect=_TOKENS),
    # -- dynamic password encoding
    ConfigDef("password.encoder.secret", PWD, None, no_effect=_ENCODER),
    ConfigDef("password.encoder.old.secret", PWD, None, no_effect=_ENCODER),
    ConfigDef("password.encoder.keyfactory.algorithm", STR, None, no_effect=_ENCODER),
    ConfigDef("password.encoder.cipher.algorithm", STR, "AES/CBC/PKCS5Padding", no_effect=_ENCODER),
    ConfigDef("password.encoder.key.length", INT, 128, no_effect=_ENCODER),
    ConfigDef("password.encoder.iterations", INT, 4096, no_effect=_ENCODER),
    # -- ZooKeeper client security
    ConfigDef("zookeeper.set.acl", BOOL, False, no_effect=_ZK_TLS),
    ConfigDef("zookeeper.ssl.client.enable", BOOL, False, no_effect=_ZK_TLS),
    ConfigDef("zookeeper.clientCnxnSocket", STR, None, no_effect=_ZK_TLS),
    ConfigDef("zookeeper.ssl.keystore.location", STR, None, no_effect=_ZK_TLS),
    ConfigDef("zookeeper.ssl.keystore.password", PWD, None, no_effect=_ZK_TLS),
    ConfigDef("zookeeper.ssl.keystore.type", STR, None, no_effect=_ZK_TLS),
    ConfigDef("zookeeper.ssl.truststore.location", STR, None, no_effect=_ZK_TLS),
    ConfigDef("zookeeper.ssl.truststore.password", PWD, None, no_effect=_ZK_TLS),
    ConfigDef("zookeeper.ssl.truststore.type", STR, None, no_effect=_ZK_TLS),
    ConfigDef("zookeeper.ssl.protocol", STR, "TLSv1.2", no_effect=_ZK_TLS),
    ConfigDef("zookeeper.ssl.enabled.protocols", LST, None, no_effect=_ZK_TLS),
    ConfigDef("zookeeper.ssl.cipher.suites", LST, None, no_effect=_ZK_TLS),
    ConfigDef("zookeeper.ssl.endpoint.identification.enable", BOOL, True, no_effect=_ZK_TLS),
    ConfigDef("zookeeper.ssl.crl.enable", BOOL, False, no_effect=_ZK_TLS),
    ConfigDef("zookeeper.ssl.ocsp.enable", BOOL, False, no_effect=_ZK_TLS),
)

# Settings a ``listener.name.<listener>.`` prefix may scope (Kafka: the SSL and SASL
# settings and connections.max.reauth.ms).
LISTENER_SCOPED = frozenset(
    d.name
    for d in SECURITY_CONFIGS
    if d.name.startswith(("ssl.", "sasl.")) or d.name == "connections.max.reauth.ms"
) | {"max.connections", "max.connection.creation.rate", "connections.max.idle.ms"}


def listener_key_base(key: str) -> str | None:
    """``listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config`` -> ``sasl.jaas.config``;
    None when ``key`` has no listener prefix or names no listener-scoped setting."""
    if not key.startswith("listener.name."):
        return None
    rest = key[len("listener.name.") :]
    _, dot, tail = rest.partition(".")
    if not dot:
        return None
    if tail in LISTENER_SCOPED:
        return tail
    _, dot, tail = tail.partition(".")  # a SASL mechanism
    return tail if dot and tail in LISTENER_SCOPED else None


# Kafka's SslConfigs.RECONFIGURABLE_CONFIGS: a listener's key and trust stores may change
# at runtime, per broker, with the listener prefix (certificates are rotated this way).
# The password ones are refused: strom does not keep password configs dynamically
# (Kafka stores them encrypted with password.encoder.secret).
RECONFIGURABLE_SSL = frozenset(
    {"ssl.keystore.type", "ssl.keystore.location", "ssl.truststore.type", "ssl.truststore.location"}
)
RECONFIGURABLE_SSL_PASSWORDS = frozenset(
    {
        "ssl.keystore.password",
        "ssl.key.password",
        "ssl.truststore.password",
        "ssl.keystore.key",
        "ssl.keystore.certificate.chain",
        "ssl.truststore.certificates",
    }
)


def reconfigurable_listener_key(key: str) -> str | None:
    """The setting of a ``listener.name.<listener>.`` key that may change at runtime."""
    base = listener_key_base(key)
    return base if base in RECONFIGURABLE_SSL else None


def listener_of(key: str) -> str:
    """``listener.name.ssl.ssl.keystore.location`` -> ``SSL``."""
    return key[len("listener.name.") :].partition(".")[0].upper()
