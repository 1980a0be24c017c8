"""Real Kafka clients against a real broker: produce, read back by partition and offset.

For each client (confluent-kafka, kafka-python, aiokafka, kcat) and each
compression codec: create a 3-partition topic, produce keyed and unkeyed
records with headers and explicit CreateTime timestamps in two waves (so each
partition holds several batches of several records), then check

- the offsets the broker acknowledged are 0..n-1 in every partition,
- reading every partition from offset 0 returns exactly those records
  (keys, values, headers, timestamps, order),
- reading from an offset in the middle of a batch starts exactly there,
- low and high watermarks are 0 and n.

ListOffsets by timestamp is checked per client on its own topic.
No consumer groups are used: readers assign partitions and seek.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import pytest

from strom.testing import BrokerProcess, Rec, assert_same_partitions, by_partition

pytestmark = pytest.mark.integration

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
CLIENTS = ["confluent-kafka", "kafka-python", "aiokafka", "kcat"]
PARTITIONS = 3
TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class Out:
    """A record to produce; partition None leaves the choice to the client's partitioner."""

    partition: int | None
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]
    timestamp_ms: int


def outgoing(tag: str, waves: int = 2, per_wave: int = 30) -> list[list[Out]]:
    """Keyed and unkeyed records, a tombstone, empty and large values, repeated headers."""
    base_ts = (int(time.time() * 1000) // 1000) * 1000 - 3_600_000
    result: list[list[Out]] = []
    i = 0
    for _ in range(waves):
        wave: list[Out] = []
        for _ in range(per_wave):
            partition: int | None = i % PARTITIONS
            key: bytes | None = None
            value: bytes | None = f"{tag}-value-{i}".encode()
            headers: tuple[tuple[str, bytes | None], ...] = ()
            if i % 3 == 1:  # keyed, partition chosen by the client
                partition, key = None, f"key-{i % 7}".encode()
            elif i % 3 == 2:  # keyed with an explicit partition
                key = f"pk-{i}".encode()
            if i % 4 == 0:
                headers = (("trace", f"t{i}".encode()),)
            if i % 10 == 5:
                headers = (("dup", b"1"), ("dup", b"2"), ("empty", b""))
            if i % 11 == 7:  # a large, compressible value
                value = (f"{tag}-big-{i}-".encode() + bytes(range(256))) * 40
            if i == 9:
                value = b""
            if i == 13:
                key, value = b"tombstone", None
            wave.append(Out(partition, key, value, headers, base_ts + 10 * i))
            i += 1
        result.append(wave)
    return result


class Driver(Protocol):
    """What each client library must do for these tests."""

    name: str
    sets_timestamps: bool

    def create_topic(self, topic: str, partitions: int) -> None: ...
    def produce(self, topic: str, waves: Sequence[Sequence[Out]], codec: str) -> list[Rec]: ...
    def read(self, topic: str, partition: int, offset: int, until: int) -> list[Rec]: ...
    def watermarks(self, topic: str, partition: int) -> tuple[int, int]: ...
    def offset_for_time(self, topic: str, partition: int, timestamp_ms: int) -> int | None: ...


def _h(headers: Sequence[tuple[str, bytes | None]] | None) -> tuple[tuple[str, bytes | None], ...]:
    return tuple((k, v) for k, v in headers or ())


def _deadline() -> float:
    return time.monotonic() + TIMEOUT_S


# -- confluent-kafka (librdkafka) ---------------------------------------------------------


class ConfluentDriver:
    name = "confluent-kafka"
    sets_timestamps = True

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap

    def create_topic(self, topic: str, partitions: int) -> None:
        from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        fut = admin.create_topics([NewTopic(topic, num_partitions=partitions)])[topic]
        fut.result(TIMEOUT_S)

    def produce(self, topic: str, waves: Sequence[Sequence[Out]], codec: str) -> list[Rec]:
        from confluent_kafka import Producer

        conf = {
            "bootstrap.servers": self.bootstrap,
            "acks": "all",
            "linger.ms": 50,
            "compression.type": codec,
            "enable.idempotence": False,
            "max.in.flight.requests.per.connection": 1,
        }
        producer = Producer(conf)
        acked: list[Rec] = []
        errors: list[str] = []

        def make_cb(out: Out) -> Any:
            def cb(err: Any, msg: Any) -> None:
                if err is not None:
                    errors.append(f"{out}: {err}")
                else:
                    acked.append(
                        Rec(
                            msg.partition(),
                            msg.offset(),
                            out.key,
                            out.value,
                            out.headers,
                            out.timestamp_ms,
                        )
                    )

            return cb

        for wave in waves:
            for out in wave:
                kwargs: dict[str, Any] = {
                    "key": out.key,
                    "value": out.value,
                    "timestamp": out.timestamp_ms,
                    "on_delivery": make_cb(out),
                }
                if out.headers:
                    kwargs["headers"] = list(out.headers)
                if out.partition is not None:
                    kwargs["partition"] = out.partition
                producer.produce(topic, **kwargs)
            assert producer.flush(TIMEOUT_S) == 0, "records still unacknowledged after flush"
        assert not errors, errors
        return acked

    def _consumer(self) -> Any:
        from confluent_kafka import Consumer

        # librdkafka insists on a group.id; with assign() and no commits it joins no group.
        return Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": "strom-tests-unused",
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                "auto.offset.reset": "error",
            }
        )

    def read(self, topic: str, partition: int, offset: int, until: int) -> list[Rec]:
        from confluent_kafka import KafkaError, TopicPartition

        consumer = self._consumer()
        out: list[Rec] = []
        try:
            consumer.assign([TopicPartition(topic, partition, offset)])
            deadline = _deadline()
            while time.monotonic() < deadline:
                msg = consumer.poll(0.5)
                if msg is None:
                    continue
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF and msg.offset() >= until:
                        return out
                    if err.code() == KafkaError._PARTITION_EOF:
                        continue
                    raise AssertionError(f"consumer error: {err}")
                _, ts = msg.timestamp()
                out.append(
                    Rec(
                        msg.partition(), msg.offset(), msg.key(), msg.value(), _h(msg.headers()), ts
                    )
                )
            raise AssertionError(f"timed out reading {topic}/{partition}; read {len(out)}")
        finally:
            consumer.close()

    def watermarks(self, topic: str, partition: int) -> tuple[int, int]:
        from confluent_kafka import TopicPartition

        consumer = self._consumer()
        try:
            low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=TIMEOUT_S
            )
            return int(low), int(high)
        finally:
            consumer.close()

    def offset_for_time(self, topic: str, partition: int, timestamp_ms: int) -> int | None:
        from confluent_kafka import TopicPartition

        consumer = self._consumer()
        try:
            (tp,) = consumer.offsets_for_times(
                [TopicPartition(topic, partition, timestamp_ms)], timeout=TIMEOUT_S
            )
            assert tp.error is None, tp.error
            return None if tp.offset < 0 else int(tp.offset)
        finally:
            consumer.close()


