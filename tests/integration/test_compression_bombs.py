"""Decompression bombs: batches of a few hundred KB that expand to hundreds of MB.

Every broker path that reads records out of a compressed batch (the key check on
compacted topics, ListOffsets by timestamp, the log cleaner, coordinator loading)
must stream them with bounded memory, as Kafka walks a compressed batch through a
decompressing InputStream. Each test starts its own broker, feeds it bombs of
each codec and checks the process's peak resident memory (VmHWM) stays under
RSS_BOUND_MB whatever the batch expands to; the broker then keeps serving.

The bombs are built here by hand (v2 batch header, CRC32C, records) and
compressed piece by piece, so the test itself never holds the expanded bytes.
"""

from __future__ import annotations

import struct
import time
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path

import cramjam
import crc32c
import lz4.frame
import pytest
import zstandard

from strom.protocol.generated.list_offsets import ListOffsetsRequest
from strom.protocol.generated.produce import ProduceRequest
from strom.testing import BrokerProcess
from strom.testing.broker import BrokerFactory
from strom.testing.kafka import create_topic, produce_acked, read_all
from strom.testing.wire import RawClient

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MB = 1 << 20
RSS_BOUND_MB = 250  # an idle broker peaks near 60 MB; an unbounded one at twice the bomb
BOMB_BYTES = 400 * MB  # the huge value's size, uncompressed
TOPIC_MAX_BYTES = 32 * MB  # snappy expands at most ~21 times: its bombs are ~19 MB batches
CODECS = {"gzip": 1, "snappy": 2, "snappy-raw": 2, "lz4": 3, "zstd": 4}
INVALID_RECORD = 87
NO_ERROR = 0
ADMIN_CLIENT_ID = "__admin_client"  # Kafka lets only this client id write internal topics
ZEROS = memoryview(bytes(MB))
DEADLINE_S = 60.0


# -- building bombs -----------------------------------------------------------------------


def uvarint(n: int) -> bytes:
    out = bytearray()
    while True:
        if n < 0x80:
            out.append(n)
            return bytes(out)
        out.append((n & 0x7F) | 0x80)
        n >>= 7


def zigzag(n: int) -> bytes:
    return uvarint((n << 1) ^ (n >> 63))


def record_head(offset_delta: int, key: bytes | None, value_size: int) -> bytes:
    """A record up to its value: length, attributes, deltas, key, value length."""
    key_part = zigzag(-1) if key is None else zigzag(len(key)) + key
    head = b"\x00" + zigzag(0) + zigzag(offset_delta) + key_part + zigzag(value_size)
    return zigzag(len(head) + value_size + 1) + head


def record_pieces(offset_delta: int, key: bytes | None, value_size: int) -> Iterator[bytes]:
    """One record whose value is ``value_size`` zero bytes, in pieces of at most 1 MB."""
    yield record_head(offset_delta, key, value_size)
    left = value_size
    while left:
        n = min(left, len(ZEROS))
        yield bytes(ZEROS[:n])
        left -= n
    yield b"\x00"  # no headers


def rechunk(pieces: Iterable[bytes], size: int) -> Iterator[bytes]:
    pending = bytearray()
    for piece in pieces:
        pending += piece
        while len(pending) >= size:
            yield bytes(pending[:size])
            del pending[:size]
    if pending:
        yield bytes(pending)


def compress(codec: str, pieces: Iterable[bytes]) -> bytes:
    """Compress streaming: only the compressed output is ever held."""
    out: list[bytes] = []
    if codec == "gzip":
        z = zlib.compressobj(6, zlib.DEFLATED, 31)
        out += [z.compress(p) for p in pieces] + [z.flush()]
    elif codec == "lz4":
        c = lz4.frame.LZ4FrameCompressor()
        out += [c.begin()] + [c.compress(p) for p in pieces] + [c.flush()]
    elif codec == "zstd":
        zc = zstandard.ZstdCompressor(level=3).compressobj()
        out += [zc.compress(p) for p in pieces] + [zc.flush()]
    else:  # snappy-java's (xerial) framing, as the Java client writes it, 1 MB blocks
        out.append(b"\x82SNAPPY\x00" + struct.pack(">ii", 1, 1))
        for block in rechunk(pieces, MB):
            raw = bytes(cramjam.snappy.compress_raw(block))
            out += [struct.pack(">i", len(raw)), raw]
    return b"".join(out)


