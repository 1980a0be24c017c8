"""Exactly-once with real clients: idempotent producers, transactions, read_committed.

Producers: confluent-kafka (librdkafka) and kafka-python. Consumers read in
assign mode. Restarts and kill -9 use strom's own broker process.
"""

from __future__ import annotations

import gc
import threading
import time
import uuid
import warnings
from typing import Any

import pytest

from strom.protocol.errors import ErrorCode
from strom.protocol.generated.describe_producers import DescribeProducersRequest
from strom.protocol.generated.describe_transactions import DescribeTransactionsRequest
from strom.protocol.generated.list_transactions import ListTransactionsRequest
from strom.protocol.generated.produce import ProduceRequest
from strom.protocol.records import build_batch
from strom.testing.broker import BrokerProcess
from strom.testing.kafka import create_topic
from strom.testing.wire import RawClient

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("require_strom")]

TIMEOUT_S = 30.0
TXN_SETTINGS = {
    "transaction.state.log.num.partitions": "5",
    "transaction.abort.timed.out.transaction.cleanup.interval.ms": "200",
    "offsets.topic.num.partitions": "3",
}


@pytest.fixture(scope="module")
def broker_overrides() -> dict[str, str]:
    return dict(TXN_SETTINGS)


def txn_producer(bootstrap: str, txn_id: str, **conf: Any) -> Any:
    from confluent_kafka import Producer

    settings = {"bootstrap.servers": bootstrap, "transactional.id": txn_id, "linger.ms": 5}
    settings.update(conf)
    p = Producer(settings)
    p.init_transactions(TIMEOUT_S)
    return p


def read_values(
    bootstrap: str, topic: str, partitions: int, isolation: str, expect: int | None = None
) -> list[tuple[int, int, bytes]]:
    """(partition, offset, value) of every record up to the end (or ``expect`` records)."""
    from confluent_kafka import Consumer, KafkaError, TopicPartition

    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "strom-txn-tests-unused",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": isolation,
        }
    )
    out: list[tuple[int, int, bytes]] = []
    try:
        c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        at_end: set[int] = set()
        deadline = time.monotonic() + TIMEOUT_S
        while (expect is None and len(at_end) < partitions) or (
            expect is not None and len(out) < expect
        ):
            assert time.monotonic() < deadline, f"timed out reading {topic}: {len(out)} read"
            msg = c.poll(0.2)
            if msg is None:
                continue
            if msg.error() is not None:
                assert msg.error().code() == KafkaError._PARTITION_EOF, msg.error()
                at_end.add(msg.partition())
                continue
            at_end.discard(msg.partition())
            out.append((msg.partition(), msg.offset(), msg.value()))
        return out
    finally:
        c.close()


class Chaos:
    """Restarts (or kill -9 and starts) a broker every ``every_s``, from the test's thread.

    Brokers must be started from a thread that outlives them (strom.testing sets
    PR_SET_PDEATHSIG), so the producing loop calls :meth:`tick` between sends.
    """

    def __init__(self, broker: BrokerProcess, every_s: float, kill: bool) -> None:
        self.broker, self.every_s, self.kill = broker, every_s, kill
        self.next_at = time.monotonic() + every_s
        self.restarts = 0

    def tick(self) -> None:
        if time.monotonic() < self.next_at:
            return
        if self.kill:
            self.broker.kill()
            self.broker.start()
        else:
            self.broker.restart()
        self.restarts += 1
        self.next_at = time.monotonic() + self.every_s


def check_exactly_once(read: list[tuple[int, int, bytes]], sent: dict[int, list[bytes]]) -> None:
    by_partition: dict[int, list[bytes]] = {}
    for partition, _, value in sorted(read):
        by_partition.setdefault(partition, []).append(value)
    for partition, values in sent.items():
        got = by_partition.get(partition, [])
        assert len(got) == len(set(got)), f"duplicates in partition {partition}"
        assert got == values, f"partition {partition}: {len(got)} read, {len(values)} sent"


