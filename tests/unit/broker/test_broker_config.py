"""Broker config layers: dynamic per-broker > dynamic cluster default > static > default."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from strom.common.config import BrokerConfig, ConfigError, ConfigSource


def test_fetch_max_bytes_is_static() -> None:
    """The broker reads fetch.max.bytes once (Broker.fetch_max_bytes): were it made
    dynamic, a change would have to reach that copy."""
    cfg = BrokerConfig({})
    with pytest.raises(ConfigError, match="dynamically"):
        cfg.set_dynamic(True, {"fetch.max.bytes": "2048"})


def test_dynamic_layers_and_topic_defaults() -> None:
    cfg = BrokerConfig({"log.retention.hours": "24", "message.max.bytes": "5000"})
    assert cfg.topic_default("retention.ms")[:2] == (86_400_000, ConfigSource.STATIC_BROKER_CONFIG)
    cfg.set_dynamic(False, {"log.retention.minutes": "30"})  # a more specific unit wins
    assert cfg.topic_default("retention.ms")[:2] == (
        1_800_000,
        ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG,
    )
    cfg.set_dynamic(True, {"message.max.bytes": "7000"})
    assert cfg.get("message.max.bytes") == 7000
    assert cfg.source_of("message.max.bytes") == ConfigSource.DYNAMIC_BROKER_CONFIG
    resolved = cfg.resolve_topic({})["max.message.bytes"]
    assert (resolved.value, resolved.source) == (7000, ConfigSource.DYNAMIC_BROKER_CONFIG)
    assert resolved.synonyms == (
        ("message.max.bytes", "7000", ConfigSource.DYNAMIC_BROKER_CONFIG),
        ("message.max.bytes", "5000", ConfigSource.STATIC_BROKER_CONFIG),
        ("message.max.bytes", "1048588", ConfigSource.DEFAULT_CONFIG),
    )
    cfg.set_dynamic(True, {})
    assert cfg.get("message.max.bytes") == 5000


def test_only_topic_defaults_change_at_runtime() -> None:
    cfg = BrokerConfig({})
    with pytest.raises(ConfigError, match="Cannot update these configs dynamically"):
        cfg.set_dynamic(False, {"num.partitions": "3"})
    with pytest.raises(ConfigError):
        cfg.set_dynamic(True, {"log.segment.bytes": "tiny"})
    assert cfg.dynamic_broker == {} and cfg.dynamic_default == {}


def test_kafkas_runtime_settings_without_effect_here_change_at_runtime() -> None:
    from strom.common.config_defs import BROKER_CONFIGS, KAFKA_DYNAMIC_WITHOUT_EFFECT

    assert all(BROKER_CONFIGS[key].no_effect for key in KAFKA_DYNAMIC_WITHOUT_EFFECT)
    cfg = BrokerConfig({})
    cfg.set_dynamic(True, {"sasl.kerberos.min.time.before.relogin": "58000"})
    assert cfg.get("sasl.kerberos.min.time.before.relogin") == 58_000
    assert cfg.source_of("sasl.kerberos.min.time.before.relogin") == (
        ConfigSource.DYNAMIC_BROKER_CONFIG
    )
    with pytest.raises(ConfigError):  # values are still checked
        cfg.set_dynamic(True, {"num.io.threads": "many"})
    with pytest.raises(ConfigError, match="Cannot update these configs dynamically"):
        cfg.set_dynamic(True, {"sasl.enabled.mechanisms": "PLAIN"})  # has an effect here


def test_a_bad_stored_dynamic_value_is_dropped_alone(tmp_path: Path) -> None:
    from strom.testing.inprocess import open_broker

    settings = {"listeners": "PLAINTEXT://127.0.0.1:9", "log.dirs": str(tmp_path)}
    first = open_broker(BrokerConfig(settings))
    first.store.set_broker_configs("", {"log.retention.ms": "5000", "message.max.bytes": "x"})
    first.shutdown()
    second = open_broker(BrokerConfig(settings))
    try:
        assert second.config.dynamic_default == {"log.retention.ms": 5000}
        with pytest.raises(ConfigError):
            asyncio.run(second.apply_dynamic_configs(False, {"log.cleanup.policy": "nonsense"}))
        assert second.config.dynamic_default == {"log.retention.ms": 5000}
        assert second.store.broker_configs("")["message.max.bytes"] == "x"  # untouched
    finally:
        second.shutdown()


def test_consumer_group_settings() -> None:
    from types import SimpleNamespace

    from strom.broker.group_runtime import group_config

    def config(**values: str) -> object:
        return group_config(SimpleNamespace(config=BrokerConfig(values)))  # type: ignore[arg-type]

    defaults = config()
    assert defaults.rebalance_protocols == ("classic", "consumer")  # type: ignore[attr-defined]
    assert defaults.consumer_session_timeout_ms == 45_000  # type: ignore[attr-defined]
    assert defaults.consumer_heartbeat_interval_ms == 5_000  # type: ignore[attr-defined]
    assert defaults.consumer_assignors == ("uniform", "range")  # type: ignore[attr-defined]
    assert defaults.consumer_migration_policy == "bidirectional"  # type: ignore[attr-defined]
    named = config(
        **{"group.consumer.assignors": "org.apache.kafka.coordinator.group.assignor.RangeAssignor"}
    )
    assert named.consumer_assignors == ("range",)  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="between 45000 and 60000"):
        config(**{"group.consumer.session.timeout.ms": "10000"})
    with pytest.raises(ConfigError, match=r"less than group\.consumer\.session\.timeout\.ms"):
        config(
            **{
                "group.consumer.min.session.timeout.ms": "5000",
                "group.consumer.session.timeout.ms": "5000",
                "group.consumer.heartbeat.interval.ms": "5000",
            }
        )
    with pytest.raises(ConfigError, match="classic"):
        BrokerConfig({"group.coordinator.rebalance.protocols": "consumer"})
    with pytest.raises(ConfigError):
        BrokerConfig({"group.consumer.assignors": "sticky"})
    with pytest.raises(ConfigError):
        BrokerConfig({"group.consumer.migration.policy": "sideways"})
    assert config(**{"group.consumer.migration.policy": "UPGRADE"}).consumer_migration_policy == (  # type: ignore[attr-defined]
        "upgrade"
    )
