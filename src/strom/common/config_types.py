"""Config definitions: types, sources, validators and one config's parsing (Kafka's
ConfigDef). The broker's and topics' tables are in strom.common.config_defs and
strom.common.security_config."""

from __future__ import annotations

from collections.abc import Callable
from enum import IntEnum
from typing import ClassVar, Final

from strom.common.values import Value

LONG_MAX = 9_223_372_036_854_775_807
INT_MAX = 2_147_483_647


class ConfigType(IntEnum):
    """DescribeConfigs v3+ config types."""

    UNKNOWN = 0
    BOOLEAN = 1
    STRING = 2
    INT = 3
    SHORT = 4
    LONG = 5
    DOUBLE = 6
    LIST = 7
    CLASS = 8
    PASSWORD = 9


class ConfigSource(IntEnum):
    UNKNOWN = 0
    TOPIC_CONFIG = 1
    DYNAMIC_BROKER_CONFIG = 2
    DYNAMIC_DEFAULT_BROKER_CONFIG = 3
    STATIC_BROKER_CONFIG = 4
    DEFAULT_CONFIG = 5


class ConfigError(ValueError):
    """An unknown key or an invalid value; the message names the key."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.detail = message  # without the key (Kafka's own wording where it has one)


Validator = Callable[[object], str | None]


def at_least(lo: int) -> Validator:
    def check(v: object) -> str | None:
        return None if isinstance(v, int) and v >= lo else f"must be at least {lo}"

    return check


def one_of(*choices: str) -> Validator:
    def check(v: object) -> str | None:
        items = v if isinstance(v, list) else [v]
        bad = [x for x in items if x not in choices]
        return None if not bad else f"must be one of {', '.join(choices)}"

    return check


class ConfigDef(Value):
    __slots__ = (
        "default",
        "doc",
        "name",
        "no_effect",
        "read_only",
        "sensitive",
        "synonyms",
        "type",
        "validator",
    )
    FIELDS: ClassVar[tuple[str, ...]] = (
        "name",
        "type",
        "default",
        "validator",
        "synonyms",
        "sensitive",
        "read_only",
        "doc",
        "no_effect",
    )
    name: Final[str]
    type: Final[ConfigType]
    default: Final[object]  # parsed value or None
    validator: Final[Validator | None]
    synonyms: Final[tuple[str, ...]]  # broker keys, most specific first (topic configs)
    sensitive: Final[bool]
    read_only: Final[bool]
    doc: Final[str]
    # Broker configs only: None when strom obeys it; otherwise why setting it has no
    # effect in strom (logged as a warning at start when it is set).
    no_effect: Final[str | None]

    def __init__(
        self,
        name: str,
        type: ConfigType,
        default: object,
        validator: Validator | None = None,
        synonyms: tuple[str, ...] = (),
        sensitive: bool = False,
        read_only: bool = False,
        doc: str = "",
        no_effect: str | None = None,
    ) -> None:
        self.name = name
        self.type = type
        self.default = default
        self.validator = validator
        self.synonyms = synonyms
        self.sensitive = sensitive
        self.read_only = read_only
        self.doc = doc
        self.no_effect = no_effect

    def parse(self, raw: object) -> object:
        if raw is None:
            return None
        try:
            value = _parse_typed(self.type, raw)
        except (TypeError, ValueError):
            raise ConfigError(
                self.name, f"invalid value {raw!r} for a {self.type.name.lower()}"
            ) from None
        if self.validator is not None and value is not None:
            problem = self.validator(value)
            if problem:
                raise ConfigError(self.name, f"invalid value {raw!r}: {problem}")
        return value


def _parse_typed(t: ConfigType, raw: object) -> object:
    if t is ConfigType.BOOLEAN:
        if isinstance(raw, bool):
            return raw
        s = str(raw).strip().lower()
        if s not in ("true", "false"):
            raise ValueError(s)
        return s == "true"
    if t in (ConfigType.INT, ConfigType.SHORT, ConfigType.LONG):
        if isinstance(raw, bool):
            raise TypeError(raw)
        v = int(str(raw).strip())
        limit = {ConfigType.INT: INT_MAX, ConfigType.SHORT: 32767, ConfigType.LONG: LONG_MAX}[t]
        if not -limit - 1 <= v <= limit:
            raise ValueError(v)
        return v
    if t is ConfigType.DOUBLE:
        return float(str(raw).strip())
    if t is ConfigType.LIST:
        if isinstance(raw, list):
            return [str(x) for x in raw]
        s = str(raw).strip()
        return [x.strip() for x in s.split(",") if x.strip()] if s else []
    return str(raw).strip()


def format_value(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(value)
    return str(value)


BOOL, STR, INT, LONG, LST, DBL = (
    ConfigType.BOOLEAN,
    ConfigType.STRING,
    ConfigType.INT,
    ConfigType.LONG,
    ConfigType.LIST,
    ConfigType.DOUBLE,
)
PWD = ConfigType.PASSWORD
