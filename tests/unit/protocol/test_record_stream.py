"""The broker's streaming record reader agrees with the client's whole-batch decoder."""

from __future__ import annotations

import hashlib
import struct
import tracemalloc
import zlib

import crc32c
import pytest

from strom.protocol.compression import GZIP, LZ4, NONE, SNAPPY, ZSTD, compress
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.record_decoder import decode_batch
from strom.protocol.record_stream import (
    read_control_record,
    stream_kept_records,
    stream_records,
)
from strom.protocol.records import (
    build_batch,
    build_control_batch,
    encode_records,
    read_varint32,
    set_log_append_time,
    write_varint,
)

CODECS = [NONE, GZIP, SNAPPY, LZ4, ZSTD]
TS = 1_700_000_000_000


def records() -> list[tuple[bytes | None, bytes | None, list[tuple[str, bytes | None]], int]]:
    return [
        (b"k0", b"v0", [], TS),
        (None, b"keyless", [("h", b"x"), ("n", None)], TS + 5),
        (b"tomb", None, [], TS - 3),
        (b"big" * 100, b"V" * 70_000, [], TS + 9),
        (b"", b"", [], TS),
    ]


@pytest.mark.parametrize("codec", CODECS)
def test_fields_match_decode_batch(codec: int) -> None:
    data = build_batch(records(), base_offset=100, compression=codec)
    _, expected = decode_batch(data)
    got = list(stream_records(data, max_key_bytes=1 << 20, max_value_bytes=1 << 20))
    assert [(r.offset, r.timestamp, r.key, r.value) for r in got] == [
        (r.offset, r.timestamp, r.key, r.value) for r in expected
    ]
    assert [r.batch_index for r in got] == list(range(len(expected)))
    assert [r.key_size for r in got] == [-1 if r.key is None else len(r.key) for r in expected]
    assert not any(r.partial for r in got)


def test_limits_skip_fields_and_report_sizes() -> None:
    data = build_batch(records(), compression=GZIP)
    got = list(stream_records(data, max_key_bytes=4, max_value_bytes=100))
    big = got[3]
    assert (big.key, big.key_size, big.value, big.value_size) == (None, 300, None, 70_000)
    assert big.partial
    assert (got[2].value, got[2].value_size, got[2].partial) == (None, -1, False)
    nothing = list(stream_records(data))  # by default neither keys nor values are kept
    assert [(r.key, r.value) for r in nothing][:4] == [(None, None)] * 4  # b"" fits 0 bytes
    assert [r.key_size for r in nothing] == [2, -1, 4, 300, 0]


def test_key_digests() -> None:
    data = build_batch(records(), compression=LZ4)
    got = list(stream_records(data, digest_keys=True))
    for r, (key, *_) in zip(got, records(), strict=True):
        want = None if key is None else hashlib.blake2b(key, digest_size=16).digest()
        assert r.key_digest == want and r.key is None
        assert not r.partial or r.value_size >= 0


def test_log_append_time_and_control_records() -> None:
    buf = bytearray(build_batch(records()[:2], compression=ZSTD))
    set_log_append_time(buf, 0, 42)
    assert {r.timestamp for r in stream_records(buf)} == {42}
    marker = read_control_record(build_control_batch(7, 2, True, 4, TS))
    assert marker is not None and marker.commit and marker.coordinator_epoch == 4


@pytest.mark.parametrize("codec", CODECS)
def test_kept_records_are_the_chosen_records_bytes(codec: int) -> None:
    data = build_batch(records(), compression=codec)
    kept = b"".join(stream_kept_records(data, {1, 3}))
    body = encode_records(records(), TS)  # offset deltas and timestamps as in the batch
    out, pos = bytearray(), 0
    for i in range(len(records())):
        length, start = read_varint32(body, pos)
        if i in (1, 3):
            out += body[pos : start + length]
        pos = start + length
    assert kept == bytes(out)


def _batch_with_body(body: bytes, count: int, codec: int = NONE) -> bytes:
    """A batch of ``count`` records whose (uncompressed) records section is ``body``."""
    return _batch_with_raw_payload(compress(codec, body), count, codec)


@pytest.mark.parametrize("codec", [NONE, GZIP])
def test_malformed_records_are_corrupt(codec: int) -> None:
    good = encode_records([(b"k", b"v", [], TS)], TS)
    cases = [
        good[:-1],  # runs past the end
        good + b"\x00",  # a byte after the last record
        b"\x0c" + good[1:],  # length larger than the content
        good[:-1] + b"\x01",  # header count -1
    ]
    for body in cases:
        with pytest.raises(KafkaError) as info:
            list(stream_records(_batch_with_body(body, 1, codec)))
        assert info.value.code == ErrorCode.CORRUPT_MESSAGE, body


def test_crc_and_magic_are_checked() -> None:
    data = bytearray(build_batch(records()))
    data[17] ^= 1  # the CRC
    with pytest.raises(KafkaError) as info:
        list(stream_records(data))
    assert info.value.code == ErrorCode.CORRUPT_MESSAGE
    assert len(list(stream_records(data, verify_crc=False))) == 5
    data[16] = 1
    with pytest.raises(KafkaError) as info:
        list(stream_records(data))
    assert info.value.code == ErrorCode.UNSUPPORTED_FOR_MESSAGE_FORMAT


def test_a_bomb_is_walked_in_bounded_memory() -> None:
    """A 200 MB value in a gzip batch of ~200 KB: the key is read, the value skipped."""
    size = 200 << 20
    head = bytearray(b"\x00\x00\x00\x0cbombed")  # attributes, deltas, key
    write_varint(head, size)
    record = bytearray()
    write_varint(record, len(head) + size + 1)
    z = zlib.compressobj(6, zlib.DEFLATED, 31)
    zeros = bytes(1 << 20)
    parts = [z.compress(bytes(record + head))]
    parts += [z.compress(zeros) for _ in range(200)]
    parts += [z.compress(b"\x00"), z.flush()]
    batch = _batch_with_raw_payload(b"".join(parts))
    tracemalloc.start()
    try:
        (r,) = stream_records(batch, max_key_bytes=100, max_value_bytes=1 << 20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (r.key, r.value, r.value_size, r.partial) == (b"bombed", None, size, True)
    assert peak < 8 << 20
    assert r.timestamp == TS


def _batch_with_raw_payload(payload: bytes, count: int = 1, codec: int = GZIP) -> bytes:
    buf = bytearray(build_batch([(b"k", b"v", [], TS)] * count, compression=codec)[:61])
    buf += payload
    struct.pack_into(">i", buf, 8, len(buf) - 12)
    struct.pack_into(">I", buf, 17, crc32c.crc32c(bytes(buf[21:])))
    return bytes(buf)
