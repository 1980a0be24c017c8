"""An empty list is a valid value for a list config, as in Kafka 4.0 (ConfigDef.ValidList
accepts an empty list; Kafka 4.2 keeps that for cleanup.policy).

An empty cleanup.policy means neither delete nor compact: retention.ms and
retention.bytes delete nothing, records without a key are accepted, and only the
log start offset (DeleteRecords) removes data. The changes go through real admin
clients (confluent-kafka's AdminClient and strom's own)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from strom.client.admin_types import (
    AlterConfigOp,
    AlterConfigOpType,
    ConfigResource,
    ConfigResourceType,
)
from strom.client.sync import Admin
from strom.testing import BrokerProcess
from strom.testing.broker import BrokerFactory
from strom.testing.kafka import create_topic, produce_acked, watermarks

pytestmark = pytest.mark.integration

TIMEOUT_S = 30.0


def confluent_admin(broker: BrokerProcess) -> Any:
    from confluent_kafka.admin import AdminClient  # type: ignore[attr-defined]

    return AdminClient({"bootstrap.servers": broker.bootstrap})


def confluent_alter(broker: BrokerProcess, topic: str, name: str, value: str, op: str) -> None:
    from confluent_kafka.admin import (  # type: ignore[attr-defined]
        AlterConfigOpType as Op,
    )
    from confluent_kafka.admin import (
        ConfigEntry,
        ConfigResource,
    )

    entry = ConfigEntry(name, value, incremental_operation=getattr(Op, op))
    res = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=[entry])
    admin = confluent_admin(broker)  # kept alive until the result is in
    admin.incremental_alter_configs([res])[res].result(TIMEOUT_S)


def confluent_value(broker: BrokerProcess, topic: str, name: str) -> str:
    from confluent_kafka.admin import ConfigResource  # type: ignore[attr-defined]

    res = ConfigResource(ConfigResource.Type.TOPIC, topic)
    admin = confluent_admin(broker)
    entries = admin.describe_configs([res])[res].result(TIMEOUT_S)
    return str(entries[name].value)


def test_confluent_admin_subtract_set_and_append(broker: BrokerProcess, topic_name: str) -> None:
    create_topic(broker.bootstrap, topic_name)
    assert confluent_value(broker, topic_name, "cleanup.policy") == "delete"
    confluent_alter(broker, topic_name, "cleanup.policy", "delete", "SUBTRACT")
    assert confluent_value(broker, topic_name, "cleanup.policy") == ""
    confluent_alter(broker, topic_name, "cleanup.policy", "compact", "APPEND")
    assert confluent_value(broker, topic_name, "cleanup.policy") == "compact"  # not "delete,..."
    confluent_alter(broker, topic_name, "cleanup.policy", "", "SET")
    assert confluent_value(broker, topic_name, "cleanup.policy") == ""


@pytest.fixture
def admin(broker: BrokerProcess) -> Iterator[Admin]:
    with Admin({"bootstrap.servers": broker.bootstrap}) as a:
        yield a


def strom_value(admin: Admin, topic: str, name: str) -> str | None:
    resource = ConfigResource(ConfigResourceType.TOPIC, topic)
    (entries,) = admin.describe_configs([resource]).values()
    return {e.name: e.value for e in entries}[name]


def test_strom_admin_subtract_and_set(admin: Admin, broker: BrokerProcess, topic_name: str) -> None:
    create_topic(broker.bootstrap, topic_name, 1, {"cleanup.policy": "compact,delete"})
    resource = ConfigResource(ConfigResourceType.TOPIC, topic_name)
    subtract = AlterConfigOp("cleanup.policy", "compact,delete", AlterConfigOpType.SUBTRACT)
    admin.incremental_alter_configs({resource: [subtract]}, validate_only=True)
    assert strom_value(admin, topic_name, "cleanup.policy") == "compact,delete"
    admin.incremental_alter_configs({resource: [subtract]})
    assert strom_value(admin, topic_name, "cleanup.policy") == ""
    admin.incremental_alter_configs({resource: [AlterConfigOp("cleanup.policy", "delete")]})
    assert strom_value(admin, topic_name, "cleanup.policy") == "delete"
    admin.incremental_alter_configs({resource: [AlterConfigOp("cleanup.policy", "")]})
    assert strom_value(admin, topic_name, "cleanup.policy") == ""


def test_an_empty_policy_neither_deletes_nor_compacts(
    broker_factory: BrokerFactory, topic_name: str, require_strom: None
) -> None:
    """Two topics with retention.ms=1: the retention pass that empties
    the delete-policy one leaves the empty-policy one whole (both are checked in every
    pass), and the empty-policy one takes records without a key."""
    b = broker_factory({"log.retention.check.interval.ms": "100"})
    kept, control = topic_name, topic_name + "-control"
    create_topic(b.bootstrap, kept, 1, {"retention.ms": "1", "cleanup.policy": ""})
    create_topic(b.bootstrap, control, 1, {"retention.ms": "1", "cleanup.policy": "delete"})
    records = [(0, None, b"record %d without a key" % i) for i in range(5)]
    produce_acked(b.bootstrap, kept, records, linger_ms=0)  # a compacted topic refuses these
    produce_acked(b.bootstrap, control, records, linger_ms=0)
    deadline = time.monotonic() + TIMEOUT_S
    while watermarks(b.bootstrap, control, 0)[0] == 0:
        assert time.monotonic() < deadline, "retention never deleted the control topic"
        time.sleep(0.1)
    assert watermarks(b.bootstrap, kept, 0) == (0, 5)
