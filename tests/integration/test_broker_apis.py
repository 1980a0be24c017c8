"""Exact error codes and fields of the broker's APIs, over the raw protocol."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from strom.protocol.errors import ErrorCode
from strom.protocol.generated.alter_replica_log_dirs import AlterReplicaLogDirsRequest
from strom.protocol.generated.create_partitions import CreatePartitionsRequest
from strom.protocol.generated.create_topics import CreateTopicsRequest
from strom.protocol.generated.delete_records import DeleteRecordsRequest
from strom.protocol.generated.delete_topics import DeleteTopicsRequest
from strom.protocol.generated.describe_cluster import DescribeClusterRequest
from strom.protocol.generated.describe_configs import DescribeConfigsRequest
from strom.protocol.generated.describe_log_dirs import DescribeLogDirsRequest
from strom.protocol.generated.fetch import FetchRequest
from strom.protocol.generated.incremental_alter_configs import IncrementalAlterConfigsRequest
from strom.protocol.generated.list_offsets import ListOffsetsRequest
from strom.protocol.generated.metadata import MetadataRequest
from strom.protocol.generated.offset_for_leader_epoch import OffsetForLeaderEpochRequest
from strom.protocol.generated.produce import ProduceRequest
from strom.protocol.record_decoder import decode_batch
from strom.protocol.records import build_batch, iter_batches
from strom.testing.broker import BrokerFactory, BrokerProcess
from strom.testing.wire import RawClient

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("require_strom")]

CT = CreateTopicsRequest


@pytest.fixture(scope="module")
def broker_overrides() -> dict[str, str]:
    return {"auto.create.topics.enable": "false", "message.max.bytes": "20000"}


@pytest.fixture
def raw(broker: BrokerProcess) -> Iterator[RawClient]:
    with RawClient(broker.bootstrap) as client:
        yield client


def create(raw: RawClient, name: str, partitions: int = 1, **configs: str) -> int:
    topic = CT.CreatableTopic(
        name=name,
        num_partitions=partitions,
        replication_factor=1,
        configs=[CT.CreatableTopicConfig(k.replace("_", "."), v) for k, v in configs.items()],
    )
    resp = raw.request(CT(topics=[topic], timeout_ms=5000), 7)
    return int(resp.topics[0].error_code)


def produce(
    raw: RawClient, topic: str, data: bytes, partition: int = 0, acks: int = -1, version: int = 9
) -> object:
    req = ProduceRequest(
        acks=acks,
        timeout_ms=5000,
        topic_data=[
            ProduceRequest.TopicProduceData(
                name=topic,
                partition_data=[ProduceRequest.PartitionProduceData(index=partition, records=data)],
            )
        ],
    )
    resp = raw.request(req, version)
    return resp.responses[0].partition_responses[0]


def batch(n: int, start: int = 0, ts: int | None = None) -> bytes:
    now = ts if ts is not None else int(time.time() * 1000)
    return build_batch([(b"k%d" % i, b"v%d" % i, (), now + i) for i in range(start, start + n)])


def fetch(
    raw: RawClient,
    topic: str,
    offset: int,
    *,
    max_wait: int = 0,
    min_bytes: int = 0,
    version: int = 12,
    isolation: int = 0,
) -> FetchRequest:
    req = FetchRequest(
        replica_id=-1,
        max_wait_ms=max_wait,
        min_bytes=min_bytes,
        max_bytes=1 << 20,
        isolation_level=isolation,
        topics=[
            FetchRequest.FetchTopic(
                topic=topic,
                partitions=[
                    FetchRequest.FetchPartition(
                        partition=0, fetch_offset=offset, partition_max_bytes=1 << 20
                    )
                ],
            )
        ],
    )
    resp = raw.request(req, version)
    return resp.responses[0].partitions[0]  # type: ignore[no-any-return]


def test_produce_and_fetch_mid_batch_offset(raw: RawClient, topic_name: str) -> None:
    assert create(raw, topic_name) == 0
    first = produce(raw, topic_name, batch(5))
    assert (first.error_code, first.base_offset) == (0, 0)  # type: ignore[attr-defined]
    second = produce(raw, topic_name, batch(5, 5))
    assert second.base_offset == 5  # type: ignore[attr-defined]
    part = fetch(raw, topic_name, 7)
    assert part.error_code == 0 and part.high_watermark == 10
    batches = [h for h, _ in iter_batches(bytes(part.records))]
    assert [h.base_offset for h in batches] == [5]  # the whole batch holding offset 7


def test_produce_errors(raw: RawClient, topic_name: str) -> None:
    assert create(raw, topic_name) == 0
    corrupt = bytearray(batch(3))
    corrupt[-1] ^= 0xFF
    assert produce(raw, topic_name, bytes(corrupt)).error_code == ErrorCode.CORRUPT_MESSAGE  # type: ignore[attr-defined]
    assert produce(raw, "no-such-topic", batch(1)).error_code == (  # type: ignore[attr-defined]
        ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    )
    big = build_batch([(None, b"x" * 30000, (), int(time.time() * 1000))])
    assert produce(raw, topic_name, big).error_code == ErrorCode.MESSAGE_TOO_LARGE  # type: ignore[attr-defined]
    two = produce(raw, topic_name, batch(1) + batch(1))
    assert two.error_code == ErrorCode.INVALID_RECORD  # type: ignore[attr-defined]
    assert two.record_errors and two.error_message  # type: ignore[attr-defined]
    assert produce(raw, topic_name, batch(1), acks=2).error_code == ErrorCode.INVALID_REQUIRED_ACKS  # type: ignore[attr-defined]
    assert produce(raw, topic_name, batch(1), version=2).error_code == ErrorCode.UNSUPPORTED_VERSION  # type: ignore[attr-defined]
    # Nothing of the above was appended.
    assert fetch(raw, topic_name, 0).high_watermark == 0


def test_log_append_time_topic(raw: RawClient, topic_name: str) -> None:
    assert create(raw, topic_name, message_timestamp_type="LogAppendTime") == 0
    before = int(time.time() * 1000)
    resp = produce(raw, topic_name, batch(2, ts=1000))
    assert resp.log_append_time_ms >= before  # type: ignore[attr-defined]


def test_fetch_out_of_range_and_long_poll(
    raw: RawClient, topic_name: str, broker: BrokerProcess
) -> None:
    assert create(raw, topic_name) == 0
    produce(raw, topic_name, batch(2))
    part = fetch(raw, topic_name, 50)
    assert part.error_code == ErrorCode.OFFSET_OUT_OF_RANGE
    assert (part.log_start_offset, part.high_watermark) == (0, 2)
    started = time.monotonic()
    part = fetch(raw, topic_name, 2, max_wait=400, min_bytes=1)
    assert part.error_code == 0 and not bytes(part.records)
    assert time.monotonic() - started >= 0.35
    # A produce from another connection wakes the waiting fetch.
    with RawClient(broker.bootstrap) as other:
        fetcher_started = time.monotonic()
        cid = raw.send(
            FetchRequest(
                max_wait_ms=10_000,
                min_bytes=1,
                max_bytes=1 << 20,
                topics=[
                    FetchRequest.FetchTopic(
                        topic=topic_name,
                        partitions=[
                            FetchRequest.FetchPartition(
                                partition=0, fetch_offset=2, partition_max_bytes=1 << 20
                            )
                        ],
                    )
                ],
            ),
            12,
        )
        produce(other, topic_name, batch(1))
        from strom.protocol.frame import decode_response

        got, resp = decode_response(1, 12, raw.read_frame())
        assert got == cid
        assert bytes(resp.responses[0].partitions[0].records)
        assert time.monotonic() - fetcher_started < 5


def test_list_offsets(raw: RawClient, topic_name: str) -> None:
    assert create(raw, topic_name) == 0
    base = 1_700_000_000_000
    produce(raw, topic_name, batch(3, ts=base))  # timestamps base .. base+2
    produce(raw, topic_name, batch(3, 3, ts=base + 100))  # base+103 .. base+105

    def lookup(ts: int) -> tuple[int, int]:
        req = ListOffsetsRequest(
            replica_id=-1,
            topics=[
                ListOffsetsRequest.ListOffsetsTopic(
                    name=topic_name,
                    partitions=[
                        ListOffsetsRequest.ListOffsetsPartition(partition_index=0, timestamp=ts)
                    ],
                )
            ],
        )
        p = raw.request(req, 10).topics[0].partitions[0]
        assert p.error_code == 0
        return p.offset, p.timestamp

    assert lookup(-2) == (0, -1)
    assert lookup(-1) == (6, -1)
    assert lookup(-3) == (5, base + 105)
    assert lookup(-4) == (0, -1)  # earliest local: the log start (no tiered storage)
    assert lookup(-5) == (-1, -1)  # latest tiered: nothing is tiered
    assert lookup(base + 1) == (1, base + 1)
    assert lookup(base + 50) == (3, base + 103)
    assert lookup(base + 10_000) == (-1, -1)


@pytest.mark.parametrize("version", [0, 2, 4])
def test_offset_for_leader_epoch(raw: RawClient, topic_name: str, version: int) -> None:
    """Kafka's lastOffsetForLeaderEpoch: the current epoch ends at the log end offset,
    an epoch the log never had answers -1/-1, and the current leader epoch fences."""
    assert create(raw, topic_name) == 0
    produce(raw, topic_name, batch(4))
    olep = OffsetForLeaderEpochRequest

    def ask(topic: str, epoch: int, current: int = -1) -> tuple[int, int, int]:
        part = olep.OffsetForLeaderPartition(
            partition=0, current_leader_epoch=current, leader_epoch=epoch
        )
        req = olep(replica_id=-1, topics=[olep.OffsetForLeaderTopic(topic, [part])])
        p = raw.request(req, version).topics[0].partitions[0]
        return p.error_code, p.leader_epoch, p.end_offset

    assert ask(topic_name, 0)[0::2] == (0, 4)
    if version >= 1:
        assert ask(topic_name, 0) == (0, 0, 4)
    assert ask(topic_name, 7)[0::2] == (0, -1)
    assert ask(f"{topic_name}-absent", 0)[0] == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    if version >= 2:
        assert ask(topic_name, 0, current=0) == (0, 0, 4)
        assert ask(topic_name, 0, current=3)[0] == ErrorCode.UNKNOWN_LEADER_EPOCH


def test_create_topics_validation(raw: RawClient, topic_name: str) -> None:
    assert create(raw, "bad name!") == ErrorCode.INVALID_TOPIC_EXCEPTION
    assert create(raw, topic_name, retention_ms="soon") == ErrorCode.INVALID_CONFIG
    assert create(raw, topic_name, no_such_config="1") == ErrorCode.INVALID_CONFIG
    assert create(raw, topic_name, 0) == ErrorCode.INVALID_PARTITIONS
    rf = raw.request(
        CT(topics=[CT.CreatableTopic(name=topic_name, num_partitions=1, replication_factor=3)]), 7
    )
    assert rf.topics[0].error_code == ErrorCode.INVALID_REPLICATION_FACTOR
    only = raw.request(
        CT(
            topics=[CT.CreatableTopic(name=topic_name, num_partitions=2, replication_factor=1)],
            validate_only=True,
        ),
        7,
    )
    assert only.topics[0].error_code == 0 and only.topics[0].num_partitions == 2
    meta = raw.request(
        MetadataRequest(
            topics=[MetadataRequest.MetadataRequestTopic(name=topic_name)],
            allow_auto_topic_creation=False,
        ),
        12,
    )
    assert meta.topics[0].error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    assert create(raw, topic_name, 2, retention_ms="1000") == 0
    assert create(raw, topic_name) == ErrorCode.TOPIC_ALREADY_EXISTS
    created = raw.request(
        CT(
            topics=[
                CT.CreatableTopic(name=topic_name + "x", num_partitions=-1, replication_factor=-1)
            ]
        ),
        7,
    ).topics[0]
    configs = {c.name: c for c in created.configs}
    assert created.num_partitions == 1 and configs["retention.ms"].value == "604800000"


def test_partitions_configs_delete(raw: RawClient, topic_name: str) -> None:
    assert create(raw, topic_name, 2) == 0
    cp = CreatePartitionsRequest
    res = raw.request(
        cp(topics=[cp.CreatePartitionsTopic(name=topic_name, count=1, assignments=None)]), 3
    ).results[0]
    assert res.error_code == ErrorCode.INVALID_PARTITIONS
    res = raw.request(
        cp(topics=[cp.CreatePartitionsTopic(name=topic_name, count=4, assignments=None)]), 3
    ).results[0]
    assert res.error_code == 0
    ia = IncrementalAlterConfigsRequest
    ops = [
        ia.AlterableConfig("retention.ms", 0, "12345"),
        ia.AlterableConfig("cleanup.policy", 2, "compact"),
    ]
    res = raw.request(ia(resources=[ia.AlterConfigsResource(2, topic_name, ops)]), 1)
    assert res.responses[0].error_code == 0
    bad = [ia.AlterableConfig("retention.ms", 2, "1")]
    res = raw.request(ia(resources=[ia.AlterConfigsResource(2, topic_name, bad)]), 1)
    assert res.responses[0].error_code == ErrorCode.INVALID_CONFIG
    dc = DescribeConfigsRequest
    desc = raw.request(
        dc(resources=[dc.DescribeConfigsResource(2, topic_name, None)], include_synonyms=True), 4
    ).results[0]
    values = {c.name: (c.value, c.config_source) for c in desc.configs}
    assert values["retention.ms"] == ("12345", 1)
    assert values["cleanup.policy"] == ("delete,compact", 1)
    assert values["segment.bytes"] == ("1073741824", 5)
    assert values["max.message.bytes"] == ("20000", 4)  # from the broker's message.max.bytes
    res = raw.request(
        ia(
            resources=[
                ia.AlterConfigsResource(
                    2, topic_name, [ia.AlterableConfig("retention.ms", 1, None)]
                )
            ]
        ),
        1,
    )
    desc = raw.request(
        dc(resources=[dc.DescribeConfigsResource(2, topic_name, ["retention.ms"])]), 4
    )
    assert [(c.name, c.value) for c in desc.results[0].configs] == [("retention.ms", "604800000")]
    broker_cfg = raw.request(dc(resources=[dc.DescribeConfigsResource(4, "1", None)]), 4)
    names = {c.name for c in broker_cfg.results[0].configs}
    assert {"log.retention.hours", "num.partitions", "message.max.bytes"} <= names
    dt = DeleteTopicsRequest
    res = raw.request(dt(topic_names=[topic_name, "nope"], timeout_ms=1000), 5).responses
    assert [(r.name, r.error_code) for r in res] == [
        (topic_name, 0),
        ("nope", ErrorCode.UNKNOWN_TOPIC_OR_PARTITION),
    ]
    meta = raw.request(MetadataRequest(topics=None), 12)
    assert all(t.name for t in meta.topics) and topic_name not in {t.name for t in meta.topics}


def test_delete_records_cluster_and_log_dirs(raw: RawClient, topic_name: str) -> None:
    assert create(raw, topic_name) == 0
    produce(raw, topic_name, batch(4))
    dr = DeleteRecordsRequest
    res = (
        raw.request(
            dr(
                topics=[dr.DeleteRecordsTopic(topic_name, [dr.DeleteRecordsPartition(0, 2)])],
                timeout_ms=1000,
            ),
            2,
        )
        .topics[0]
        .partitions[0]
    )
    assert (res.error_code, res.low_watermark) == (0, 2)
    res = (
        raw.request(
            dr(
                topics=[dr.DeleteRecordsTopic(topic_name, [dr.DeleteRecordsPartition(0, 99)])],
                timeout_ms=1000,
            ),
            2,
        )
        .topics[0]
        .partitions[0]
    )
    assert res.error_code == ErrorCode.OFFSET_OUT_OF_RANGE
    assert fetch(raw, topic_name, 0).error_code == ErrorCode.OFFSET_OUT_OF_RANGE
    cluster = raw.request(DescribeClusterRequest(), 1)
    assert cluster.error_code == 0 and [b.broker_id for b in cluster.brokers] == [1]
    dirs = raw.request(DescribeLogDirsRequest(topics=None), 4).results
    sizes = {
        (t.name, p.partition_index): p.partition_size
        for d in dirs
        for t in d.topics
        for p in t.partitions
    }
    assert sizes[(topic_name, 0)] > 0
    assert dirs[0].total_bytes > 0


def test_unknown_api_key_closes_only_that_connection(raw: RawClient, broker: BrokerProcess) -> None:
    with RawClient(broker.bootstrap) as bad:
        bad.send_raw(b"\x00\x00\x00\x0a\x03\xe7\x00\x00\x00\x00\x00\x01\xff\xff")
        assert bad.is_closed_by_peer()
    meta = raw.request(MetadataRequest(topics=None), 12)
    assert meta.brokers


def test_acks_zero_error_closes_the_connection(broker: BrokerProcess, topic_name: str) -> None:
    with RawClient(broker.bootstrap) as client:
        assert create(client, topic_name) == 0
        req = ProduceRequest(
            acks=0,
            timeout_ms=1000,
            topic_data=[
                ProduceRequest.TopicProduceData(
                    name=topic_name,
                    partition_data=[ProduceRequest.PartitionProduceData(index=0, records=batch(1))],
                )
            ],
        )
        client.send(req, 9)  # no response for acks=0
        meta = client.request(MetadataRequest(topics=None), 12)
        assert meta.brokers
        req.topic_data[0].partition_data[0].index = 7  # no such partition
        client.send(req, 9)
        assert client.is_closed_by_peer()


def test_large_fetch_goes_out_whole(raw: RawClient, topic_name: str) -> None:
    """Ranges above the sendfile threshold arrive intact and in order."""
    assert create(raw, topic_name) == 0
    sent = []
    for i in range(20):
        data = build_batch(
            [(None, bytes([i]) * 1000, (), int(time.time() * 1000)) for _ in range(19)]
        )
        sent.append(data)
        assert produce(raw, topic_name, data).error_code == 0  # type: ignore[attr-defined]
    part = fetch(raw, topic_name, 0)
    got = bytes(part.records)
    assert len(got) == sum(len(b) for b in sent) > 64 * 1024
    headers = [h for h, _ in iter_batches(got)]
    assert [h.base_offset for h in headers] == [19 * i for i in range(20)]
    assert [h.crc for h in headers] == [h.crc for b in sent for h, _ in iter_batches(b)]


def test_dynamic_broker_configs(broker_factory: BrokerFactory, topic_name: str) -> None:
    """AlterConfigs on a BROKER resource: "" is the cluster-wide default, the node id
    this broker; the broker-level defaults of topic configs (Kafka's DynamicLogConfig)
    change at once for every topic and survive a restart; other configs are refused."""
    b = broker_factory({})
    ia, dc = IncrementalAlterConfigsRequest, DescribeConfigsRequest

    def alter(name: str, *ops: tuple[str, int, str | None], validate: bool = False) -> int:
        configs = [ia.AlterableConfig(n, op, v) for n, op, v in ops]
        req = ia(resources=[ia.AlterConfigsResource(4, name, configs)], validate_only=validate)
        return int(raw.request(req, 1).responses[0].error_code)

    def describe(kind: int, name: str) -> dict[str, tuple[str | None, int, bool]]:
        req = dc(resources=[dc.DescribeConfigsResource(kind, name, None)], include_synonyms=True)
        result = raw.request(req, 4).results[0]
        assert result.error_code == 0
        return {c.name: (c.value, c.config_source, c.read_only) for c in result.configs}

    with RawClient(b.bootstrap) as raw:
        assert create(raw, topic_name) == 0
        node = "1"
        assert alter("", ("log.retention.ms", 0, "3600000")) == 0
        assert alter(node, ("message.max.bytes", 0, "2000")) == 0
        assert alter(node, ("num.partitions", 0, "5")) == ErrorCode.INVALID_REQUEST
        assert alter(node, ("message.max.bytes", 0, "lots")) == ErrorCode.INVALID_REQUEST
        assert alter("7", ("message.max.bytes", 0, "10")) == ErrorCode.INVALID_REQUEST
        assert alter(node, ("log.segment.bytes", 0, "999999"), validate=True) == 0
        # a value that fails the topic-level checks is refused before anything changes
        assert alter("", ("log.flush.interval.ms", 0, "-5")) == ErrorCode.INVALID_REQUEST
        assert alter("", ("log.flush.interval.ms", 0, "-5"), validate=True) == (
            ErrorCode.INVALID_REQUEST
        )
        # an empty list is a valid cleanup policy (Kafka 4.0's ValidList)
        assert alter("", ("log.cleanup.policy", 0, ""), validate=True) == 0
        assert alter(node, ("log.retention.hours", 0, "-1")) == 0  # negative: unlimited
        assert alter(node, ("log.retention.hours", 1, None), ("message.max.bytes", 0, "2000")) == 0
        assert describe(4, "") == {"log.retention.ms": ("3600000", 3, False)}
        brokers = describe(4, node)
        assert brokers["message.max.bytes"] == ("2000", 2, False)
        assert brokers["log.segment.bytes"] == ("1073741824", 5, False)  # validate_only
        assert brokers["num.partitions"][2] is True
        topic = describe(2, topic_name)
        assert topic["retention.ms"] == ("3600000", 3, False)
        assert topic["max.message.bytes"] == ("2000", 2, False)
        big = build_batch([(None, b"x" * 3000, (), int(time.time() * 1000))])
        assert produce(raw, topic_name, big).error_code == ErrorCode.MESSAGE_TOO_LARGE  # type: ignore[attr-defined]
    b.restart()
    with RawClient(b.bootstrap) as raw:
        assert describe(2, topic_name)["max.message.bytes"] == ("2000", 2, False)
        assert alter(node, ("message.max.bytes", 1, None)) == 0  # DELETE: back to the default
        assert describe(2, topic_name)["max.message.bytes"] == ("1048588", 5, False)
        assert describe(2, topic_name)["retention.ms"] == ("3600000", 3, False)
    # a real client's admin API does the same (librdkafka sends it to the named broker)
    from confluent_kafka.admin import (  # type: ignore[attr-defined]
        AdminClient,
        AlterConfigOpType,
        ConfigEntry,
        ConfigResource,
        ConfigSource,
    )

    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    res = ConfigResource(
        ConfigResource.Type.BROKER,
        node,
        incremental_configs=[
            ConfigEntry(
                "log.retention.bytes", "123456", incremental_operation=AlterConfigOpType.SET
            )
        ],
    )
    admin.incremental_alter_configs([res])[res].result(30)
    # the legacy AlterConfigs with a setting Kafka changes at runtime and strom takes
    # without effect (librdkafka's own admin test sets this one)
    legacy = ConfigResource(
        ConfigResource.Type.BROKER,
        node,
        set_config={"sasl.kerberos.min.time.before.relogin": "58000"},
    )
    with pytest.warns(DeprecationWarning):  # confluent-kafka's, for the legacy API
        futures = admin.alter_configs([legacy])
    futures[legacy].result(30)
    described = admin.describe_configs([ConfigResource(ConfigResource.Type.BROKER, node)])
    entries = next(iter(described.values())).result(30)
    relogin = entries["sasl.kerberos.min.time.before.relogin"]
    dynamic = ConfigSource.DYNAMIC_BROKER_CONFIG.value
    assert (relogin.value, relogin.source, relogin.is_read_only) == ("58000", dynamic, False)
    # a legacy AlterConfigs replaces the broker's whole set (Kafka's too)
    assert entries["log.retention.bytes"].value == "-1"


def test_compacted_topics_refuse_records_without_a_key(raw: RawClient, topic_name: str) -> None:
    assert create(raw, topic_name, cleanup_policy="compact") == 0
    now = int(time.time() * 1000)
    keyless = build_batch([(b"k", b"v", (), now), (None, b"no key", (), now)])
    refused: Any = produce(raw, topic_name, keyless)
    message = (
        f"Compacted topic cannot accept message without key in topic partition {topic_name}-0."
    )
    assert refused.error_code == ErrorCode.INVALID_RECORD
    assert [(e.batch_index, e.batch_index_error_message) for e in refused.record_errors] == [
        (1, message)
    ]
    assert refused.error_message == (
        "One or more records have been rejected due to 1 record errors in total, and only "
        f"showing the first three errors at most: [RecordError(batchIndex=1, message='{message}')]"
    )
    assert produce(raw, topic_name, batch(2)).error_code == 0  # type: ignore[attr-defined]


def test_timestamp_limits_and_flush_messages(raw: RawClient, topic_name: str) -> None:
    """message.timestamp.before/after.max.ms (Kafka 3.6+): INVALID_TIMESTAMP naming each
    record out of range; flush.messages=1: every produce is fsynced (in a storage
    thread) before its answer."""
    configs = {
        "message.timestamp.before.max.ms": "60000",
        "message.timestamp.after.max.ms": "1000",
        "flush.messages": "1",
    }
    assert create(raw, topic_name, **{k.replace(".", "_"): v for k, v in configs.items()}) == 0
    now = int(time.time() * 1000)
    hour = 3_600_000
    old = build_batch([(b"k", b"fine", (), now), (b"k", b"old", (), now - hour)])
    refused: Any = produce(raw, topic_name, old)
    assert refused.error_code == ErrorCode.INVALID_TIMESTAMP
    ((index, message),) = [
        (e.batch_index, e.batch_index_error_message) for e in refused.record_errors
    ]
    assert index == 1 and message.startswith(f"Timestamp {now - hour} of message with offset 1")
    future: Any = produce(raw, topic_name, batch(1, ts=now + hour))
    assert future.error_code == ErrorCode.INVALID_TIMESTAMP
    for _ in range(3):
        assert produce(raw, topic_name, batch(2)).error_code == 0  # type: ignore[attr-defined]
    assert _offsets(raw, topic_name) == list(range(6))


def _offsets(raw: RawClient, topic: str) -> list[int]:
    part = fetch(raw, topic, 0)
    assert part.error_code == 0  # type: ignore[attr-defined]
    data = bytes(part.records)  # type: ignore[attr-defined]
    return [r.offset for _, b in iter_batches(data) for r in decode_batch(b)[1]]


def test_alter_replica_log_dirs_moves_a_partition(
    broker_factory: BrokerFactory, topic_name: str, tmp_path: Path
) -> None:
    """AlterReplicaLogDirs to the other log dir moves the partition's files there; reads,
    writes and a restart go on from the new place. Kafka's errors: a directory not in
    log.dirs is LOG_DIR_NOT_FOUND, a partition without a replica REPLICA_NOT_AVAILABLE."""
    first, second = tmp_path / "a", tmp_path / "b"
    b = broker_factory({"log.dirs": f"{first},{second}"})
    ard = AlterReplicaLogDirsRequest

    def move(path: Path | str, topic: str, partition: int = 0) -> int:
        topics = [ard.AlterReplicaLogDirTopic(topic, [partition])]
        resp = raw.request(ard(dirs=[ard.AlterReplicaLogDir(str(path), topics)]), 2)
        return int(resp.results[0].partitions[0].error_code)

    with RawClient(b.bootstrap) as raw:
        assert create(raw, topic_name) == 0
        produce(raw, topic_name, batch(3))
        here = next(d for d in (first, second) if (d / f"{topic_name}-0").is_dir())
        there = second if here == first else first
        assert move(here, topic_name) == 0  # already there: nothing to do
        assert move(there, topic_name) == 0
        assert (there / f"{topic_name}-0").is_dir() and not (here / f"{topic_name}-0").exists()
        produce(raw, topic_name, batch(2, 3))
        assert _offsets(raw, topic_name) == list(range(5))
        assert move(tmp_path / "elsewhere", topic_name) == ErrorCode.LOG_DIR_NOT_FOUND
        assert move(there, topic_name, 7) == ErrorCode.REPLICA_NOT_AVAILABLE
    b.restart()
    with RawClient(b.bootstrap) as raw:
        assert _offsets(raw, topic_name) == list(range(5))
        assert (there / f"{topic_name}-0").is_dir() and not (here / f"{topic_name}-0").exists()
