"""Incremental fetch sessions (KIP-227) on a live broker: the exact protocol over raw
requests, and real clients reading through session creation, eviction and errors.

kafka-python opens sessions (its FetchSessionHandler); librdkafka and aiokafka send
sessionless fetches (epoch -1), which must keep working while sessions come and go.
The broker keeps max.incremental.fetch.session.cache.slots=1 so that a follower's
session evicts a consumer's.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from strom.protocol.errors import ErrorCode
from strom.protocol.frame import decode_response
from strom.protocol.generated.create_topics import CreateTopicsRequest
from strom.protocol.generated.delete_topics import DeleteTopicsRequest
from strom.protocol.generated.fetch import FetchRequest, FetchResponse
from strom.protocol.generated.metadata import MetadataRequest
from strom.protocol.generated.produce import ProduceRequest
from strom.protocol.records import build_batch
from strom.testing.broker import BrokerFactory, BrokerProcess
from strom.testing.wire import RawClient

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("require_strom")]

CT = CreateTopicsRequest
FOLLOWER_ID = 5  # not a replica here: its partitions answer errors, but it gets a session


@pytest.fixture
def broker(broker_factory: BrokerFactory) -> BrokerProcess:
    """A broker of its own for each test: its session cache starts empty."""
    return broker_factory({"max.incremental.fetch.session.cache.slots": "1"})


@pytest.fixture
def raw(broker: BrokerProcess) -> Iterator[RawClient]:
    with RawClient(broker.bootstrap) as client:
        yield client


def create(raw: RawClient, name: str, partitions: int = 1) -> bytes:
    topic = CT.CreatableTopic(name=name, num_partitions=partitions, replication_factor=1)
    resp = raw.request(CT(topics=[topic], timeout_ms=5000), 7)
    assert resp.topics[0].error_code == 0
    return bytes(resp.topics[0].topic_id)


def produce(raw: RawClient, topic: str, partition: int, value: bytes) -> int:
    pd = ProduceRequest.PartitionProduceData(
        index=partition, records=build_batch([(None, value, (), int(time.time() * 1000))])
    )
    req = ProduceRequest(
        acks=-1,
        timeout_ms=5000,
        topic_data=[ProduceRequest.TopicProduceData(name=topic, partition_data=[pd])],
    )
    part = raw.request(req, 9).responses[0].partition_responses[0]
    assert part.error_code == 0
    return int(part.base_offset)


def fetch_req(
    topic: str,
    offsets: list[int],
    *,
    session_id: int = 0,
    epoch: int = 0,
    topic_id: bytes = bytes(16),
    forget: list[int] | None = None,
    max_wait_ms: int = 0,
) -> FetchRequest:
    parts = [
        FetchRequest.FetchPartition(partition=p, fetch_offset=o, partition_max_bytes=100_000)
        for p, o in enumerate(offsets)
    ]
    return FetchRequest(
        max_wait_ms=max_wait_ms,
        min_bytes=1,
        session_id=session_id,
        session_epoch=epoch,
        topics=[FetchRequest.FetchTopic(topic=topic, topic_id=topic_id, partitions=parts)]
        if parts
        else [],
        forgotten_topics_data=[FetchRequest.ForgottenTopic(topic, topic_id, forget)]
        if forget
        else [],
    )


def follower_fetch(topic: str, offsets: list[int], epoch: int) -> FetchRequest:
    req = fetch_req(topic, offsets, epoch=epoch)
    req.replica_id = FOLLOWER_ID
    return req


def answered(resp: FetchResponse) -> dict[int, tuple[int, int, int]]:
    """partition -> (error, high watermark, bytes of records) of an answer."""
    return {
        p.partition_index: (p.error_code, p.high_watermark, len(p.records or b""))
        for t in resp.responses
        for p in t.partitions
    }


# -- the protocol ---------------------------------------------------------------------
def test_a_session_is_created_and_answers_only_what_changed(
    raw: RawClient, topic_name: str
) -> None:
    create(raw, topic_name, 3)
    produce(raw, topic_name, 1, b"before")
    full = raw.request(fetch_req(topic_name, [0, 1, 0]), 12)
    assert full.error_code == 0 and full.session_id > 0
    assert set(answered(full)) == {0, 1, 2}  # a full answer names every partition
    sid = full.session_id

    # nothing new: an incremental fetch naming no partition gets an empty answer
    resp = raw.request(fetch_req(topic_name, [], session_id=sid, epoch=1), 12)
    assert (resp.error_code, resp.session_id, answered(resp)) == (0, sid, {})

    # a record on partition 2: only it is answered, from the cached fetch offset
    produce(raw, topic_name, 2, b"new")
    resp = raw.request(fetch_req(topic_name, [], session_id=sid, epoch=2), 12)
    assert answered(resp).keys() == {2}
    error, hw, size = answered(resp)[2]
    assert (error, hw) == (0, 1) and size > 0

    # the client moves partition 2 on (named with its new offset): nothing to answer
    req = fetch_req(topic_name, [], session_id=sid, epoch=3)
    req.topics = [
        FetchRequest.FetchTopic(
            topic=topic_name, partitions=[FetchRequest.FetchPartition(partition=2, fetch_offset=1)]
        )
    ]
    assert answered(raw.request(req, 12)) == {}


def test_session_errors(raw: RawClient, topic_name: str) -> None:
    create(raw, topic_name)
    sid = raw.request(fetch_req(topic_name, [0]), 12).session_id
    assert sid > 0
    resp = raw.request(fetch_req(topic_name, [], session_id=sid + 1, epoch=1), 12)
    assert (resp.error_code, resp.session_id) == (ErrorCode.FETCH_SESSION_ID_NOT_FOUND, 0)
    resp = raw.request(fetch_req(topic_name, [], session_id=sid, epoch=2), 12)
    assert (resp.error_code, resp.session_id) == (ErrorCode.INVALID_FETCH_SESSION_EPOCH, 0)
    assert raw.request(fetch_req(topic_name, [], session_id=sid, epoch=1), 12).error_code == 0
    # a request by topic id (v13) in a session created by name
    resp = raw.request(fetch_req(topic_name, [], session_id=sid, epoch=2), 13)
    assert resp.error_code == ErrorCode.FETCH_SESSION_TOPIC_ID_ERROR
    # epoch -1 closes the session
    resp = raw.request(fetch_req(topic_name, [0], session_id=sid, epoch=-1), 12)
    assert (resp.error_code, resp.session_id) == (0, 0)
    resp = raw.request(fetch_req(topic_name, [], session_id=sid, epoch=2), 12)
    assert resp.error_code == ErrorCode.FETCH_SESSION_ID_NOT_FOUND


def test_a_session_by_topic_id_reports_the_topic_deleted(raw: RawClient, topic_name: str) -> None:
    topic_id = create(raw, topic_name)
    full = raw.request(fetch_req("", [0], topic_id=topic_id), 13)
    sid = full.session_id
    assert sid > 0 and full.responses[0].topic_id == topic_id
    assert answered(raw.request(fetch_req("", [], session_id=sid, epoch=1), 13)) == {}
    raw.request(DeleteTopicsRequest(topic_names=[topic_name], timeout_ms=5000), 5)
    deadline = time.monotonic() + 10
    epoch = 2
    while True:
        resp = raw.request(fetch_req("", [], session_id=sid, epoch=epoch), 13)
        epoch += 1
        if answered(resp):
            break
        assert time.monotonic() < deadline, "the deletion never reached the session"
        time.sleep(0.1)
    error, _, size = answered(resp)[0]
    assert error == ErrorCode.UNKNOWN_TOPIC_ID and size == 0


def test_a_long_poll_in_a_session_returns_when_data_arrives(
    raw: RawClient, broker: BrokerProcess, topic_name: str
) -> None:
    create(raw, topic_name, 2)
    sid = raw.request(fetch_req(topic_name, [0, 0]), 12).session_id
    raw.request(fetch_req(topic_name, [], session_id=sid, epoch=1), 12)  # settle the cache
    with RawClient(broker.bootstrap) as other:
        started = time.monotonic()
        raw.send(fetch_req(topic_name, [], session_id=sid, epoch=2, max_wait_ms=5000), 12)
        time.sleep(0.3)
        produce(other, topic_name, 1, b"wake up")
        _, resp = decode_response(1, 12, raw.read_frame())
    assert time.monotonic() - started < 4
    assert answered(resp).keys() == {1} and answered(resp)[1][2] > 0


def test_a_follower_session_evicts_a_consumer_session(raw: RawClient, topic_name: str) -> None:
    create(raw, topic_name)
    consumer = raw.request(fetch_req(topic_name, [0]), 12).session_id
    assert consumer > 0
    # the cache (one slot) is full of a recent consumer session: no session for another
    assert raw.request(fetch_req(topic_name, [0]), 12).session_id == 0
    follower = raw.request(follower_fetch(topic_name, [0], epoch=0), 12)
    assert follower.session_id > 0  # privileged: it evicted the consumer's
    resp = raw.request(fetch_req(topic_name, [], session_id=consumer, epoch=1), 12)
    assert resp.error_code == ErrorCode.FETCH_SESSION_ID_NOT_FOUND


# -- real clients ---------------------------------------------------------------------
class Reader:
    """Polls one client; ``values()`` are the record values read so far, by partition."""

    def __init__(self, client: str, bootstrap: str, topic: str, partitions: int) -> None:
        self.client = client
        self.got: dict[int, list[bytes]] = {p: [] for p in range(partitions)}
        self._loop: asyncio.AbstractEventLoop | None = None
        self.c: Any
        if client == "confluent-kafka":
            from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

            self.c = Consumer(
                {
                    "bootstrap.servers": bootstrap,
                    "group.id": "unused",
                    "enable.auto.commit": False,
                    "fetch.wait.max.ms": 100,
                }
            )
            self.c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        elif client == "kafka-python":
            from kafka import KafkaConsumer, TopicPartition

            self.c = KafkaConsumer(
                bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=100
            )
            tps = [TopicPartition(topic, p) for p in range(partitions)]
            self.c.assign(tps)
            self.c.seek_to_beginning(*tps)
        else:
            from aiokafka import AIOKafkaConsumer, TopicPartition

            self._loop = asyncio.new_event_loop()

            async def start() -> Any:
                c = AIOKafkaConsumer(
                    bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=100
                )
                await c.start()
                tps = [TopicPartition(topic, p) for p in range(partitions)]
                c.assign(tps)
                await c.seek_to_beginning(*tps)
                return c

            self.c = self._loop.run_until_complete(start())

    def poll(self) -> None:
        if self.client == "confluent-kafka":
            for m in self.c.consume(num_messages=100, timeout=0.2):
                if m.error() is None:
                    self.got[m.partition()].append(m.value())
        elif self.client == "kafka-python":
            for tp, records in self.c.poll(timeout_ms=200).items():
                self.got[tp.partition] += [r.value for r in records]
        else:
            assert self._loop is not None
            batches = self._loop.run_until_complete(self.c.getmany(timeout_ms=200))
            for tp, records in batches.items():
                self.got[tp.partition] += [r.value for r in records]

    def read_until(self, count: int, between: Callable[[], None] = lambda: None) -> None:
        deadline = time.monotonic() + 30
        while sum(map(len, self.got.values())) < count:
            assert time.monotonic() < deadline, f"{self.client} read {self.got}"
            self.poll()
            between()

    def session_id(self) -> int:
        """kafka-python's current session with the broker (0: none)."""
        handlers = self.c._fetcher._session_handlers
        return max((h.next_metadata.session_id for h in handlers.values()), default=0)

    def close(self) -> None:
        if self._loop is not None:
            self._loop.run_until_complete(self.c.stop())
            self._loop.close()
        else:
            self.c.close()


