"""Broker config layers: dynamic per-broker > dynamic cluster default > static > default."""

from __future__ import annotations

from pathlib import Path

import pytest

from strom.common.config import BrokerConfig, ConfigError, ConfigSource


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


def test_a_bad_stored_dynamic_value_is_dropped_alone(tmp_path: Path) -> None:
    from strom.broker.api import Broker

    settings = {"listeners": "PLAINTEXT://127.0.0.1:9", "log.dirs": str(tmp_path)}
    first = Broker(BrokerConfig(settings))
    first.metadata.set_broker_configs("", {"log.retention.ms": "5000", "message.max.bytes": "x"})
    first.shutdown()
    second = Broker(BrokerConfig(settings))
    try:
        assert second.config.dynamic_default == {"log.retention.ms": 5000}
        with pytest.raises(ConfigError):
            second.apply_dynamic_configs(False, {"log.cleanup.policy": "bogus"})
        assert second.config.dynamic_default == {"log.retention.ms": 5000}
        assert second.metadata.broker_configs("")["message.max.bytes"] == "x"  # untouched
    finally:
        second.shutdown()
