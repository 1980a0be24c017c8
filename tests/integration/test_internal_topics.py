"""Internal topics: never auto-created by Metadata, created with their own settings,
protected from deletion, new partitions and a cleanup.policy without compact.

Before the fix a Metadata request naming ``__consumer_offsets`` (kcat -L -t, a
consumer subscribing to it, Burrow) created it as an ordinary topic with one
partition and no compaction, and every consumer group then hung; deleting it
succeeded and took every committed offset with it.
"""

from __future__ import annotations

import subprocess
import uuid

import pytest
from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
)

from strom.protocol.errors import ErrorCode
from strom.protocol.generated.find_coordinator import FindCoordinatorRequest
from strom.protocol.generated.metadata import MetadataRequest
from strom.testing import BrokerFactory
from strom.testing.kafka import create_topic, produce_acked
from strom.testing.wire import RawClient

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("require_strom")]

OFFSETS = "__consumer_offsets"
TXN = "__transaction_state"


def describe(bootstrap: str, topic: str) -> object:
    with RawClient(bootstrap) as c:
        req = MetadataRequest(
            topics=[MetadataRequest.MetadataRequestTopic(name=topic)],
            allow_auto_topic_creation=True,
        )
        return c.request(req, 12).topics[0]


def find_coordinator(bootstrap: str, key: str, key_type: int = 0) -> object:
    with RawClient(bootstrap) as c:
        req = FindCoordinatorRequest(key_type=key_type, coordinator_keys=[key])
        return c.request(req, 4).coordinators[0]


def test_metadata_never_creates_internal_topics(
    broker_factory: BrokerFactory, topic_name: str
) -> None:
    broker = broker_factory()
    for name in (OFFSETS, TXN):
        subprocess.run(
            ["kcat", "-L", "-b", broker.bootstrap, "-t", name], capture_output=True, timeout=30
        )
        assert describe(broker.bootstrap, name).error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    # a consumer group then works: the coordinator creates the topic its own way
    create_topic(broker.bootstrap, topic_name, 1)
    produce_acked(broker.bootstrap, topic_name, [(0, None, b"hello")])
    group = f"g-{uuid.uuid4().hex[:8]}"
    c = Consumer(
        {
            "bootstrap.servers": broker.bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    try:
        c.subscribe([topic_name])
        msg = None
        for _ in range(60):
            msg = c.poll(0.5)
            if msg is not None and msg.error() is None:
                break
        assert msg is not None and msg.value() == b"hello"
        c.commit(msg, asynchronous=False)
    finally:
        c.close()
    offsets = describe(broker.bootstrap, OFFSETS)
    assert offsets.error_code == 0 and offsets.is_internal
    assert len(offsets.partitions) == 50  # offsets.topic.num.partitions
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    res = ConfigResource(ConfigResource.Type.TOPIC, OFFSETS)
    configs = admin.describe_configs([res])[res].result(30)
    assert configs["cleanup.policy"].value == "compact"


def test_transactions_work_after_metadata_named_the_state_topic(
    broker_factory: BrokerFactory, topic_name: str
) -> None:
    broker = broker_factory({"transaction.state.log.num.partitions": "4"})
    describe(broker.bootstrap, TXN)
    create_topic(broker.bootstrap, topic_name, 1)
    p = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": "tx-internal"})
    p.init_transactions(30)
    p.begin_transaction()
    p.produce(topic_name, b"in-txn")
    p.commit_transaction(30)
    state = describe(broker.bootstrap, TXN)
    assert state.is_internal and len(state.partitions) == 4


def test_internal_topics_are_protected(broker_factory: BrokerFactory) -> None:
    broker = broker_factory()
    assert find_coordinator(broker.bootstrap, "any-group").error_code == 0  # creates it
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    with pytest.raises(KafkaException, match="INVALID_REQUEST"):
        admin.delete_topics([OFFSETS])[OFFSETS].result(30)
    with pytest.raises(KafkaException, match="internal topic"):
        admin.create_partitions([NewPartitions(OFFSETS, 60)])[OFFSETS].result(30)
    res = ConfigResource(
        ConfigResource.Type.TOPIC,
        OFFSETS,
        incremental_configs=[
            ConfigEntry("cleanup.policy", "delete", incremental_operation=AlterConfigOpType.SET)
        ],
    )
    with pytest.raises(KafkaException, match=r"cleanup\.policy"):
        admin.incremental_alter_configs([res])[res].result(30)
    assert describe(broker.bootstrap, OFFSETS).error_code == 0


def test_coordinator_waits_for_enough_brokers(broker_factory: BrokerFactory) -> None:
    """offsets.topic.replication.factor above the live brokers: no RF-1 topic is
    created behind the user's back; FindCoordinator answers COORDINATOR_NOT_AVAILABLE."""
    broker = broker_factory(
        {"offsets.topic.replication.factor": "3", "transaction.state.log.replication.factor": "3"}
    )
    found = find_coordinator(broker.bootstrap, "g")
    assert found.error_code == ErrorCode.COORDINATOR_NOT_AVAILABLE
    found = find_coordinator(broker.bootstrap, "tx", key_type=1)
    assert found.error_code == ErrorCode.COORDINATOR_NOT_AVAILABLE
    assert describe(broker.bootstrap, OFFSETS).error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    assert "replication factor is 3 and 1 broker(s) are registered" in broker.log_path.read_text()