# -- kafka-python -----------------------------------------------------------------------


class KafkaPythonDriver:
    name = "kafka-python"
    sets_timestamps = True

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap

    def create_topic(self, topic: str, partitions: int) -> None:
        from kafka.admin import KafkaAdminClient, NewTopic

        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap)
        try:
            admin.create_topics([NewTopic(topic, partitions, 1)], timeout_ms=int(TIMEOUT_S * 1000))
        finally:
            admin.close()

    def produce(self, topic: str, waves: Sequence[Sequence[Out]], codec: str) -> list[Rec]:
        from kafka import KafkaProducer

        producer = KafkaProducer(
            bootstrap_servers=self.bootstrap,
            acks="all",
            linger_ms=50,
            compression_type=None if codec == "none" else codec,
            max_in_flight_requests_per_connection=1,
            enable_idempotence=False,
        )
        acked: list[Rec] = []
        try:
            for wave in waves:
                futures = [
                    (
                        out,
                        producer.send(
                            topic,
                            value=out.value,
                            key=out.key,
                            headers=list(out.headers),
                            partition=out.partition,
                            timestamp_ms=out.timestamp_ms,
                        ),
                    )
                    for out in wave
                ]
                producer.flush(TIMEOUT_S)
                for out, fut in futures:
                    md = fut.get(TIMEOUT_S)
                    acked.append(
                        Rec(
                            md.partition,
                            md.offset,
                            out.key,
                            out.value,
                            out.headers,
                            out.timestamp_ms,
                        )
                    )
        finally:
            producer.close()
        return acked

    def _consumer(self) -> Any:
        from kafka import KafkaConsumer

        return KafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="none",
        )

    def read(self, topic: str, partition: int, offset: int, until: int) -> list[Rec]:
        from kafka import TopicPartition

        tp = TopicPartition(topic, partition)
        consumer = self._consumer()
        out: list[Rec] = []
        try:
            consumer.assign([tp])
            consumer.seek(tp, offset)
            deadline = _deadline()
            while consumer.position(tp) < until and time.monotonic() < deadline:
                for msgs in consumer.poll(timeout_ms=500).values():
                    out += [
                        Rec(m.partition, m.offset, m.key, m.value, _h(m.headers), m.timestamp)
                        for m in msgs
                    ]
            if consumer.position(tp) < until:
                raise AssertionError(f"timed out reading {topic}/{partition}; read {len(out)}")
            return out
        finally:
            consumer.close()

    def watermarks(self, topic: str, partition: int) -> tuple[int, int]:
        from kafka import TopicPartition

        tp = TopicPartition(topic, partition)
        consumer = self._consumer()
        try:
            return consumer.beginning_offsets([tp])[tp], consumer.end_offsets([tp])[tp]
        finally:
            consumer.close()

    def offset_for_time(self, topic: str, partition: int, timestamp_ms: int) -> int | None:
        from kafka import TopicPartition

        tp = TopicPartition(topic, partition)
        consumer = self._consumer()
        try:
            found = consumer.offsets_for_times({tp: timestamp_ms})[tp]
            return None if found is None else int(found.offset)
        finally:
            consumer.close()


