"""BrokerMetrics.on_request: the per-topic counters of produce and fetch answers."""

from __future__ import annotations

from strom.broker.metrics import BrokerMetrics, batch_counts
from strom.protocol.errors import ErrorCode
from strom.protocol.generated.fetch import FetchRequest, FetchResponse
from strom.protocol.generated.produce import ProduceRequest, ProduceResponse
from strom.protocol.records import build_batch
from strom.protocol.wire import ChunkedRecords

BATCH = build_batch([(None, b"v", (), 1), (None, b"w", (), 2)])


def _produce(metrics: BrokerMetrics, codes: dict[int, int]) -> None:
    req = ProduceRequest(acks=1)
    parts = [ProduceRequest.PartitionProduceData(index=i, records=BATCH) for i in codes]
    req.topic_data = [ProduceRequest.TopicProduceData(name="t", partition_data=parts)]
    answers = [
        ProduceResponse.PartitionProduceResponse(index=i, error_code=code)
        for i, code in codes.items()
    ]
    resp = ProduceResponse(
        responses=[ProduceResponse.TopicProduceResponse(name="t", partition_responses=answers)]
    )
    metrics.on_request(0, 9, req, resp, 0.5)


def test_produce_counts() -> None:
    metrics = BrokerMetrics()
    _produce(metrics, {0: 0, 1: ErrorCode.NOT_LEADER_OR_FOLLOWER, 2: ErrorCode.INVALID_RECORD})
    t = metrics.topics["t"].values()
    assert t["produce_requests"] == 3 and t["failed_produce_requests"] == 1
    assert (t["messages_in"], t["bytes_in"]) == (2, len(BATCH))
    assert metrics.all_topics.values() == t
    assert metrics.errors == {
        (0, ErrorCode.NOT_LEADER_OR_FOLLOWER): 1,
        (0, ErrorCode.INVALID_RECORD): 1,
    }
    _produce(metrics, {0: 0})
    assert metrics.topics["t"].messages_in == 4 and not metrics.errors.get((0, 0))


def _fetch(
    metrics: BrokerMetrics, replica_id: int, topic: str, parts: list[tuple[int, object]]
) -> None:
    answers = [
        FetchResponse.PartitionData(partition_index=i, error_code=code, records=records)
        for i, (code, records) in enumerate(parts)
    ]
    resp = FetchResponse(
        responses=[FetchResponse.FetchableTopicResponse(topic=topic, partitions=answers)]
    )
    metrics.on_request(1, 12, FetchRequest(replica_id=replica_id), resp, 0.5)


def test_fetch_counts() -> None:
    metrics = BrokerMetrics()
    records = ChunkedRecords([b"x" * 10, b"y" * 5])
    parts: list[tuple[int, object]] = [
        (0, records),
        (0, b""),
        (0, None),
        (ErrorCode.OFFSET_OUT_OF_RANGE, b""),  # expected: not a failed request
        (ErrorCode.UNKNOWN_SERVER_ERROR, b""),
    ]
    _fetch(metrics, -1, "t", parts)
    _fetch(metrics, 2, "t", [(0, b"z" * 7)])
    _fetch(metrics, -1, "", [(0, b"z" * 3), (ErrorCode.UNKNOWN_SERVER_ERROR, b"")])  # unknown id
    t = metrics.topics["t"].values()
    assert t["fetch_requests"] == 6 and t["failed_fetch_requests"] == 1
    assert (t["bytes_out"], t["replication_bytes_out"]) == (15, 7)
    every = metrics.all_topics.values()
    assert every["fetch_requests"] == 8 and every["failed_fetch_requests"] == 2
    assert (every["bytes_out"], every["replication_bytes_out"]) == (15, 7)
    assert "" not in metrics.topics
    assert metrics.errors == {
        (1, ErrorCode.OFFSET_OUT_OF_RANGE): 1,
        (1, ErrorCode.UNKNOWN_SERVER_ERROR): 2,
    }
    assert metrics.requests == {(1, 12): 3} and metrics.latency[1].count == 3


def test_batch_counts_reads_every_batch_header() -> None:
    three = build_batch([(None, b"x", (), 1), (b"k", b"y", (), 2), (None, None, (), 3)])
    assert batch_counts(BATCH) == (2, len(BATCH))
    assert batch_counts(memoryview(BATCH + three)) == (5, len(BATCH) + len(three))
    assert batch_counts(BATCH + b"\0" * 60) == (2, len(BATCH) + 60)  # a short tail: no batch
    assert batch_counts(b"") == (0, 0)