@pytest.mark.parametrize("client", ["confluent-kafka", "kafka-python", "aiokafka"])
def test_clients_read_everything_while_sessions_are_evicted(
    raw: RawClient,
    broker: BrokerProcess,
    topic_name: str,
    client: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="kafka.consumer.fetcher")
    create(raw, topic_name, 3)
    sent: dict[int, list[bytes]] = {p: [] for p in range(3)}

    def send(n: int) -> None:
        for i in range(n):
            p = i % 3
            value = f"{p}-{len(sent[p])}".encode()
            produce(raw, topic_name, p, value)
            sent[p].append(value)

    send(30)
    reader = Reader(client, broker.bootstrap, topic_name, 3)
    try:
        reader.read_until(30)
        if client == "kafka-python":
            assert reader.session_id() > 0, "kafka-python opened no session"
        # a follower's session takes the only slot: a consumer session is evicted
        follower = raw.request(follower_fetch(topic_name, [0, 0, 0], epoch=0), 12)
        assert follower.session_id > 0
        send(15)
        reader.read_until(45)
        if client == "kafka-python":
            assert "FetchSessionIdNotFoundError" in caplog.text
            assert reader.session_id() == 0  # the slot is taken: sessionless for now
        # the follower leaves; a consumer session comes back, then loses a race
        raw.request(FetchRequest(replica_id=FOLLOWER_ID, session_id=follower.session_id), 12)
        send(15)
        reader.read_until(60)
        if client == "kafka-python":
            deadline = time.monotonic() + 10
            while reader.session_id() == 0:
                assert time.monotonic() < deadline, "no new session after the eviction"
                reader.poll()
            steal_epoch(raw, topic_name, reader.session_id())
            send(15)
            reader.read_until(75)
            assert "InvalidFetchSessionEpochError" in caplog.text
        else:
            send(15)
            reader.read_until(75)
    finally:
        reader.close()
    assert reader.got == sent  # every record once, in order, per partition


def steal_epoch(raw: RawClient, topic: str, session_id: int) -> None:
    """Move a client's session on by one epoch from another connection, as a duplicate
    request would: the client's next incremental fetch has a stale epoch."""
    for epoch in range(1, 10_000):
        resp = raw.request(fetch_req(topic, [], session_id=session_id, epoch=epoch), 12)
        if resp.error_code == 0:
            return
        assert resp.error_code == ErrorCode.INVALID_FETCH_SESSION_EPOCH
    raise AssertionError("the session's epoch was never found")


def test_sessionless_fetches_create_no_session(raw: RawClient, topic_name: str) -> None:
    """Epoch -1 (librdkafka's and aiokafka's fetches) leaves the cache alone: a consumer
    session still fits in the one slot afterwards."""
    create(raw, topic_name)
    for _ in range(3):
        assert raw.request(fetch_req(topic_name, [0], epoch=-1), 12).session_id == 0
    assert raw.request(fetch_req(topic_name, [0]), 12).session_id > 0
    md = raw.request(MetadataRequest(topics=None), 12)
    assert md.brokers  # the broker still serves
