"""The connection loop: pipelined requests, answers in order, idle connections closed."""

from __future__ import annotations

import importlib.util
import os
import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from strom.protocol.frame import RequestHeader, decode_response, encode_request
from strom.protocol.generated.create_topics import CreateTopicsRequest
from strom.protocol.generated.fetch import FetchRequest
from strom.protocol.generated.metadata import MetadataRequest
from strom.protocol.generated.produce import ProduceRequest
from strom.protocol.record_decoder import decode_batch
from strom.protocol.records import build_batch, iter_batches
from strom.testing.broker import BrokerProcess
from strom.testing.wire import RawClient

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("require_strom")]

CT = CreateTopicsRequest


@pytest.fixture(scope="module")
def broker_overrides() -> dict[str, str]:
    return {"connections.max.idle.ms": "1500"}


@pytest.fixture
def raw(broker: BrokerProcess) -> Iterator[RawClient]:
    with RawClient(broker.bootstrap) as client:
        yield client


def create(raw: RawClient, name: str) -> None:
    topic = CT.CreatableTopic(name=name, num_partitions=1, replication_factor=1)
    assert raw.request(CT(topics=[topic], timeout_ms=5000), 7).topics[0].error_code == 0


def produce_request(topic: str, value: bytes) -> ProduceRequest:
    batch = build_batch([(None, value, (), int(time.time() * 1000))])
    pd = ProduceRequest.PartitionProduceData(index=0, records=batch)
    return ProduceRequest(
        acks=1,
        timeout_ms=5000,
        topic_data=[ProduceRequest.TopicProduceData(name=topic, partition_data=[pd])],
    )


def frame(req: object, api_key: int, version: int, correlation: int) -> bytes:
    return encode_request(RequestHeader(api_key, version, correlation, "pipeline"), req)


def read_frame(sock: socket.socket) -> bytes:
    def exactly(n: int) -> bytes:
        out = b""
        while len(out) < n:
            got = sock.recv(n - len(out))
            assert got, "connection closed"
            out += got
        return out

    return exactly(struct.unpack(">i", exactly(4))[0])


def test_pipelined_requests_in_one_write_are_answered_in_order(
    raw: RawClient, broker: BrokerProcess, topic_name: str
) -> None:
    create(raw, topic_name)
    frames = [frame(produce_request(topic_name, b"v%d" % i), 0, 9, 100 + i) for i in range(50)]
    frames.append(frame(MetadataRequest(topics=None), 3, 12, 150))
    with socket.create_connection(("127.0.0.1", broker.port), timeout=10) as sock:
        sock.sendall(b"".join(frames))
        offsets = []
        for i in range(50):
            correlation, resp = decode_response(0, 9, read_frame(sock))
            assert correlation == 100 + i
            offsets.append(resp.responses[0].partition_responses[0].base_offset)
        assert offsets == list(range(50))
        correlation, _ = decode_response(3, 12, read_frame(sock))
        assert correlation == 150


def test_an_answer_leaves_before_a_later_request_finishes_waiting(
    raw: RawClient, broker: BrokerProcess, topic_name: str
) -> None:
    """A produce pipelined ahead of a long-polling fetch is answered at once, not
    when the fetch returns."""
    create(raw, topic_name)
    fetch = FetchRequest(
        max_wait_ms=3000,
        min_bytes=1,
        topics=[
            FetchRequest.FetchTopic(
                topic=topic_name,
                partitions=[FetchRequest.FetchPartition(fetch_offset=1, partition_max_bytes=1000)],
            )
        ],
    )
    with socket.create_connection(("127.0.0.1", broker.port), timeout=10) as sock:
        started = time.monotonic()
        sock.sendall(frame(produce_request(topic_name, b"a"), 0, 9, 1) + frame(fetch, 1, 12, 2))
        correlation, _ = decode_response(0, 9, read_frame(sock))
        produce_answered = time.monotonic() - started
        assert correlation == 1
        correlation, resp = decode_response(1, 12, read_frame(sock))
        fetch_answered = time.monotonic() - started
        assert correlation == 2 and resp.responses[0].partitions[0].records in (b"", None)
    assert produce_answered < 2.0 <= fetch_answered


def test_an_idle_connection_is_closed_after_connections_max_idle_ms(
    raw: RawClient, broker: BrokerProcess
) -> None:
    raw.request(MetadataRequest(topics=[]), 12)  # in use: still open
    started = time.monotonic()
    assert raw.is_closed_by_peer(timeout_s=10)
    assert 1.0 <= time.monotonic() - started < 8


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_large_fetches_go_out_whole_on_either_event_loop(tmp_path: Path, loop: str) -> None:
    """Record ranges above SENDFILE_MIN_BYTES leave with sendfile: loop.sendfile on
    asyncio's loop, os.sendfile in a worker thread on uvloop's."""
    if loop == "uvloop" and importlib.util.find_spec("uvloop") is None:
        pytest.skip("uvloop is not installed (the optional `fast` extra)")
    env = {k: v for k, v in os.environ.items() if k != "STROM_NO_UVLOOP"}
    if loop == "asyncio":
        env["STROM_NO_UVLOOP"] = "1"
    values = [bytes([65 + i]) * 60_000 for i in range(5)]
    with BrokerProcess(tmp_path, env=env) as broker, RawClient(broker.bootstrap) as raw:
        create(raw, "big")
        for v in values:
            resp = raw.request(produce_request("big", v), 9)
            assert resp.responses[0].partition_responses[0].error_code == 0
        part = FetchRequest.FetchPartition(fetch_offset=0, partition_max_bytes=10_000_000)
        fetch = FetchRequest(
            max_wait_ms=0, topics=[FetchRequest.FetchTopic(topic="big", partitions=[part])]
        )
        for _ in range(3):  # the same bytes every time, on one connection
            records = raw.request(fetch, 12).responses[0].partitions[0].records
            got = [r.value for _, b in iter_batches(records) for r in decode_batch(b)[1]]
            assert got == values
        assert f"event loop: {loop}" in broker.log_path.read_text()
