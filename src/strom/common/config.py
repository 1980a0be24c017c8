"""A broker's configuration, parsed and validated in layers, and topic config
overrides checked against the tables in strom.common.config_defs.

Broker configs come from server.properties plus ``--override key=value``, with
dynamic values from AlterConfigs over them; topic configs from
CreateTopics/AlterConfigs, resolved against their broker synonyms as DescribeConfigs
reports them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar, Final

from strom.common.config_defs import (
    BROKER_CONFIGS,
    DYNAMIC_BROKER_CONFIGS,
    EMBEDDED_DEFAULTS,
    REFUSED_BROKER_CONFIGS,
    TOPIC_CONFIGS,
    TOPIC_SYNONYMS,
)
from strom.common.config_types import (
    INT_MAX,
    LONG_MAX,
    ConfigDef,
    ConfigError,
    ConfigSource,
    ConfigType,
    Validator,
    at_least,
    format_value,
    one_of,
)

# Java .properties parsing lives in strom.common.properties; re-exported here.
from strom.common.properties import parse_properties as parse_properties
from strom.common.security_config import (
    RECONFIGURABLE_SSL_PASSWORDS,
    listener_key_base,
    reconfigurable_listener_key,
)
from strom.common.values import Value

__all__ = [
    "INT_MAX",
    "LONG_MAX",
    "ConfigDef",
    "ConfigError",
    "ConfigSource",
    "ConfigType",
    "Validator",
    "at_least",
    "format_value",
    "one_of",
]


class ResolvedConfig(Value):
    __slots__ = ("definition", "name", "source", "synonyms", "value")
    FIELDS: ClassVar[tuple[str, ...]] = ("name", "value", "source", "definition", "synonyms")
    name: Final[str]
    value: Final[object]
    source: Final[ConfigSource]
    definition: Final[ConfigDef]
    synonyms: Final[tuple[tuple[str, str | None, ConfigSource], ...]]

    def __init__(
        self,
        name: str,
        value: object,
        source: ConfigSource,
        definition: ConfigDef,
        synonyms: tuple[tuple[str, str | None, ConfigSource], ...] = (),
    ) -> None:
        self.name = name
        self.value = value
        self.source = source
        self.definition = definition
        self.synonyms = synonyms


class BrokerConfig:
    """Parsed broker configuration: per-broker dynamic values over cluster-wide dynamic
    defaults over the static (file and command line) values over Kafka's defaults."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self.explicit: dict[str, object] = {}
        for key, raw in values.items():
            if key in REFUSED_BROKER_CONFIGS:
                raise ConfigError(key, REFUSED_BROKER_CONFIGS[key])
            d = BROKER_CONFIGS.get(key) or BROKER_CONFIGS.get(listener_key_base(key) or "")
            if d is None:
                raise ConfigError(key, "unknown broker config")
            self.explicit[key] = ConfigDef(key, d.type, None, d.validator).parse(raw)
        self.embedded = self.explicit.get("zookeeper.connect") in (None, "")
        self.dynamic_broker: dict[str, object] = {}  # this broker (resource name: its id)
        self.dynamic_default: dict[str, object] = {}  # the cluster default (name "")

    @staticmethod
    def parse_dynamic(values: Mapping[str, str | None]) -> dict[str, object]:
        """Checked dynamic values: ConfigError naming a config that cannot change at
        runtime (Kafka: "Cannot update these configs dynamically") or a bad value."""
        for key in values:
            if listener_key_base(key) in RECONFIGURABLE_SSL_PASSWORDS:
                raise ConfigError(
                    key,
                    "strom keeps no password configs dynamically (Kafka encrypts them with "
                    "password.encoder.secret): give the store's key unencrypted in a PEM file",
                )
        fixed = sorted(
            key
            for key in values
            if key not in DYNAMIC_BROKER_CONFIGS and reconfigurable_listener_key(key) is None
        )
        if fixed:
            raise ConfigError(
                fixed[0], f"Cannot update these configs dynamically: Set({', '.join(fixed)})"
            )
        return {
            key: BROKER_CONFIGS[reconfigurable_listener_key(key) or key].parse(raw)
            for key, raw in values.items()
        }

    def set_dynamic(self, per_broker: bool, values: Mapping[str, str | None]) -> None:
        """Replace the dynamic configs of this broker or of the cluster default (a
        listener's stores only per broker, as Kafka's per-broker configs)."""
        parsed = self.parse_dynamic(values)
        per_broker_only = sorted(k for k in parsed if reconfigurable_listener_key(k))
        if per_broker_only and not per_broker:
            raise ConfigError(
                per_broker_only[0],
                "Cannot update these configs at default cluster level, broker id must be "
                f"specified: Set({', '.join(per_broker_only)})",
            )
        if per_broker:
            self.dynamic_broker = parsed
        else:
            self.dynamic_default = parsed

    def with_dynamic(self, per_broker: bool, values: Mapping[str, str | None]) -> BrokerConfig:
        """A copy with these dynamic configs instead (this one is unchanged)."""
        trial = BrokerConfig({})
        trial.explicit, trial.embedded = self.explicit, self.embedded
        trial.dynamic_broker, trial.dynamic_default = self.dynamic_broker, self.dynamic_default
        trial.set_dynamic(per_broker, values)
        return trial

    def _layers(self) -> tuple[tuple[Mapping[str, object], ConfigSource], ...]:
        return (
            (self.dynamic_broker, ConfigSource.DYNAMIC_BROKER_CONFIG),
            (self.dynamic_default, ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG),
            (self.explicit, ConfigSource.STATIC_BROKER_CONFIG),
        )

    def source_of(self, key: str) -> ConfigSource:
        """Where the value :meth:`get` returns for ``key`` comes from."""
        for layer, source in self._layers():
            if layer.get(key) is not None:
                return source
        return ConfigSource.DEFAULT_CONFIG

    def get(self, key: str) -> object:
        for layer, _ in self._layers():
            if layer.get(key) is not None:
                return layer[key]
        return self.default(key)

    def default(self, key: str) -> object:
        """Kafka's default of ``key``; for the embedded single node, the defaults of the
        internal topics' replication settings are 1 (EMBEDDED_DEFAULTS)."""
        if self.embedded and key in EMBEDDED_DEFAULTS:
            return EMBEDDED_DEFAULTS[key]
        return BROKER_CONFIGS[key].default

    def listener_get(self, listener: str, key: str, mechanism: str | None = None) -> object:
        """``key`` for one listener: ``listener.name.<listener>.<mechanism>.<key>`` (SASL
        settings), ``listener.name.<listener>.<key>``, then ``key`` itself."""
        prefix = f"listener.name.{listener.lower()}."
        keys = [f"{prefix}{mechanism.lower()}.{key}"] if mechanism else []
        for scoped in (*keys, prefix + key):
            for layer, _ in self._layers():
                if layer.get(scoped) is not None:
                    return layer[scoped]
        return self.get(key)

    def get_int(self, key: str) -> int:
        v = self.get(key)
        assert isinstance(v, int)
        return v

    def get_str(self, key: str) -> str | None:
        v = self.get(key)
        return None if v is None else str(v)

    def get_bool(self, key: str) -> bool:
        return bool(self.get(key))

    def get_list(self, key: str) -> list[str]:
        v = self.get(key)
        return list(v) if isinstance(v, list) else []

    @property
    def node_id(self) -> int:
        """``node.id`` or ``broker.id`` (0 is a valid id); 1 when neither is set on the
        embedded single node, -1 in a cluster (an id generated in ZooKeeper when
        ``broker.id.generation.enable``). ConfigError for a negative id, or for
        node.id and broker.id that differ."""
        node_id = self.explicit.get("node.id")
        broker_id = self.explicit.get("broker.id")
        for key, value in (("node.id", node_id), ("broker.id", broker_id)):
            if isinstance(value, int) and value < 0 and not (value == -1 and not self.embedded):
                raise ConfigError(key, f"invalid value {value}: a broker id must be 0 or more")
        if isinstance(node_id, int) and isinstance(broker_id, int) and node_id != broker_id:
            raise ConfigError(
                "node.id", f"node.id {node_id} and broker.id {broker_id} must be the same"
            )
        value = node_id if isinstance(node_id, int) else broker_id
        if isinstance(value, int) and value >= 0:
            return value
        return 1 if self.embedded else -1

    def no_effect_settings(self) -> list[tuple[str, str]]:
        """(key, why) of each explicitly set config that strom accepts but does not obey."""
        return [
            (key, d.no_effect)
            for key, d in BROKER_CONFIGS.items()
            if d.no_effect and key in self.explicit
        ]

    @property
    def log_dirs(self) -> list[str]:
        return self.get_list("log.dirs") or self.get_list("log.dir")

    def topic_default(self, name: str) -> tuple[object, ConfigSource, str | None]:
        """Broker-level value of a topic config: (value, source, synonym key). The first
        synonym (most specific unit first) set in any layer wins, as in Kafka's merged
        broker properties."""
        for key, factor in TOPIC_SYNONYMS[name]:
            for layer, source in self._layers():
                v = layer.get(key)
                if v is not None:
                    if isinstance(v, int) and factor != 1:
                        v = -1 if v < 0 and name == "retention.ms" else v * factor
                    return v, source, key  # negative hours/minutes: unlimited, as Kafka
        return TOPIC_CONFIGS[name].default, ConfigSource.DEFAULT_CONFIG, None

    def synonyms(
        self, keys: Sequence[str], primary: str
    ) -> list[tuple[str, str | None, ConfigSource]]:
        """Kafka's configSynonyms: every layer's value of ``keys`` (dynamic broker,
        dynamic default, static, then Kafka's default), from ``primary`` on."""
        out: list[tuple[str, str | None, ConfigSource]] = [
            (key, format_value(layer[key]), source)
            for layer, source in self._layers()
            for key in keys
            if layer.get(key) is not None
        ]
        out += [
            (key, format_value(self.default(key)), ConfigSource.DEFAULT_CONFIG)
            for key in keys
            if key in BROKER_CONFIGS and self.default(key) is not None
        ]
        while out and out[0][0] != primary:
            out.pop(0)
        return out

    def resolve_topic(self, overrides: Mapping[str, str]) -> dict[str, ResolvedConfig]:
        """Every topic config's value, source and synonyms, as Kafka's DescribeConfigs
        reports them: the topic override, then the broker synonyms that have a value,
        from the config's own broker name on (so retention.ms lists no
        log.retention.hours); the source is the first synonym's."""
        out: dict[str, ResolvedConfig] = {}
        for name, d in TOPIC_CONFIGS.items():
            value, _, _ = self.topic_default(name)
            keys = [key for key, _ in TOPIC_SYNONYMS[name]]
            synonyms: list[tuple[str, str | None, ConfigSource]] = []
            if name in overrides:
                synonyms.append((name, overrides[name], ConfigSource.TOPIC_CONFIG))
                value = d.parse(overrides[name])
            if keys:
                synonyms += self.synonyms(keys, keys[0])
            source = synonyms[0][2] if synonyms else ConfigSource.DEFAULT_CONFIG
            out[name] = ResolvedConfig(name, value, source, d, tuple(synonyms))
        return out

    def topic_config_strings(self, overrides: Mapping[str, str]) -> dict[str, str]:
        """Effective topic config as Kafka-named strings (for storage's LogConfig)."""
        return {k: format_value(r.value) or "" for k, r in self.resolve_topic(overrides).items()}


def validate_topic_configs(configs: Mapping[str, str | None]) -> dict[str, str]:
    """Check names and values of topic config overrides; return them normalised."""
    out: dict[str, str] = {}
    for key, raw in configs.items():
        d = TOPIC_CONFIGS.get(key)
        if d is None:
            raise ConfigError(key, "unknown topic config")
        if raw is None:
            raise ConfigError(key, "null value not allowed")
        out[key] = format_value(d.parse(raw)) or ""
    return out