# -- aiokafka ---------------------------------------------------------------------------


class AiokafkaDriver:
    name = "aiokafka"
    sets_timestamps = True

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap

    def create_topic(self, topic: str, partitions: int) -> None:
        from aiokafka.admin import AIOKafkaAdminClient, NewTopic

        async def run() -> None:
            admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
            await admin.start()
            try:
                await admin.create_topics([NewTopic(topic, partitions, 1)])
            finally:
                await admin.close()

        asyncio.run(run())

    def produce(self, topic: str, waves: Sequence[Sequence[Out]], codec: str) -> list[Rec]:
        from aiokafka import AIOKafkaProducer

        async def run() -> list[Rec]:
            producer = AIOKafkaProducer(
                bootstrap_servers=self.bootstrap,
                acks="all",
                linger_ms=50,
                compression_type=None if codec == "none" else codec,
            )
            await producer.start()
            acked: list[Rec] = []
            try:
                for wave in waves:
                    futures = [
                        (
                            out,
                            await producer.send(
                                topic,
                                value=out.value,
                                key=out.key,
                                headers=list(out.headers),
                                partition=out.partition,
                                timestamp_ms=out.timestamp_ms,
                            ),
                        )
                        for out in wave
                    ]
                    for out, fut in futures:
                        md = await fut
                        acked.append(
                            Rec(
                                md.partition,
                                md.offset,
                                out.key,
                                out.value,
                                out.headers,
                                out.timestamp_ms,
                            )
                        )
            finally:
                await producer.stop()
            return acked

        return asyncio.run(run())

    async def _with_consumer(self, topic: str, partition: int, fn: Any) -> Any:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="none",
        )
        await consumer.start()
        try:
            tp = TopicPartition(topic, partition)
            consumer.assign([tp])
            return await fn(consumer, tp)
        finally:
            await consumer.stop()

    def read(self, topic: str, partition: int, offset: int, until: int) -> list[Rec]:
        async def fn(consumer: Any, tp: Any) -> list[Rec]:
            consumer.seek(tp, offset)
            out: list[Rec] = []
            async with asyncio.timeout(TIMEOUT_S):
                while await consumer.position(tp) < until:
                    for msgs in (await consumer.getmany(tp, timeout_ms=500)).values():
                        out += [
                            Rec(m.partition, m.offset, m.key, m.value, _h(m.headers), m.timestamp)
                            for m in msgs
                        ]
            return out

        result: list[Rec] = asyncio.run(self._with_consumer(topic, partition, fn))
        return result

    def watermarks(self, topic: str, partition: int) -> tuple[int, int]:
        async def fn(consumer: Any, tp: Any) -> tuple[int, int]:
            low = (await consumer.beginning_offsets([tp]))[tp]
            high = (await consumer.end_offsets([tp]))[tp]
            return int(low), int(high)

        result: tuple[int, int] = asyncio.run(self._with_consumer(topic, partition, fn))
        return result

    def offset_for_time(self, topic: str, partition: int, timestamp_ms: int) -> int | None:
        async def fn(consumer: Any, tp: Any) -> int | None:
            found = (await consumer.offsets_for_times({tp: timestamp_ms}))[tp]
            return None if found is None else int(found.offset)

        result: int | None = asyncio.run(self._with_consumer(topic, partition, fn))
        return result


# -- kcat -------------------------------------------------------------------------------