# -- idempotent producers --------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("kill", [False, True], ids=["restart", "kill9"])
def test_confluent_idempotent_producer_no_duplicates_across_restarts(
    broker_factory: Any, topic_name: str, kill: bool
) -> None:
    from confluent_kafka import Producer

    broker = broker_factory(TXN_SETTINGS)
    create_topic(broker.bootstrap, topic_name, 3)
    p = Producer(
        {
            "bootstrap.servers": broker.bootstrap,
            "enable.idempotence": True,
            "linger.ms": 2,
            "batch.num.messages": 50,
            "message.timeout.ms": 60_000,
        }
    )
    errors: list[str] = []
    sent: dict[int, list[bytes]] = {0: [], 1: [], 2: []}

    def delivered(err: Any, msg: Any) -> None:
        if err is not None:
            errors.append(str(err))

    chaos = Chaos(broker, 1.0, kill)
    n = 20_000
    for i in range(n):
        value = b"v%06d" % i
        sent[i % 3].append(value)
        while True:
            try:
                p.produce(topic_name, value=value, partition=i % 3, on_delivery=delivered)
                break
            except BufferError:
                p.poll(0.05)
        if i % 500 == 0:
            p.poll(0)
            time.sleep(0.05)
            chaos.tick()
    assert p.flush(60) == 0
    assert chaos.restarts >= 1
    assert not errors, errors[:5]
    check_exactly_once(read_values(broker.bootstrap, topic_name, 3, "read_uncommitted"), sent)


@pytest.mark.slow
def test_kafka_python_idempotent_producer_no_duplicates_across_restarts(
    broker_factory: Any, topic_name: str
) -> None:
    from kafka import KafkaProducer

    broker = broker_factory(TXN_SETTINGS)
    create_topic(broker.bootstrap, topic_name, 3)
    p = KafkaProducer(
        bootstrap_servers=broker.bootstrap,
        enable_idempotence=True,
        acks="all",
        linger_ms=2,
        retries=1_000_000,
        request_timeout_ms=5000,
        delivery_timeout_ms=120_000,
        reconnect_backoff_max_ms=200,
    )
    sent: dict[int, list[bytes]] = {0: [], 1: [], 2: []}
    futures = []
    chaos = Chaos(broker, 0.7, False)
    for i in range(6000):
        value = b"k%06d" % i
        sent[i % 3].append(value)
        futures.append(p.send(topic_name, value=value, partition=i % 3))
        if i % 100 == 0:
            time.sleep(0.05)
            chaos.tick()
    p.flush(120)
    assert chaos.restarts >= 1
    for f in futures:
        f.get(timeout=1)
    p.close()
    with warnings.catch_warnings():  # kafka-python leaks sockets of refused connections
        warnings.simplefilter("ignore", ResourceWarning)
        del p, futures
        gc.collect()
    check_exactly_once(read_values(broker.bootstrap, topic_name, 3, "read_uncommitted"), sent)


# -- transactions ----------------------------------------------------------------------------


def test_aborted_transactions_are_invisible_to_read_committed(
    broker: BrokerProcess, topic_name: str
) -> None:
    create_topic(broker.bootstrap, topic_name, 2)
    p = txn_producer(broker.bootstrap, f"abort-{uuid.uuid4().hex[:6]}")
    for tag, commit in (("c1", True), ("a1", False), ("c2", True), ("a2", False)):
        p.begin_transaction()
        for i in range(10):
            p.produce(topic_name, value=f"{tag}-{i}".encode(), partition=i % 2)
        p.flush(TIMEOUT_S)  # the records reach the log before the abort
        if commit:
            p.commit_transaction(TIMEOUT_S)
        else:
            p.abort_transaction(TIMEOUT_S)
    committed = read_values(broker.bootstrap, topic_name, 2, "read_committed")
    uncommitted = read_values(broker.bootstrap, topic_name, 2, "read_uncommitted")
    tags = lambda rows: sorted({v.split(b"-")[0].decode() for _, _, v in rows})  # noqa: E731
    assert tags(committed) == ["c1", "c2"] and len(committed) == 20
    assert tags(uncommitted) == ["a1", "a2", "c1", "c2"] and len(uncommitted) == 40
    # control records take offsets but are never returned to applications
    offsets = sorted(o for part, o, _ in uncommitted if part == 0)
    assert offsets[-1] > len(offsets) - 1


