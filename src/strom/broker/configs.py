"""DescribeConfigs, AlterConfigs and IncrementalAlterConfigs."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from strom.broker.broker import Broker
from strom.broker.handlers import handles
from strom.common.config import (
    ConfigDef,
    ConfigError,
    ConfigSource,
    ConfigType,
    format_value,
    validate_topic_configs,
)
from strom.common.config_defs import (
    BROKER_CONFIGS,
    DYNAMIC_BROKER_CONFIGS,
    TOPIC_CONFIGS,
    TOPIC_SYNONYMS,
)
from strom.common.names import topic_name_problem
from strom.common.security_config import listener_key_base, reconfigurable_listener_key
from strom.metadata.store import StoreError, TopicInfo
from strom.protocol.api_versions import ApiKey
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.frame import RequestHeader
from strom.protocol.generated.alter_configs import AlterConfigsRequest, AlterConfigsResponse
from strom.protocol.generated.describe_configs import (
    DescribeConfigsRequest,
    DescribeConfigsResponse,
)
from strom.protocol.generated.incremental_alter_configs import (
    IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse,
)

TOPIC = 2
BROKER = 4
BROKER_LOGGER = 8
SET, DELETE, APPEND, SUBTRACT = 0, 1, 2, 3
Entry = DescribeConfigsResponse.DescribeConfigsResourceResult
Synonym = DescribeConfigsResponse.DescribeConfigsSynonym

R = TypeVar("R")


def _topic_entries(
    broker: Broker, topic: TopicInfo, keys: list[str] | None, synonyms: bool
) -> list[Entry]:
    out = []
    for name, r in broker.config.resolve_topic(topic.configs).items():
        if keys is not None and name not in keys:
            continue
        out.append(
            Entry(
                name=name,
                value=format_value(r.value),
                read_only=False,
                is_default=r.source == ConfigSource.DEFAULT_CONFIG,
                config_source=r.source,
                is_sensitive=False,
                synonyms=[Synonym(n, v, s) for n, v, s in r.synonyms] if synonyms else [],
                config_type=r.definition.type,
                documentation=None,
            )
        )
    return out


def _broker_synonym_keys(name: str) -> list[str]:
    """The broker configs that set the same value as ``name`` (log.retention.ms,
    .minutes, .hours), most specific first; just ``name`` for most."""
    for synonyms in TOPIC_SYNONYMS.values():
        keys = [key for key, _ in synonyms]
        if name in keys:
            return keys
    return [name]


def _broker_entries(
    broker: Broker, keys: list[str] | None, synonyms: bool, *, cluster_default: bool
) -> list[Entry]:
    """A broker's configs (every one), or with ``cluster_default`` only the dynamic
    cluster-wide defaults that are set, as Kafka describes resource name ""."""
    cfg = broker.config
    names = sorted(cfg.dynamic_default) if cluster_default else list(BROKER_CONFIGS)
    if not cluster_default:  # a listener's stores changed at runtime
        names += sorted(k for k in cfg.dynamic_broker if k not in BROKER_CONFIGS)
    out = []
    for name in names:
        if keys is not None and name not in keys:
            continue
        d = BROKER_CONFIGS.get(name) or BROKER_CONFIGS[listener_key_base(name) or name]
        if cluster_default:
            value = format_value(cfg.dynamic_default[name])
            source = ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG
            chain = [(name, value, source)]
        else:
            value, source = format_value(cfg.get(name)), cfg.source_of(name)
            chain = cfg.synonyms(_broker_synonym_keys(name), name)
        sensitive = d.type == ConfigType.PASSWORD
        out.append(
            Entry(
                name=name,
                value=None if sensitive else value,
                read_only=name not in DYNAMIC_BROKER_CONFIGS
                and reconfigurable_listener_key(name) is None,
                is_default=source == ConfigSource.DEFAULT_CONFIG,
                config_source=source,
                is_sensitive=sensitive,
                synonyms=[Synonym(n, v, src) for n, v, src in chain] if synonyms else [],
                config_type=d.type,
                documentation=None,
            )
        )
    return out


def _check_broker_name(broker: Broker, name: str) -> None:
    if name not in ("", str(broker.node_id)):
        raise KafkaError(
            ErrorCode.INVALID_REQUEST,
            f"Unexpected broker id, expected {broker.node_id} or empty string, but received {name}",
        )


def _topic_or_raise(broker: Broker, name: str) -> TopicInfo:
    problem = topic_name_problem(name)
    if problem:
        raise KafkaError(ErrorCode.INVALID_TOPIC_EXCEPTION, problem)
    topic = broker.topic(name)
    if topic is None:
        raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"Topic {name} does not exist.")
    return topic


@handles(ApiKey.DESCRIBE_CONFIGS)
async def handle_describe_configs(
    broker: Broker, header: RequestHeader, req: DescribeConfigsRequest
) -> DescribeConfigsResponse:
    results = []
    for res in req.resources:
        out = DescribeConfigsResponse.DescribeConfigsResult(
            error_code=0,
            error_message=None,
            resource_type=res.resource_type,
            resource_name=res.resource_name,
        )
        keys = res.configuration_keys
        try:
            if res.resource_type == TOPIC:
                topic = _topic_or_raise(broker, res.resource_name)
                out.configs = _topic_entries(broker, topic, keys, req.include_synonyms)
            elif res.resource_type == BROKER:
                _check_broker_name(broker, res.resource_name)
                out.configs = _broker_entries(
                    broker, keys, req.include_synonyms, cluster_default=not res.resource_name
                )
            elif res.resource_type == BROKER_LOGGER:
                _check_broker_name(broker, res.resource_name)
            else:
                raise KafkaError(
                    ErrorCode.INVALID_REQUEST, f"Unsupported resource type {res.resource_type}"
                )
        except KafkaError as e:
            out.error_code, out.error_message = e.code, e.message
        results.append(out)
    return DescribeConfigsResponse(throttle_time_ms=0, results=results)


async def _apply_topic(
    broker: Broker, topic: TopicInfo, new: Mapping[str, str], validate_only: bool
) -> None:
    try:
        normalised = validate_topic_configs(new)
    except ConfigError as e:
        raise KafkaError(ErrorCode.INVALID_CONFIG, str(e)) from None
    if topic.internal and "compact" not in normalised.get("cleanup.policy", "compact"):
        raise KafkaError(
            ErrorCode.INVALID_CONFIG,
            f"Topic {topic.name} is a kafka internal topic: its cleanup.policy must include "
            "compact.",
        )
    if validate_only:
        return
    try:
        await broker.store_call(broker.store.set_topic_configs, topic.name, normalised)
    except StoreError as e:
        raise KafkaError(ErrorCode(e.code), e.message) from None


async def _apply_broker(
    broker: Broker, name: str, new: Mapping[str, str], validate_only: bool
) -> None:
    """Dynamic configs of this broker (``name`` its id) or of the cluster default
    (``name`` ""); Kafka answers INVALID_REQUEST for a config that cannot change at
    runtime or a bad value."""
    try:
        if validate_only:
            broker.check_dynamic_configs(bool(name), new)
        else:
            await broker.apply_dynamic_configs(bool(name), new)
    except ConfigError as e:
        raise KafkaError(ErrorCode.INVALID_REQUEST, e.detail) from None


def _incremental(current: dict[str, str], op: Any, defs: Mapping[str, ConfigDef]) -> None:
    name, value, kind = op.name, op.value, op.config_operation
    d = defs.get(name)
    if d is None and defs is BROKER_CONFIGS:  # a listener's setting: checked when applied
        d = defs.get(listener_key_base(name) or "")
    if d is None:
        kind = "topic" if defs is TOPIC_CONFIGS else "broker"
        raise KafkaError(ErrorCode.INVALID_CONFIG, f"Unknown {kind} config name: {name}")
    if kind == SET:
        if value is None:
            raise KafkaError(ErrorCode.INVALID_REQUEST, f"Null value not supported for : {name}")
        current[name] = value
    elif kind == DELETE:
        current.pop(name, None)
    elif kind in (APPEND, SUBTRACT):
        if d.type != ConfigType.LIST:
            raise KafkaError(
                ErrorCode.INVALID_CONFIG,
                f"Config value append is not allowed for config key: {name}",
            )
        base = current.get(name)  # "" is an empty list, not the default
        if base is None:
            items = list(d.default or [])  # type: ignore[call-overload]
        else:
            items = [x.strip() for x in base.split(",") if x.strip()]
        given = [x.strip() for x in (value or "").split(",") if x.strip()]
        if kind == APPEND:
            items += [x for x in given if x not in items]
        else:
            items = [x for x in items if x not in given]
        current[name] = ",".join(items)
    else:
        raise KafkaError(ErrorCode.INVALID_REQUEST, f"Unknown operation {kind}")


def _incremental_configs(
    current: Mapping[str, str], res: Any, defs: Mapping[str, ConfigDef]
) -> dict[str, str]:
    names = [c.name for c in res.configs]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise KafkaError(
            ErrorCode.INVALID_REQUEST, f"Error due to duplicate config keys : {sorted(dup)}"
        )
    new = dict(current)
    for op in res.configs:
        _incremental(new, op, defs)
    return new


def _replacement_configs(
    current: Mapping[str, str], res: Any, defs: Mapping[str, ConfigDef]
) -> dict[str, str]:
    new: dict[str, str] = {}
    for c in res.configs:
        if c.value is None:
            raise KafkaError(ErrorCode.INVALID_REQUEST, f"Null value not supported for : {c.name}")
        new[c.name] = c.value
    return new


NewConfigs = Callable[[Mapping[str, str], Any, Mapping[str, ConfigDef]], dict[str, str]]


async def _alter_resources(
    broker: Broker,
    resources: list[Any],
    make: Callable[..., R],
    new_configs: NewConfigs,
    validate_only: bool,
) -> list[R]:
    """Each resource's answer: a topic's or a broker's (dynamic) configs become
    ``new_configs`` of the current ones, validated, then stored unless
    ``validate_only``."""
    out = []
    for res in resources:
        code, message = 0, None
        try:
            if res.resource_type == TOPIC:
                topic = _topic_or_raise(broker, res.resource_name)
                new = new_configs(topic.configs, res, TOPIC_CONFIGS)
                await _apply_topic(broker, topic, new, validate_only)
            elif res.resource_type == BROKER:
                _check_broker_name(broker, res.resource_name)
                current = broker.store.broker_configs(res.resource_name)
                new = new_configs(current, res, BROKER_CONFIGS)
                await _apply_broker(broker, res.resource_name, new, validate_only)
            else:
                _reject_other(broker, res.resource_type, res.resource_name)
        except KafkaError as e:
            code, message = e.code, e.message
        out.append(
            make(
                error_code=code,
                error_message=message,
                resource_type=res.resource_type,
                resource_name=res.resource_name,
            )
        )
    return out


def _reject_other(broker: Broker, resource_type: int, name: str) -> None:
    if resource_type == BROKER_LOGGER:
        _check_broker_name(broker, name)
        raise KafkaError(
            ErrorCode.INVALID_REQUEST, "Broker logger levels cannot be changed in strom"
        )
    raise KafkaError(ErrorCode.INVALID_REQUEST, f"Unsupported resource type {resource_type}")


@handles(ApiKey.INCREMENTAL_ALTER_CONFIGS)
async def handle_incremental_alter_configs(
    broker: Broker, header: RequestHeader, req: IncrementalAlterConfigsRequest
) -> IncrementalAlterConfigsResponse:
    make = IncrementalAlterConfigsResponse.AlterConfigsResourceResponse
    out = await _alter_resources(
        broker, req.resources, make, _incremental_configs, req.validate_only
    )
    return IncrementalAlterConfigsResponse(throttle_time_ms=0, responses=out)


@handles(ApiKey.ALTER_CONFIGS)
async def handle_alter_configs(
    broker: Broker, header: RequestHeader, req: AlterConfigsRequest
) -> AlterConfigsResponse:
    make = AlterConfigsResponse.AlterConfigsResourceResponse
    out = await _alter_resources(
        broker, req.resources, make, _replacement_configs, req.validate_only
    )
    return AlterConfigsResponse(throttle_time_ms=0, responses=out)