class KcatDriver:
    """kcat (librdkafka 2.x, C). It cannot create topics (confluent-kafka's admin does)
    and cannot set timestamps; it produces one partition per run, keys split at a tab,
    headers per run, so records are grouped by (partition, headers) per wave."""

    name = "kcat"
    sets_timestamps = False

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        kcat = shutil.which("kcat") or shutil.which("kafkacat")
        if kcat is None:
            pytest.fail("kcat is not installed (apt-get install kcat)")
        self.kcat: str = kcat

    def _run(self, args: list[str], stdin: bytes | None = None) -> str:
        proc = subprocess.run(
            [self.kcat, "-b", self.bootstrap, *args],
            input=stdin if stdin is not None else b"",
            capture_output=True,
            timeout=TIMEOUT_S,
        )
        if proc.returncode != 0:
            raise AssertionError(
                f"kcat {' '.join(args)} exited {proc.returncode}: "
                f"{proc.stderr.decode(errors='replace')[-2000:]}"
            )
        return proc.stdout.decode()

    def create_topic(self, topic: str, partitions: int) -> None:
        ConfluentDriver(self.bootstrap).create_topic(topic, partitions)

    @staticmethod
    def _kcat_records(waves: Sequence[Sequence[Out]]) -> list[list[Out]]:
        """Make records kcat can express: text, a partition each, no tombstones."""
        fixed: list[list[Out]] = []
        for w, wave in enumerate(waves):
            fixed_wave = []
            for i, out in enumerate(wave):
                partition = out.partition if out.partition is not None else i % PARTITIONS
                value = out.value if out.value else f"kcat-{w}-{i}".encode()
                value = value.replace(b"\n", b" ").replace(b"\t", b" ")
                value = bytes(b if 32 <= b < 127 else 46 for b in value)
                headers = tuple((k, v) for k, v in out.headers if v)
                fixed_wave.append(Out(partition, out.key, value, headers, out.timestamp_ms))
            fixed.append(fixed_wave)
        return fixed

    def produce(self, topic: str, waves: Sequence[Sequence[Out]], codec: str) -> list[Rec]:
        acked: list[Rec] = []
        next_offset = [0] * PARTITIONS
        for wave in self._kcat_records(waves):
            for partition in range(PARTITIONS):
                groups: dict[tuple[tuple[str, bytes | None], ...], list[Out]] = {}
                for out in wave:
                    if out.partition == partition:
                        groups.setdefault(out.headers, []).append(out)
                for headers, outs in groups.items():
                    args = ["-P", "-t", topic, "-p", str(partition), "-z", codec]
                    args += ["-X", "acks=all", "-K", "\t", "-X", "linger.ms=50"]
                    for k, v in headers:
                        args += ["-H", f"{k}={(v or b'').decode()}"]
                    lines = b"".join(
                        (o.key + b"\t" if o.key is not None else b"") + (o.value or b"") + b"\n"
                        for o in outs
                    )
                    self._run(args, lines)
                    for o in outs:
                        offset = next_offset[partition]
                        next_offset[partition] += 1
                        acked.append(Rec(partition, offset, o.key, o.value, headers, None))
        return acked

    def read(self, topic: str, partition: int, offset: int, until: int) -> list[Rec]:
        if until <= offset:
            return []
        count = until - offset
        text = self._run(
            [
                "-C",
                "-t",
                topic,
                "-p",
                str(partition),
                "-o",
                str(offset),
                "-c",
                str(count),
                "-e",
                "-J",
            ]
        )
        out = []
        for line in text.splitlines():
            if not line.strip():
                continue
            m = json.loads(line)
            raw_headers = m.get("headers") or []
            headers = tuple(
                (
                    raw_headers[j],
                    None if raw_headers[j + 1] is None else raw_headers[j + 1].encode(),
                )
                for j in range(0, len(raw_headers), 2)
            )
            key = None if m.get("key") is None else m["key"].encode()
            value = None if m.get("payload") is None else m["payload"].encode()
            out.append(Rec(m["partition"], m["offset"], key, value, headers, m.get("ts")))
        return out

    def _query(self, topic: str, partition: int, timestamp: int) -> int:
        text = self._run(["-Q", "-J", "-t", f"{topic}:{partition}:{timestamp}"])
        try:
            result = json.loads(text)[topic][str(partition)]
        except (ValueError, KeyError) as e:
            raise AssertionError(f"unexpected kcat -Q output: {text!r}") from e
        if "error" in result:
            raise AssertionError(f"kcat -Q {topic}:{partition}:{timestamp}: {result['error']}")
        return int(result["offset"])

    def watermarks(self, topic: str, partition: int) -> tuple[int, int]:
        return self._query(topic, partition, -2), self._query(topic, partition, -1)

    def offset_for_time(self, topic: str, partition: int, timestamp_ms: int) -> int | None:
        offset = self._query(topic, partition, timestamp_ms)
        return None if offset < 0 else offset