def test_zombie_producer_is_fenced(broker: BrokerProcess, topic_name: str) -> None:
    from confluent_kafka import KafkaException

    create_topic(broker.bootstrap, topic_name, 1)
    txn_id = f"zombie-{uuid.uuid4().hex[:6]}"
    first = txn_producer(broker.bootstrap, txn_id)
    first.begin_transaction()
    first.produce(topic_name, value=b"zombie-1", partition=0)
    first.flush(TIMEOUT_S)
    second = txn_producer(broker.bootstrap, txn_id)  # aborts the zombie's transaction
    second.begin_transaction()
    second.produce(topic_name, value=b"live-1", partition=0)
    second.commit_transaction(TIMEOUT_S)
    with pytest.raises(KafkaException) as info:
        first.produce(topic_name, value=b"zombie-2", partition=0)
        first.flush(TIMEOUT_S)
        first.commit_transaction(TIMEOUT_S)
    assert info.value.args[0].fatal() or "fenced" in str(info.value).lower()
    values = [v for _, _, v in read_values(broker.bootstrap, topic_name, 1, "read_committed")]
    assert values == [b"live-1"]


def test_hanging_transaction_is_aborted_after_timeout_even_across_kill9(
    broker_factory: Any, topic_name: str
) -> None:
    broker = broker_factory(TXN_SETTINGS)
    create_topic(broker.bootstrap, topic_name, 1)
    hanging = txn_producer(broker.bootstrap, "hanging", **{"transaction.timeout.ms": 3000})
    hanging.begin_transaction()
    hanging.produce(topic_name, value=b"never-committed", partition=0)
    hanging.flush(TIMEOUT_S)
    broker.kill()
    broker.start()
    other = txn_producer(broker.bootstrap, "after-restart")
    other.begin_transaction()
    other.produce(topic_name, value=b"committed", partition=0)
    other.commit_transaction(TIMEOUT_S)
    # read_committed sees "committed" only once the hanging transaction is aborted
    started = time.monotonic()
    rows = read_values(broker.bootstrap, topic_name, 1, "read_committed", expect=1)
    assert [v for _, _, v in rows] == [b"committed"]
    assert time.monotonic() - started < 15
    with RawClient(broker.bootstrap) as raw:
        described = raw.request(DescribeTransactionsRequest(["hanging"]), 0)
        state = described.transaction_states[0]
        assert (state.error_code, state.transaction_state) == (0, "CompleteAbort")
        assert state.producer_epoch == 1  # bumped: the hanging producer is fenced
        listed = raw.request(ListTransactionsRequest(state_filters=["Ongoing"]), 1)
        assert listed.error_code == 0 and listed.transaction_states == []
        missing = raw.request(DescribeTransactionsRequest(["nope"]), 0)
        assert missing.transaction_states[0].error_code == ErrorCode.TRANSACTIONAL_ID_NOT_FOUND
        producers = raw.request(
            DescribeProducersRequest([DescribeProducersRequest.TopicRequest(topic_name, [0])]), 0
        )
        active = producers.topics[0].partitions[0].active_producers
        assert len(active) == 2 and all(a.current_txn_start_offset == -1 for a in active)


def test_transactional_produce_to_partition_not_in_transaction_is_refused(
    broker: BrokerProcess, topic_name: str
) -> None:
    """KIP-890 verification: the producer never called AddPartitionsToTxn for this partition."""
    from confluent_kafka import Producer  # noqa: F401  (ensures the same client stack)

    create_topic(broker.bootstrap, topic_name, 2)
    txn_id = f"verify-{uuid.uuid4().hex[:6]}"
    p = txn_producer(broker.bootstrap, txn_id)
    p.begin_transaction()
    p.produce(topic_name, value=b"in-txn", partition=0)
    p.flush(TIMEOUT_S)
    with RawClient(broker.bootstrap) as raw:
        described = raw.request(DescribeTransactionsRequest([txn_id]), 0).transaction_states[0]
        pid, epoch = described.producer_id, described.producer_epoch
        assert described.transaction_state == "Ongoing"

        def produce(partition: int, producer_epoch: int) -> int:
            batch = build_batch(
                [(None, b"sneaky", (), int(time.time() * 1000))],
                producer_id=pid,
                producer_epoch=producer_epoch,
                base_sequence=0 if partition == 1 else 1000,
                is_transactional=True,
            )
            req = ProduceRequest(
                transactional_id=txn_id,
                acks=-1,
                timeout_ms=5000,
                topic_data=[
                    ProduceRequest.TopicProduceData(
                        topic_name, [ProduceRequest.PartitionProduceData(partition, batch)]
                    )
                ],
            )
            resp = raw.request(req, 9)
            return int(resp.responses[0].partition_responses[0].error_code)

        assert produce(1, epoch) == ErrorCode.INVALID_TXN_STATE
        assert produce(1, epoch - 1 if epoch else epoch + 1) == ErrorCode.INVALID_PRODUCER_EPOCH
    p.commit_transaction(TIMEOUT_S)
    rows = read_values(broker.bootstrap, topic_name, 2, "read_committed")
    assert [v for _, _, v in rows] == [b"in-txn"]