def raw_snappy_bomb(key: bytes, value_size: int) -> bytes:
    """One raw snappy block (librdkafka's format) holding one record: a literal with the
    record's head and the value's first byte, then copies of 64 bytes at offset 1."""
    head = record_head(0, key, value_size) + b"\x00"
    total = len(head) + value_size  # the last value byte is followed by the header count
    assert len(head) <= 60
    body = [uvarint(total), bytes([(len(head) - 1) << 2]), head]
    left = value_size - 1
    body.append(b"\xfe\x01\x00" * (left // 64))  # copy-2, length 64, offset 1
    if left % 64:
        body.append(bytes([((left % 64 - 1) << 2) | 2, 1, 0]))
    body.append(b"\x00\x00")  # a one-byte literal: zero headers
    return b"".join(body)


def batch(codec: str, records: list[tuple[bytes | None, int]]) -> bytes:
    """A v2 batch of (key, value size) records compressed with ``codec``."""
    if codec == "snappy-raw":
        ((key, size),) = records
        assert key is not None
        body = raw_snappy_bomb(key, size)
    else:
        pieces = (p for i, (k, n) in enumerate(records) for p in record_pieces(i, k, n))
        body = compress(codec, pieces)
    now = int(time.time() * 1000)
    count = len(records)
    tail = struct.pack(">hiqqqhii", CODECS[codec], count - 1, now, now, -1, -1, -1, count) + body
    crc = crc32c.crc32c(tail)
    return struct.pack(">qiibI", 0, len(tail) + 9, -1, 2, crc) + tail


def test_bomb_builders_are_valid() -> None:
    """The hand-made encodings agree with the codecs' own decoders (on a small bomb)."""
    expected = b"".join(record_pieces(0, b"k", 5000))
    raw = raw_snappy_bomb(b"k", 5000)
    assert bytes(cramjam.snappy.decompress_raw(raw)) == expected
    for codec in ("gzip", "lz4", "zstd"):
        data = compress(codec, record_pieces(0, b"k", 5000))
        assert bytes(getattr(cramjam, codec).decompress(data)) == expected
    xerial = compress("snappy", record_pieces(0, b"k", 5000))
    assert bytes(cramjam.snappy.decompress_raw(xerial[20:])) == expected


# -- talking to the broker -------------------------------------------------------------------


def peak_rss_mb(broker: BrokerProcess) -> float:
    status = Path(f"/proc/{broker.pid}/status").read_text()
    (line,) = [x for x in status.splitlines() if x.startswith("VmHWM:")]
    return int(line.split()[1]) / 1024


def assert_bounded(broker: BrokerProcess, what: str) -> None:
    assert broker.is_running(), f"broker died after {what}\n{broker.log_tail()}"
    peak = peak_rss_mb(broker)
    assert peak < RSS_BOUND_MB, f"{what}: the broker's peak RSS was {peak:.0f} MB"


def produce(raw: RawClient, topic: str, data: bytes, partition: int = 0) -> int:
    part = ProduceRequest.PartitionProduceData(index=partition, records=data)
    req = ProduceRequest(
        acks=-1,
        timeout_ms=30_000,
        topic_data=[ProduceRequest.TopicProduceData(name=topic, partition_data=[part])],
    )
    resp = raw.request(req, 9)
    return int(resp.responses[0].partition_responses[0].error_code)


def offset_for_time(raw: RawClient, topic: str, timestamp: int) -> tuple[int, int]:
    part = ListOffsetsRequest.ListOffsetsPartition(partition_index=0, timestamp=timestamp)
    req = ListOffsetsRequest(
        replica_id=-1, topics=[ListOffsetsRequest.ListOffsetsTopic(name=topic, partitions=[part])]
    )
    p = raw.request(req, 7).topics[0].partitions[0]
    return int(p.error_code), int(p.offset)


def assert_still_serving(broker: BrokerProcess, topic: str) -> None:
    create_topic(broker.bootstrap, topic, 1)
    (acked,) = produce_acked(broker.bootstrap, topic, [(0, b"k", b"alive")])
    (read,) = read_all(broker.bootstrap, topic, 1, start=acked.offset)
    assert read.value == b"alive"


@pytest.fixture
def strom_broker(broker_factory: BrokerFactory, require_strom: None) -> BrokerProcess:
    return broker_factory({"log.cleaner.backoff.ms": "200"})


@pytest.fixture
def raw(strom_broker: BrokerProcess) -> Iterator[RawClient]:
    with RawClient(strom_broker.bootstrap, timeout_s=60.0, client_id=ADMIN_CLIENT_ID) as client:
        yield client


# -- the tests -----------------------------------------------------------------------------------


@pytest.mark.parametrize("codec", list(CODECS))
def test_key_check_on_a_compacted_topic(
    strom_broker: BrokerProcess, raw: RawClient, topic_name: str, codec: str
) -> None:
    config = {"cleanup.policy": "compact", "max.message.bytes": str(TOPIC_MAX_BYTES)}
    create_topic(strom_broker.bootstrap, topic_name, 1, config)
    assert produce(raw, topic_name, batch(codec, [(b"key", BOMB_BYTES)])) == NO_ERROR
    assert_bounded(strom_broker, f"a {codec} bomb with a key")
    if codec != "snappy-raw":  # Kafka reads every record: a keyless one after the bomb
        keyless = batch(codec, [(b"key", BOMB_BYTES), (None, 10)])
        assert produce(raw, topic_name, keyless) == INVALID_RECORD
        assert_bounded(strom_broker, f"a {codec} bomb followed by a keyless record")
    assert_still_serving(strom_broker, topic_name + "-after")


@pytest.mark.parametrize("codec", list(CODECS))
def test_list_offsets_by_timestamp_on_a_normal_topic(
    strom_broker: BrokerProcess, raw: RawClient, topic_name: str, codec: str
) -> None:
    create_topic(strom_broker.bootstrap, topic_name, 1, {"max.message.bytes": str(TOPIC_MAX_BYTES)})
    since = int(time.time() * 1000) - 1000
    assert produce(raw, topic_name, batch(codec, [(b"key", BOMB_BYTES)])) == NO_ERROR
    assert offset_for_time(raw, topic_name, since) == (NO_ERROR, 0)
    assert_bounded(strom_broker, f"ListOffsets by timestamp over a {codec} bomb")
    assert_still_serving(strom_broker, topic_name + "-after")


def first_batch_count(log_dir: Path, topic: str) -> int:
    """The record count of the first batch of the partition's first segment."""
    segment = min((log_dir / f"{topic}-0").glob("*.log"))
    with open(segment, "rb") as f:
        header = f.read(61)
    return int(struct.unpack_from(">i", header, 57)[0]) if len(header) == 61 else -1


@pytest.mark.parametrize("codec", [c for c in CODECS if c != "snappy-raw"])
def test_log_cleaner(
    strom_broker: BrokerProcess, raw: RawClient, topic_name: str, codec: str
) -> None:
    # Offset 0 ("old") is superseded by offset 2; offset 1, the bomb, is kept and so copied.
    first = batch(codec, [(b"old", 10), (b"bomb", BOMB_BYTES)])
    config = {
        "cleanup.policy": "compact",
        "max.message.bytes": str(TOPIC_MAX_BYTES),
        "segment.bytes": str(len(first)),  # the first segment holds the bomb alone
    }
    create_topic(strom_broker.bootstrap, topic_name, 1, config)
    assert produce(raw, topic_name, first) == NO_ERROR
    assert produce(raw, topic_name, batch(codec, [(b"old", 20)])) == NO_ERROR
    deadline = time.monotonic() + DEADLINE_S
    while first_batch_count(strom_broker.log_dir, topic_name) != 1:
        assert time.monotonic() < deadline, (
            f"the cleaner did not compact\n{strom_broker.log_tail()}"
        )
        assert_bounded(strom_broker, f"cleaning a {codec} bomb")
        time.sleep(0.2)
    assert_bounded(strom_broker, f"cleaning a {codec} bomb")
    assert offset_for_time(raw, topic_name, int(time.time() * 1000) - 60_000) == (NO_ERROR, 1)
    assert_still_serving(strom_broker, topic_name + "-after")


def test_internal_topics_refuse_other_clients(strom_broker: BrokerProcess) -> None:
    """Kafka: "Cannot append to internal topic" (INVALID_TOPIC_EXCEPTION) unless the client
    id is the admin client's."""
    offsets = "__consumer_offsets"
    create_topic(strom_broker.bootstrap, "warm-up", 1)
    produce_acked(strom_broker.bootstrap, "warm-up", [(0, b"k", b"v")])
    commit_group_offset(strom_broker, "warm-up", "g")  # creates the offsets topic
    with RawClient(strom_broker.bootstrap, client_id="someone") as client:
        assert produce(client, offsets, batch("gzip", [(b"k", 10)])) == 17


def commit_group_offset(broker: BrokerProcess, topic: str, group: str) -> None:
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group})
    try:
        c.commit(offsets=[TopicPartition(topic, 0, 1)], asynchronous=False)
    finally:
        c.close()


