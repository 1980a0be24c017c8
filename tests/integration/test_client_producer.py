"""strom's producer against a real broker (strom's, or the reference broker with
STROM_TEST_BROKER=reference): interop, partitioning, option behaviour, bad input."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from strom.client.aio.producer import AIOProducer
from strom.client.blocking import Producer
from strom.client.errors import KafkaTimeoutError
from strom.client.messages import BufferExhaustedError, ProducerRecord, RecordTooLargeError
from strom.client.partitioner import partition_for_key
from strom.protocol.api_versions import ApiKey
from strom.protocol.errors import ErrorCode, KafkaError
from strom.testing import BrokerProcess
from strom.testing.broker import BrokerFactory
from tests.integration.test_client_support import (
    batch_counts,
    create_topic,
    lacks,
    require_apis,
)

pytestmark = pytest.mark.integration

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
TIMEOUT_S = 30.0


def _cfg(broker: BrokerProcess, **extra: Any) -> dict[str, Any]:
    return {
        "bootstrap.servers": broker.bootstrap,
        **{k.replace("_", "."): v for k, v in extra.items()},
    }


def _read_confluent(bootstrap: str, topic: str, partitions: int, expect: int) -> list[Any]:
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False}
    )
    c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    out: list[Any] = []
    deadline = time.monotonic() + TIMEOUT_S
    while len(out) < expect and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and m.error() is None:
            out.append(m)
    c.close()
    return out


# -- interop ------------------------------------------------------------------------------


@pytest.mark.parametrize("codec", CODECS)
def test_confluent_and_kafka_python_read_what_strom_produced(
    broker: BrokerProcess, topic_name: str, codec: str
) -> None:
    create_topic(broker.bootstrap, topic_name, 2)
    sent = []
    with Producer(_cfg(broker, compression_type=codec, linger_ms=20)) as p:
        futures = []
        for i in range(50):
            headers = [("i", str(i).encode()), ("dup", b"a"), ("dup", None)] if i % 2 else None
            futures.append(
                p.send(topic_name, f"v{i}".encode() * 20, key=f"k{i}".encode(), headers=headers)
            )
        for f in futures:
            sent.append(f.result(TIMEOUT_S))
    got = _read_confluent(broker.bootstrap, topic_name, 2, 50)
    assert len(got) == 50
    by_value = {m.value(): m for m in got}
    for i, md in enumerate(sent):
        m = by_value[f"v{i}".encode() * 20]
        assert (m.partition(), m.offset(), m.key()) == (md.partition, md.offset, f"k{i}".encode())
        if i % 2:
            assert m.headers() == [("i", str(i).encode()), ("dup", b"a"), ("dup", None)]
    from kafka import KafkaConsumer, TopicPartition

    kc = KafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False)
    kc.assign([TopicPartition(topic_name, p) for p in range(2)])
    kc.seek_to_beginning()
    values: list[bytes] = []
    deadline = time.monotonic() + TIMEOUT_S
    while len(values) < 50 and time.monotonic() < deadline:
        for records in kc.poll(500).values():
            values.extend(r.value for r in records)
    kc.close()
    assert sorted(values) == sorted(by_value)


def test_same_key_same_partition_as_confluent_murmur2_random(
    broker: BrokerProcess, topic_name: str
) -> None:
    from confluent_kafka import Producer as CProducer

    partitions = 7
    create_topic(broker.bootstrap, topic_name, partitions)
    keys = [f"user-{i}".encode() for i in range(40)] + [b"", b"\xff\x00\x10", b"x" * 100]
    theirs: dict[bytes, int] = {}
    cp = CProducer({"bootstrap.servers": broker.bootstrap, "partitioner": "murmur2_random"})
    for key in keys:
        cp.produce(
            topic_name,
            b"c",
            key=key,
            on_delivery=lambda e, m: theirs.__setitem__(m.key(), m.partition()),
        )
    cp.flush(TIMEOUT_S)
    with Producer(_cfg(broker)) as p:
        ours = {k: p.send(topic_name, b"s", key=k).result(TIMEOUT_S).partition for k in keys}
    assert ours == theirs
    assert all(ours[k] == partition_for_key(k, partitions) for k in keys)


# -- options --------------------------------------------------------------------------------


def _produce_n(broker: BrokerProcess, topic: str, n: int, **cfg: Any) -> int:
    async def run() -> int:
        async with AIOProducer(_cfg(broker, **cfg)) as p:
            futures = [await p.send(topic, b"x" * 100) for _ in range(n)]
            await asyncio.gather(*futures)
            return p.produce_requests

    return asyncio.run(run())


def test_linger_and_batch_size_change_the_number_of_batches(
    broker: BrokerProcess, topic_name: str
) -> None:
    one = f"{topic_name}-linger"
    many = f"{topic_name}-nolinger"
    small = f"{topic_name}-small"
    for t in (one, many, small):
        create_topic(broker.bootstrap, t, 1)
    requests_linger = _produce_n(broker, one, 200, linger_ms=1000, batch_size=1_000_000)

    # linger.ms=0 with send() awaited record by record: a batch per drain round.
    async def paced() -> int:
        async with AIOProducer(_cfg(broker, linger_ms=0)) as p:
            for _ in range(20):
                await (await p.send(many, b"x" * 100))
            return p.produce_requests

    requests_paced = asyncio.run(paced())
    _produce_n(broker, small, 200, linger_ms=1000, batch_size=1000)
    assert batch_counts(broker.bootstrap, one) == [200]
    assert requests_linger == 1
    assert batch_counts(broker.bootstrap, many) == [1] * 20 and requests_paced == 20
    small_batches = batch_counts(broker.bootstrap, small)
    assert sum(small_batches) == 200 and len(small_batches) >= 200 * 122 // 1000
    assert max(small_batches) <= (1000 - 61) // 122 + 1


def test_buffer_memory_blocks_then_raises(broker: BrokerProcess, topic_name: str) -> None:
    create_topic(broker.bootstrap, topic_name, 1)

    async def run() -> None:
        cfg = _cfg(
            broker, buffer_memory=10_000, max_block_ms=700, linger_ms=0, request_timeout_ms=20_000
        )
        async with AIOProducer(cfg) as p:
            await (await p.send(topic_name, b"warm"))
            broker.pause()
            try:
                start = time.monotonic()
                with pytest.raises(BufferExhaustedError) as err:
                    for _ in range(200):
                        await p.send(topic_name, b"x" * 500)
                waited = time.monotonic() - start
                assert 0.6 <= waited < 5, waited
                assert "buffer.memory" in str(err.value) and "max.block.ms" in str(err.value)
            finally:
                broker.resume()
            await p.flush(TIMEOUT_S)

    asyncio.run(run())


def test_acks_0_does_not_wait_for_the_broker(broker: BrokerProcess, topic_name: str) -> None:
    create_topic(broker.bootstrap, topic_name, 1)

    async def run() -> None:
        async with (
            AIOProducer(_cfg(broker, acks=0, linger_ms=0)) as p0,
            AIOProducer(_cfg(broker, acks=1, linger_ms=0)) as p1,
        ):
            await p0.partitions_for(topic_name)
            await p1.partitions_for(topic_name)
            broker.pause()
            done_at: list[float] = []
            try:
                f0 = await p0.send(topic_name, b"fire-and-forget")
                f1 = await p1.send(topic_name, b"acked")
                f1.add_done_callback(lambda _: done_at.append(time.monotonic()))
                md = await asyncio.wait_for(f0, 5)
                assert md.offset == -1
            finally:
                broker.resume()
                resumed_at = time.monotonic()
            assert (await asyncio.wait_for(f1, TIMEOUT_S)).offset >= 0
            # acks=1 waits for the broker: f1 completed once the broker ran again
            assert done_at and done_at[0] > resumed_at

    asyncio.run(run())


@pytest.mark.parametrize("idempotent", [True, False])
def test_retries_survive_a_broker_restart(
    broker_factory: Any, broker_kind: str, topic_name: str, idempotent: bool
) -> None:
    if broker_kind != "strom":
        pytest.skip("the reference broker keeps its log in memory: a restart loses the data")
    b = broker_factory({})
    create_topic(b.bootstrap, topic_name, 2)
    n = 3000
    cfg = _cfg(b, linger_ms=2, enable_idempotence=idempotent, retry_backoff_ms=50)
    if not idempotent:
        cfg["acks"] = "all"

    third = threading.Event()

    async def run() -> list[Any]:
        async with AIOProducer(cfg) as p:
            futures = []
            for i in range(n):
                futures.append(await p.send(topic_name, str(i).encode(), key=str(i).encode()))
                if i == n // 3:
                    third.set()  # the main thread restarts the broker (it owns the process)
                if i % 100 == 0:
                    await asyncio.sleep(0.01)
            return await asyncio.gather(*futures)

    result: list[Any] = []
    worker = threading.Thread(target=lambda: result.extend(asyncio.run(run())))
    worker.start()
    assert third.wait(TIMEOUT_S)
    b.restart(clean=False)
    worker.join(120)
    acked = result
    assert len(acked) == n and all(md.offset >= 0 for md in acked)
    got = _read_confluent(b.bootstrap, topic_name, 2, n)
    values = [int(m.value()) for m in got]
    assert set(values) == set(range(n)), "records were lost"
    if idempotent:
        assert len(values) == n, "idempotence let duplicates through"


# -- bad input ------------------------------------------------------------------------------


def test_unreachable_bootstrap_is_a_clear_timeout(topic_name: str) -> None:
    from strom.testing.broker import free_port

    start = time.monotonic()
    with pytest.raises(KafkaTimeoutError, match="bootstrap"):
        Producer({"bootstrap.servers": f"127.0.0.1:{free_port()}", "request.timeout.ms": 1500})
    assert time.monotonic() - start < 10


def test_some_bootstrap_servers_down(broker: BrokerProcess, topic_name: str) -> None:
    from strom.testing.broker import free_port

    servers = f"127.0.0.1:{free_port()},{broker.bootstrap}"
    with Producer({"bootstrap.servers": servers}) as p:
        assert p.send(topic_name, b"v").result(TIMEOUT_S).offset == 0


def test_use_all_dns_ips_tries_every_address_of_a_name(
    broker: BrokerProcess, topic_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """client.dns.lookup=use_all_dns_ips (the default): when a name resolves to several
    addresses and the first refuses, the next is tried. The resolver is the one stub
    here (this machine has no name with two addresses): 127.0.0.2 is loopback where
    nothing listens, so connecting there is refused."""
    from strom.net import connection

    real = connection._resolve

    async def two_addresses(host: str, port: int) -> list[str]:
        return ["127.0.0.2", *await real(host, port)]

    monkeypatch.setattr(connection, "_resolve", two_addresses)
    with Producer(_cfg(broker)) as p:
        assert p.send(topic_name, b"v").result(TIMEOUT_S).offset == 0
    with pytest.raises(KafkaError) as err:
        Producer(_cfg(broker, client_dns_lookup="default", request_timeout_ms=1500)).close()
    assert "127.0.0.2" in str(err.value)


def test_missing_topic_without_auto_creation_is_unknown_topic(
    broker_factory: BrokerFactory, topic_name: str, require_strom: None
) -> None:
    """auto.create.topics.enable=false: send() waits max.block.ms for the topic, then
    fails with UNKNOWN_TOPIC_OR_PARTITION, and so does partitions_for()."""
    b = broker_factory({"auto.create.topics.enable": "false"})
    with Producer(_cfg(b, max_block_ms=1500)) as p:
        start = time.monotonic()
        with pytest.raises(KafkaError) as err:
            p.send(topic_name, b"v")
        assert err.value.code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        assert str(err.value) == f"Topic {topic_name} not present in metadata after 1500 ms."
        assert time.monotonic() - start >= 1.4
        with pytest.raises(KafkaError) as err:
            p.partitions_for(topic_name)
        assert err.value.code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION


def test_oversize_record_is_message_too_large_locally(
    broker: BrokerProcess, topic_name: str
) -> None:
    create_topic(broker.bootstrap, topic_name, 1)
    with Producer(_cfg(broker, max_request_size=1000)) as p:
        with pytest.raises(RecordTooLargeError) as err:
            p.send(topic_name, b"x" * 2000)
        assert err.value.code == ErrorCode.MESSAGE_TOO_LARGE
        assert "max.request.size" in str(err.value)
        assert p.send(ProducerRecord(topic_name, b"small")).result(TIMEOUT_S).offset == 0


def test_a_batch_too_large_for_the_topic_is_split_and_a_lone_record_fails(
    broker: BrokerProcess, broker_kind: str, topic_name: str
) -> None:
    """max.message.bytes below the batch: the broker answers MESSAGE_TOO_LARGE, the
    producer halves the batch until the parts fit (order and sequences kept); a
    single record over the limit fails with MESSAGE_TOO_LARGE."""
    from strom.testing.kafka import create_topic as create_with_config

    create_with_config(broker.bootstrap, topic_name, 1, {"max.message.bytes": "1500"})
    values = [b"%04d" % i + b"x" * 96 for i in range(40)]  # about 4.9 KB in one batch

    async def run() -> tuple[list[Any], int, BaseException | None]:
        cfg = _cfg(broker, linger_ms=300, batch_size=100_000, compression_type="none")
        async with AIOProducer(cfg) as p:
            futures = [await p.send(topic_name, v) for v in values]
            mds = await asyncio.gather(*futures)
            try:
                await (await p.send(topic_name, b"y" * 3000))
            except KafkaError as exc:
                return mds, p.batches_split, exc
            return mds, p.batches_split, None

    mds, splits, lone = asyncio.run(run())
    if splits == 0:
        lacks(broker_kind, "accepted a batch over max.message.bytes (no limit enforced)")
    assert [md.offset for md in mds] == list(range(40))
    assert isinstance(lone, KafkaError) and lone.code == ErrorCode.MESSAGE_TOO_LARGE
    batches = batch_counts(broker.bootstrap, topic_name)
    assert sum(batches) == 40 and max(batches) <= (1500 - 61) // 100
    got = _read_confluent(broker.bootstrap, topic_name, 1, 40)
    assert [m.value() for m in got] == values


def test_serializers_callbacks_and_records(broker: BrokerProcess, topic_name: str) -> None:
    create_topic(broker.bootstrap, topic_name, 1)
    seen: list[Any] = []
    done = threading.Event()

    def cb(md: Any, err: Any) -> None:
        seen.append((md, err))
        done.set()

    with Producer(_cfg(broker, key_serializer="str", value_serializer="json")) as p:
        f = p.send(
            ProducerRecord(topic_name, {"a": [1, 2]}, key="k", headers=[("h", "v")]), on_delivery=cb
        )
        md = f.result(TIMEOUT_S)
        assert done.wait(5) and seen == [(md, None)]
    (m,) = _read_confluent(broker.bootstrap, topic_name, 1, 1)
    assert (m.key(), m.value(), m.headers()) == (b"k", b'{"a":[1,2]}', [("h", b"v")])


def test_transactions(broker: BrokerProcess, broker_kind: str, topic_name: str) -> None:
    require_apis(broker.bootstrap, broker_kind, ApiKey.ADD_PARTITIONS_TO_TXN, ApiKey.END_TXN)
    create_topic(broker.bootstrap, topic_name, 1)
    cfg = _cfg(broker, transactional_id=f"tx-{topic_name}")
    with Producer(cfg) as p:
        p.init_transactions()
        p.begin_transaction()
        p.send(topic_name, b"aborted")
        p.abort_transaction()
        p.begin_transaction()
        p.send(topic_name, b"committed").result(TIMEOUT_S)
        p.commit_transaction()
        with Producer(cfg) as newer:
            newer.init_transactions()  # fences the first instance
            p.begin_transaction()
            with pytest.raises(KafkaError) as err:
                p.send(topic_name, b"zombie").result(TIMEOUT_S)
                p.commit_transaction()
            assert err.value.code in (ErrorCode.PRODUCER_FENCED, ErrorCode.INVALID_PRODUCER_EPOCH)


def test_a_raising_delivery_callback_does_not_stop_other_records(
    broker: BrokerProcess, topic_name: str
) -> None:
    create_topic(broker.bootstrap, topic_name, 1)

    def bad(md: Any, err: Any) -> None:
        raise RuntimeError("a user bug")

    with Producer(_cfg(broker, linger_ms=50)) as p:
        first = p.send(topic_name, b"a", on_delivery=bad)
        second = p.send(topic_name, b"b")
        p.flush(TIMEOUT_S)
        assert (first.result(TIMEOUT_S).offset, second.result(TIMEOUT_S).offset) == (0, 1)