DRIVERS: dict[str, type[Driver]] = {
    "confluent-kafka": ConfluentDriver,
    "kafka-python": KafkaPythonDriver,
    "aiokafka": AiokafkaDriver,
    "kcat": KcatDriver,
}


def driver_for(name: str, broker: BrokerProcess) -> Driver:
    if name == "kafka-python":
        import kafka.codec

        missing = [
            c
            for c, ok in [
                ("snappy", kafka.codec.has_snappy()),
                ("lz4", kafka.codec.has_lz4()),
                ("zstd", kafka.codec.has_zstd()),
            ]
            if not ok
        ]
        if missing:
            pytest.fail(
                f"kafka-python lacks codec libraries for {missing}: "
                "install python-snappy, lz4 and zstandard (pip install -e '.[test]')"
            )
    return DRIVERS[name](broker.bootstrap)  # type: ignore[call-arg]


# -- the tests --------------------------------------------------------------------------


def check_offsets_contiguous(acked: Sequence[Rec]) -> None:
    for partition, recs in by_partition(acked).items():
        offsets = [r.offset for r in recs]
        assert offsets == list(range(len(recs))), (
            f"partition {partition}: acknowledged offsets {offsets} are not 0..{len(recs) - 1}"
        )


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("client", CLIENTS)
def test_produce_and_read_back(
    broker: BrokerProcess, topic_name: str, client: str, codec: str
) -> None:
    driver = driver_for(client, broker)
    driver.create_topic(topic_name, PARTITIONS)
    acked = driver.produce(topic_name, outgoing(f"{client}-{codec}"), codec)

    assert len(acked) == 60
    check_offsets_contiguous(acked)
    expected = by_partition(acked)
    assert sorted(expected) == list(range(PARTITIONS)), "every partition should get records"
    keyed_partitions: dict[bytes, set[int]] = {}
    for rec in acked:
        if rec.key is not None and rec.key.startswith(b"key-"):
            keyed_partitions.setdefault(rec.key, set()).add(rec.partition)
    assert all(len(ps) == 1 for ps in keyed_partitions.values()), keyed_partitions

    read = {p: driver.read(topic_name, p, 0, until=len(expected[p])) for p in range(PARTITIONS)}
    assert_same_partitions(expected, read, check_timestamps=driver.sets_timestamps)

    # From the middle of a batch: the client must get exactly the records from there on.
    for p in range(PARTITIONS):
        mid = len(expected[p]) // 2 + 1
        tail = driver.read(topic_name, p, mid, until=len(expected[p]))
        assert_same_partitions(
            {p: expected[p][mid:]}, {p: tail}, check_timestamps=driver.sets_timestamps
        )

    for p in range(PARTITIONS):
        assert driver.watermarks(topic_name, p) == (0, len(expected[p])), f"partition {p}"


@pytest.mark.parametrize("client", CLIENTS)
def test_list_offsets_by_timestamp(broker: BrokerProcess, topic_name: str, client: str) -> None:
    driver = driver_for(client, broker)
    driver.create_topic(topic_name, PARTITIONS)
    acked = driver.produce(topic_name, outgoing(f"{client}-times"), "lz4")
    expected = by_partition(acked)
    if not driver.sets_timestamps:
        # The producer stamped them: learn the timestamps by reading back.
        expected = {
            p: driver.read(topic_name, p, 0, until=len(recs)) for p, recs in expected.items()
        }

    for p, recs in expected.items():
        stamps = [r.timestamp_ms for r in recs]
        assert all(ts is not None for ts in stamps)
        targets = sorted({ts for ts in stamps if ts is not None})
        probes = [0, targets[0] - 1, *targets[1 :: max(1, len(targets) // 5)], targets[-1]]
        for target in probes:
            want = min(
                r.offset for r in recs if r.timestamp_ms is not None and r.timestamp_ms >= target
            )
            got = driver.offset_for_time(topic_name, p, target)
            assert got == want, f"partition {p}, timestamp {target}: offset {got}, expected {want}"
        after_last = driver.offset_for_time(topic_name, p, targets[-1] + 1)
        assert after_last is None, (
            f"partition {p}: timestamp after the last record gave offset {after_last}, "
            "expected none (-1)"
        )


def test_kafka_python_recognises_a_kafka_4_broker(
    broker: BrokerProcess, require_strom: None
) -> None:
    """kafka-python infers the broker's Kafka version from the API versions it lists
    (ListOffsets v10 means 4.0); strom lists what Kafka 4.0 lists for the APIs it has."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap)
    try:
        assert consumer.config["api_version"] >= (4, 0)
    finally:
        consumer.close()