# -- consume-transform-produce ---------------------------------------------------------------

COPIER = r"""
import sys, time
from confluent_kafka import Consumer, Producer, TopicPartition, KafkaException

bootstrap, source, target, batch = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": "copier",
                     "linger.ms": 5, "transaction.timeout.ms": 10000})
producer.init_transactions(30)
consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "copier",
                     "isolation.level": "read_committed", "enable.auto.commit": False,
                     "auto.offset.reset": "earliest"})
consumer.assign([TopicPartition(source, 0), TopicPartition(source, 1)])
while True:
    msgs = [m for m in consumer.consume(batch, timeout=0.5) if m.error() is None]
    if not msgs:
        continue
    producer.begin_transaction()
    for m in msgs:
        producer.produce(target, key=m.key(), value=m.value(), partition=hash(m.value()) % 3)
    positions = consumer.position(consumer.assignment())
    producer.send_offsets_to_transaction(positions, consumer.consumer_group_metadata(), 30)
    producer.commit_transaction(30)
    time.sleep(0.05)
"""


def committed_offsets(bootstrap: str, topic: str) -> list[int]:
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "copier"})
    try:
        got = c.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)], timeout=10)
        return [tp.offset for tp in got]
    finally:
        c.close()


class Supervisor:
    """Runs the copier process and starts it again whenever it exits."""

    def __init__(self, argv: list[str]) -> None:
        import subprocess

        self.argv = argv
        self.popen = subprocess.Popen
        self.proc = self.popen(argv)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    def _watch(self) -> None:
        while not self.stopped.wait(0.2):
            if self.proc.poll() is not None:
                self.proc = self.popen(self.argv)

    def kill(self) -> None:
        self.proc.kill()

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join()
        self.proc.kill()
        self.proc.wait()


@pytest.mark.slow
def test_consume_transform_produce_exactly_once_with_kills(
    broker_factory: Any, tmp_path: Any
) -> None:
    import sys

    from confluent_kafka import Producer

    broker = broker_factory(TXN_SETTINGS)
    create_topic(broker.bootstrap, "input", 2)
    create_topic(broker.bootstrap, "output", 3)
    n = 100_000
    p = Producer({"bootstrap.servers": broker.bootstrap, "enable.idempotence": True})
    for i in range(n):
        while True:
            try:
                p.produce("input", value=b"r%06d" % i, partition=i % 2)
                break
            except BufferError:
                p.poll(0.05)
    assert p.flush(TIMEOUT_S) == 0
    script = tmp_path / "copier.py"
    script.write_text(COPIER)
    copier = Supervisor([sys.executable, str(script), broker.bootstrap, "input", "output", "750"])
    try:
        progress: list[int] = []
        for step in range(4):
            time.sleep(2.0)
            progress.append(sum(committed_offsets(broker.bootstrap, "input")))
            if step % 2 == 0:
                copier.kill()
            else:
                broker.kill()
                broker.start()
        deadline = time.monotonic() + 50
        last, last_change = committed_offsets(broker.bootstrap, "input"), time.monotonic()
        while last != [n // 2, n // 2]:
            assert time.monotonic() < deadline, last
            time.sleep(0.5)
            now = committed_offsets(broker.bootstrap, "input")
            if now != last:
                last, last_change = now, time.monotonic()
            elif time.monotonic() - last_change > 8:
                # librdkafka 2.16 can hang in send_offsets_to_transaction (past its timeout,
                # GIL held) when the broker is killed during the call: restart the copier.
                copier.kill()
                last_change = time.monotonic()
    finally:
        copier.stop()
    rows = read_values(broker.bootstrap, "output", 3, "read_committed")
    values = sorted(v for _, _, v in rows)
    assert len(values) == len(set(values)), f"{len(values) - len(set(values))} duplicates"
    assert values == [b"r%06d" % i for i in range(n)]
    assert progress[0] < n, f"the copy ended before the first kill: {progress}"
