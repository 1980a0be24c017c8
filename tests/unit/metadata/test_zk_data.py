"""The znode JSON of strom.metadata.zk.data against Kafka's own (ZkData.scala and the
examples in Kafka's docs): what Kafka writes, strom reads; what strom writes, Kafka's
parsers accept (the same keys and value types)."""

from __future__ import annotations

import json

import pytest

from strom.common.types import TopicPartition
from strom.metadata.image import Endpoint, LeaderAndIsr, TopicAssignment
from strom.metadata.zk import data as zd

T0 = TopicPartition("t", 0)
TOPIC_ID = bytes.fromhex("2c0a5a3f0d174a0b9ab0a1d0c3bb6f4e")


def test_paths():
    assert zd.topic_path("t") == "/brokers/topics/t"
    assert zd.partition_state_path(TopicPartition("t", 3)) == "/brokers/topics/t/partitions/3/state"
    assert zd.config_path("topics", "t") == "/config/topics/t"
    assert zd.config_path("brokers", "") == "/config/brokers/<default>"


def test_broker_registration_read_from_kafka():
    kafka = (
        b'{"features":{},"listener_security_protocol_map":{"PLAINTEXT":"PLAINTEXT","SSL":"SSL"},'
        b'"endpoints":["PLAINTEXT://host1:9092","SSL://host1:9093"],"rack":"dc1","jmx_port":-1,'
        b'"port":9092,"host":"host1","version":5,"timestamp":"1700000000000"}'
    )
    endpoints, rack = zd.decode_broker(kafka)
    assert endpoints == (
        Endpoint("PLAINTEXT", "host1", 9092, "PLAINTEXT"),
        Endpoint("SSL", "host1", 9093, "SSL"),
    )
    assert rack == "dc1"
    old = b'{"jmx_port":-1,"timestamp":"1","host":"h","version":1,"port":9092}'
    assert zd.decode_broker(old) == ((Endpoint("PLAINTEXT", "h", 9092),), None)


def test_broker_registration_written_as_kafka_version_5():
    raw = zd.encode_broker([Endpoint("INTERNAL", "h", 9094, "SASL_PLAINTEXT")], None)
    obj = json.loads(raw)
    assert obj["version"] == 5 and obj["endpoints"] == ["INTERNAL://h:9094"]
    assert obj["listener_security_protocol_map"] == {"INTERNAL": "SASL_PLAINTEXT"}
    assert "rack" not in obj and isinstance(obj["timestamp"], str)
    assert zd.decode_broker(raw)[0] == (Endpoint("INTERNAL", "h", 9094, "SASL_PLAINTEXT"),)


def test_topic_assignment_both_ways():
    kafka = (
        b'{"version":3,"topic_id":"LApaPw0XSguasKHQw7tvTg","partitions":{"0":[1,2],"1":[2,3]},'
        b'"adding_replicas":{"1":[3]},"removing_replicas":{"1":[1]}}'
    )
    a = zd.decode_topic(kafka)
    assert a.topic_id == TOPIC_ID
    assert a.replicas == {0: (1, 2), 1: (2, 3)}
    assert a.adding == {1: (3,)} and a.removing == {1: (1,)}
    obj = json.loads(zd.encode_topic(a))
    assert obj == json.loads(kafka)
    # version 1 (no topic id, no reassignment fields), as old Kafka writes it
    v1 = zd.decode_topic(b'{"version":1,"partitions":{"0":[0]}}')
    assert v1 == TopicAssignment(None, {0: (0,)}, {}, {})


def test_partition_state_both_ways():
    kafka = b'{"controller_epoch":3,"leader":1,"version":1,"leader_epoch":7,"isr":[1,2]}'
    assert zd.decode_partition_state(kafka, 12) == LeaderAndIsr(1, 7, (1, 2), 3, 12)
    ours = json.loads(zd.encode_partition_state(LeaderAndIsr(-1, 8, (2,), 4, 13)))
    assert ours == {
        "controller_epoch": 4,
        "leader": -1,
        "version": 1,
        "leader_epoch": 8,
        "isr": [2],
    }
    # Kafka 3.2+ adds leader_recovery_state (version 2): still read
    v2 = (
        b'{"controller_epoch":3,"leader":1,"version":2,"leader_epoch":7,"isr":[1],'
        b'"leader_recovery_state":0}'
    )
    assert zd.decode_partition_state(v2, 1).isr == (1,)


def test_controller_and_epoch():
    assert zd.decode_controller(b'{"version":1,"brokerid":2,"timestamp":"1700000000000"}') == 2
    assert zd.decode_controller(b"garbage") == -1
    assert zd.decode_controller(zd.encode_controller(5)) == 5
    assert zd.decode_controller_epoch(b"17") == 17
    assert zd.encode_controller_epoch(18) == b"18"
    with pytest.raises(zd.ZkDataError):
        zd.decode_controller_epoch(b"x")


def test_configs_and_changes():
    kafka = b'{"version":1,"config":{"retention.ms":"1000","cleanup.policy":"compact"}}'
    assert zd.decode_config(kafka) == {"retention.ms": "1000", "cleanup.policy": "compact"}
    assert json.loads(zd.encode_config({"a": "1"})) == {"version": 1, "config": {"a": "1"}}
    assert zd.decode_config_change(b'{"version":2,"entity_path":"topics/t"}') == ("topics", "t")
    assert zd.decode_config_change(b'{"version":2,"entity_path":"brokers/<default>"}') == (
        "brokers",
        "",
    )
    old = b'{"version":1,"entity_type":"topics","entity_name":"t"}'
    assert zd.decode_config_change(old) == ("topics", "t")
    assert json.loads(zd.encode_config_change("brokers", "")) == {
        "version": 2,
        "entity_path": "brokers/<default>",
    }


def test_admin_requests():
    kafka = b'{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[3,1]}]}'
    assert zd.decode_reassignment(kafka) == {T0: (3, 1)}
    assert json.loads(zd.encode_reassignment({T0: (3, 1)})) == json.loads(kafka)
    pref = b'{"version":1,"partitions":[{"topic":"t","partition":0},{"topic":"u","partition":2}]}'
    assert zd.decode_partitions(pref) == {T0, TopicPartition("u", 2)}
    assert json.loads(zd.encode_partitions(1, [T0])) == {
        "version": 1,
        "partitions": [{"topic": "t", "partition": 0}],
    }


def test_producer_id_block_and_log_dir_event():
    kafka = b'{"version":1,"broker":0,"block_start":"1000","block_end":"1999"}'
    assert zd.decode_producer_id_block_end(kafka) == 1999
    assert json.loads(zd.encode_producer_id_block(1, 0, 999))["block_end"] == "999"
    assert zd.decode_log_dir_event(zd.encode_log_dir_event(3)) == 3
    assert zd.decode_log_dir_event(b'{"version":1,"broker":1,"event":1}') == 1