def committed_offset(broker: BrokerProcess, topic: str, group: str) -> int:
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group})
    try:
        (tp,) = c.committed([TopicPartition(topic, 0)], timeout=30)
        return int(tp.offset)
    finally:
        c.close()


def commit_transaction(broker: BrokerProcess, topic: str) -> None:
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": "bomb-txn"})
    p.init_transactions(30)
    p.begin_transaction()
    p.produce(topic, b"in a transaction")
    p.commit_transaction(30)


@pytest.mark.parametrize("internal", ["__consumer_offsets", "__transaction_state"])
def test_coordinator_load_skips_bombs(
    strom_broker: BrokerProcess, raw: RawClient, topic_name: str, internal: str
) -> None:
    create_topic(strom_broker.bootstrap, topic_name, 1)
    produce_acked(strom_broker.bootstrap, topic_name, [(0, b"k", b"v"), (0, b"k", b"v")])
    commit_group_offset(strom_broker, topic_name, "bomb-group")
    commit_transaction(strom_broker, topic_name)
    for partition in range(3):  # strom's coordinators load every partition at start
        assert produce(raw, internal, batch("gzip", [(b"key", BOMB_BYTES)]), partition) == 0
    strom_broker.restart()
    assert committed_offset(strom_broker, topic_name, "bomb-group") == 1
    commit_transaction(strom_broker, topic_name)  # the transaction coordinator loaded
    assert_bounded(strom_broker, f"loading {internal} with bombs")
    assert_still_serving(strom_broker, topic_name + "-after")
