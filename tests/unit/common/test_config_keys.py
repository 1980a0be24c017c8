"""No broker setting is accepted and then ignored: each one strom accepts is read
somewhere in the code, is the broker-wide default of a topic config, or says why it
has no effect (logged at start). Keys of modes strom does not have are refused."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import strom.common
from strom.common.config import BrokerConfig, ConfigError
from strom.common.config_defs import BROKER_CONFIGS, REFUSED_BROKER_CONFIGS, TOPIC_SYNONYMS

SRC = Path(strom.common.__file__).parent.parent
# Read by BrokerConfig itself (the module the scan leaves out).
READ_BY_CONFIG = {
    "log.dir",  # log.dirs falls back to it
    "principal.builder.class",  # its validator admits only Kafka's default builder
}


def _source_without_config_module() -> str:
    parts = []
    for path in SRC.rglob("*.py"):
        tables = ("config.py", "config_defs.py", "security_config.py")
        if "generated" in path.parts or (path.name in tables and path.parent.name == "common"):
            continue
        parts.append(path.read_text())
    return "\n".join(parts)


def test_every_broker_config_is_obeyed_or_says_why_not() -> None:
    source = _source_without_config_module()
    synonyms = {key for syn in TOPIC_SYNONYMS.values() for key, _ in syn}
    ignored = [
        key
        for key, d in BROKER_CONFIGS.items()
        if d.no_effect is None
        and key not in synonyms
        and key not in READ_BY_CONFIG
        and not re.search(rf"[\"']{re.escape(key)}[\"']", source)
    ]
    assert ignored == [], f"accepted but never read: {ignored}"


@pytest.mark.parametrize("key", sorted(REFUSED_BROKER_CONFIGS))
def test_keys_of_other_modes_are_refused(key: str) -> None:
    with pytest.raises(ConfigError, match="KRaft"):
        BrokerConfig({key: "x"})


def test_broker_id_zero_is_zero_and_negative_ids_are_refused() -> None:
    assert BrokerConfig({"broker.id": "0"}).node_id == 0
    assert BrokerConfig({"node.id": "0"}).node_id == 0
    assert BrokerConfig({}).node_id == 1  # the embedded single node
    assert BrokerConfig({"zookeeper.connect": "127.0.0.1:2181"}).node_id == -1  # generated
    with pytest.raises(ConfigError, match="must be 0 or more"):
        _ = BrokerConfig({"broker.id": "-3"}).node_id
    with pytest.raises(ConfigError, match="must be the same"):
        _ = BrokerConfig({"broker.id": "1", "node.id": "2"}).node_id


def test_internal_topic_defaults_depend_on_the_mode() -> None:
    single = BrokerConfig({})
    assert single.get_int("offsets.topic.replication.factor") == 1
    assert single.get_int("transaction.state.log.min.isr") == 1
    cluster = BrokerConfig({"zookeeper.connect": "127.0.0.1:2181"})
    assert cluster.get_int("offsets.topic.replication.factor") == 3
    assert cluster.get_int("transaction.state.log.replication.factor") == 3
    assert cluster.get_int("transaction.state.log.min.isr") == 2
