from __future__ import annotations

import struct
from typing import NamedTuple

import cramjam
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strom.protocol import compression
from strom.protocol.append_origin import AppendOrigin
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.record_decoder import decode_batch, decode_batch_as
from strom.protocol.records import (
    ATTRIBUTES_OFFSET,
    BATCH_HEADER_SIZE,
    BATCH_LENGTH_OFFSET,
    CRC_OFFSET,
    LOG_APPEND_TIME,
    MAGIC_OFFSET,
    RECORDS_COUNT_OFFSET,
    Record,
    RecordInput,
    build_batch,
    build_control_batch,
    iter_batches,
    parse_control_record,
    parse_header,
    read_varint,
    set_log_append_time,
    stamp_batch,
    validate_batches,
    write_varint,
)

CODECS = [0, 1, 2, 3, 4]
RECORDS: list[RecordInput] = [
    (b"key", b"value", [("h1", b"x"), ("h2", None)], 1_000),
    (None, b"v2", [], 1_005),
    (b"k3", None, [("", b"")], 999),
    (None, None, [], 1_010),
]


@pytest.mark.parametrize("codec", CODECS)
def test_round_trip_every_codec(codec: int) -> None:
    data = build_batch(RECORDS, base_offset=42, compression=codec)
    header, records = decode_batch(data)
    assert header.compression == codec
    assert header.base_offset == 42
    assert header.records_count == 4
    assert header.last_offset == 45
    assert header.max_timestamp == 1_010
    assert header.size_in_bytes == len(data)
    assert records == [
        Record(42, 1_000, b"key", b"value", (("h1", b"x"), ("h2", None))),
        Record(43, 1_005, None, b"v2", ()),
        Record(44, 999, b"k3", None, (("", b""),)),
        Record(45, 1_010, None, None, ()),
    ]
    assert validate_batches(data, 10_000) == [header]


def test_header_fields_and_flags() -> None:
    data = build_batch(
        [(b"k", b"v", [], 5)],
        producer_id=7,
        producer_epoch=3,
        base_sequence=11,
        is_transactional=True,
        partition_leader_epoch=9,
    )
    header = parse_header(data)
    assert (header.producer_id, header.producer_epoch, header.base_sequence) == (7, 3, 11)
    assert header.is_transactional and not header.is_control
    assert header.partition_leader_epoch == 9
    assert header.magic == 2 and header.timestamp_type == 0
    assert header.next_offset == 1
    assert header.last_sequence == 11


def test_crc_catches_every_flipped_byte_in_covered_region() -> None:
    data = build_batch(RECORDS)
    for i in range(ATTRIBUTES_OFFSET, len(data)):
        corrupt = bytearray(data)
        corrupt[i] ^= 0x01
        with pytest.raises(KafkaError) as info:
            validate_batches(corrupt, 10_000)
        assert info.value.code == ErrorCode.CORRUPT_MESSAGE


def test_validate_error_codes() -> None:
    good = build_batch(RECORDS)

    def code_of(data: bytes | bytearray, max_size: int = 10_000) -> ErrorCode:
        with pytest.raises(KafkaError) as info:
            validate_batches(data, max_size)
        return info.value.code

    assert code_of(good[:-1]) == ErrorCode.CORRUPT_MESSAGE  # batch longer than the data
    assert code_of(good + good[:30]) == ErrorCode.CORRUPT_MESSAGE  # trailing partial header
    assert code_of(good, max_size=len(good) - 1) == ErrorCode.MESSAGE_TOO_LARGE
    old_magic = bytearray(good)
    old_magic[MAGIC_OFFSET] = 1
    assert code_of(old_magic) == ErrorCode.UNSUPPORTED_FOR_MESSAGE_FORMAT
    bad_magic = bytearray(good)
    bad_magic[MAGIC_OFFSET] = 7
    assert code_of(bad_magic) == ErrorCode.CORRUPT_MESSAGE
    short = bytearray(good)
    struct.pack_into(">i", short, BATCH_LENGTH_OFFSET, 10)
    assert code_of(short) == ErrorCode.CORRUPT_MESSAGE
    # record count inconsistent with last_offset_delta (CRC recomputed)
    mismatch = bytearray(good)
    struct.pack_into(">i", mismatch, RECORDS_COUNT_OFFSET, 3)
    _fix_crc(mismatch)
    assert code_of(mismatch) == ErrorCode.INVALID_RECORD
    assert validate_batches(mismatch, 10_000, origin=AppendOrigin.REPLICATION)
    control = build_control_batch(1, 0, True, 5, 1_000)
    assert code_of(control) == ErrorCode.INVALID_RECORD
    assert validate_batches(control, 10_000, origin=AppendOrigin.COORDINATOR)
    assert validate_batches(b"", 10) == []


def _fix_crc(buf: bytearray) -> None:
    import crc32c

    struct.pack_into(">I", buf, CRC_OFFSET, crc32c.crc32c(bytes(buf[ATTRIBUTES_OFFSET:])))


def test_multiple_batches_validated_and_iterated() -> None:
    one = build_batch(RECORDS[:2])
    two = build_batch(RECORDS[2:], base_offset=2, compression=compression.ZSTD)
    headers = validate_batches(one + two, 10_000)
    assert [h.base_offset for h in headers] == [0, 2]
    batches = list(iter_batches(one + two + two[:40]))  # fetch may end mid-batch
    assert [bytes(view) for _, view in batches] == [one, two]
    assert list(iter_batches(one[:5])) == []


def test_stamp_keeps_crc_valid() -> None:
    buf = bytearray(build_batch(RECORDS))
    stamp_batch(buf, 0, 1234, 17)
    [header] = validate_batches(buf, 10_000)
    assert header.base_offset == 1234 and header.partition_leader_epoch == 17
    assert decode_batch(buf)[1][0].offset == 1234


def test_log_append_time_rewrites_max_timestamp_and_crc() -> None:
    buf = bytearray(build_batch(RECORDS, compression=compression.LZ4))
    set_log_append_time(buf, 0, 99_999)
    [header] = validate_batches(buf, 10_000)
    assert header.timestamp_type == LOG_APPEND_TIME
    assert header.max_timestamp == 99_999
    assert header.base_timestamp == 1_000
    _, records = decode_batch(buf)
    assert {record.timestamp for record in records} == {99_999}


def test_control_batch() -> None:
    data = build_control_batch(7, 2, commit=False, coordinator_epoch=3, timestamp=50)
    header, [record] = decode_batch(data)
    assert header.is_control and header.is_transactional and header.producer_id == 7
    control = parse_control_record(record)
    assert control.control_type == 0 and not control.commit
    assert control.coordinator_epoch == 3
    assert parse_control_record(decode_batch(build_control_batch(7, 2, True, 4, 1))[1][0]).commit


def test_varint_bounds() -> None:
    for value in [0, 1, -1, 63, -64, 64, 2**31 - 1, -(2**31), 2**63 - 1, -(2**63)]:
        out = bytearray()
        write_varint(out, value)
        assert read_varint(out, 0) == (value, len(out))
    for bad in [b"", b"\x80", b"\xff" * 11]:
        with pytest.raises(KafkaError) as info:
            read_varint(bad, 0)
        assert info.value.code == ErrorCode.CORRUPT_MESSAGE


def test_decode_of_truncated_or_garbled_records_raises_only_kafka_error() -> None:
    data = build_batch(RECORDS)
    for cut in range(BATCH_HEADER_SIZE, len(data)):
        garbled = bytearray(data)
        garbled[cut] ^= 0xFF
        try:
            decode_batch(garbled, verify_crc=False)
        except KafkaError as exc:
            assert exc.code == ErrorCode.CORRUPT_MESSAGE


def test_compression_codecs() -> None:
    payload = b"hello kafka " * 10_000
    for codec in CODECS:
        assert compression.decompress(codec, compression.compress(codec, payload)) == payload
    raw_snappy = bytes(cramjam.snappy.compress_raw(payload))
    assert compression.decompress(compression.SNAPPY, raw_snappy) == payload
    assert compression.compress(compression.SNAPPY, payload).startswith(compression.XERIAL_MAGIC)
    assert bytes(compression.compress(compression.LZ4, payload))[:4] == b"\x04\x22\x4d\x18"
    with pytest.raises(KafkaError) as info:
        compression.compress(5, payload)
    assert info.value.code == ErrorCode.UNSUPPORTED_COMPRESSION_TYPE
    for codec in [1, 2, 3, 4]:
        with pytest.raises(KafkaError) as info:
            compression.decompress(codec, b"\x00garbage\xff" * 3)
        assert info.value.code == ErrorCode.CORRUPT_MESSAGE
    with pytest.raises(KafkaError) as info:
        compression.decompress(compression.SNAPPY, compression.XERIAL_MAGIC + b"\x00" * 8 + b"\x7f")
    assert info.value.code == ErrorCode.CORRUPT_MESSAGE
    assert compression.codec_by_name("zstd") == compression.ZSTD


headers_st = st.lists(
    st.tuples(st.text(max_size=5), st.one_of(st.none(), st.binary(max_size=8))), max_size=3
)
record_st = st.tuples(
    st.one_of(st.none(), st.binary(max_size=20)),
    st.one_of(st.none(), st.binary(max_size=50)),
    headers_st,
    st.integers(min_value=0, max_value=2**40),
)


@settings(max_examples=75, deadline=None)
@given(
    records=st.lists(record_st, min_size=1, max_size=8),
    codec=st.sampled_from(CODECS),
    base_offset=st.integers(min_value=0, max_value=2**40),
)
def test_build_decode_round_trip(
    records: list[tuple[bytes | None, bytes | None, list[tuple[str, bytes | None]], int]],
    codec: int,
    base_offset: int,
) -> None:
    data = build_batch(records, base_offset=base_offset, compression=codec)
    [header] = validate_batches(data, len(data))
    decoded_header, decoded = decode_batch(data)
    assert decoded_header == header
    assert header.max_timestamp == max(r[3] for r in records)
    assert decoded == [
        Record(base_offset + i, ts, key, value, tuple(headers))
        for i, (key, value, headers, ts) in enumerate(records)
    ]


def _sized(n: int) -> bytes:
    return (bytes(range(256)) * (n // 256 + 1))[:n]


wide_record_st = st.tuples(
    st.one_of(st.none(), st.integers(0, 300).map(_sized)),
    st.one_of(st.none(), st.integers(0, 20_000).map(_sized)),
    headers_st,
    st.integers(min_value=0, max_value=2**40),
)


@settings(max_examples=40, deadline=None)
@given(records=st.lists(wide_record_st, min_size=1, max_size=200), codec=st.sampled_from(CODECS))
def test_round_trip_with_multi_byte_varints(
    records: list[tuple[bytes | None, bytes | None, list[tuple[str, bytes | None]], int]],
    codec: int,
) -> None:
    """Lengths and deltas of one, two and three varint bytes (the decoder's fast paths)."""
    data = build_batch(records, base_offset=7, compression=codec)
    assert decode_batch(data)[1] == [
        Record(7 + i, ts, key, value, tuple(headers))
        for i, (key, value, headers, ts) in enumerate(records)
    ]


class _Row(NamedTuple):
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]
    topic: str
    partition: int


def test_decode_into_a_wider_row_and_offset_deltas_past_two_varint_bytes() -> None:
    records: list[RecordInput] = [(None, b"%d" % i, [], 5_000 + i) for i in range(9_000)]
    data = build_batch(records, base_offset=100, compression=3)
    header, rows = decode_batch_as(data, _Row, ("t", 4))
    assert header.records_count == 9_000 and len(rows) == 9_000
    assert rows[8_500] == _Row(8_600, 13_500, None, b"8500", (), "t", 4)
    assert all(r.offset == 100 + i and r.timestamp == 5_000 + i for i, r in enumerate(rows))


def test_log_append_time_batches_decode_with_the_batch_timestamp() -> None:
    buf = bytearray(build_batch(RECORDS))
    set_log_append_time(buf, 0, 77_777)
    assert {r.timestamp for r in decode_batch(buf)[1]} == {77_777}


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_mutated_record_bodies_raise_only_corrupt_message(data: st.DataObject) -> None:
    records = data.draw(st.lists(wide_record_st, min_size=1, max_size=5))
    batch = bytearray(build_batch(records))
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(BATCH_HEADER_SIZE, len(batch) - 1))
        batch[pos] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        del batch[data.draw(st.integers(BATCH_HEADER_SIZE, len(batch) - 1)) :]
        struct.pack_into(">i", batch, BATCH_LENGTH_OFFSET, len(batch) - 12)
    try:
        decode_batch(batch, verify_crc=False)
    except KafkaError as exc:
        assert exc.code == ErrorCode.CORRUPT_MESSAGE


def test_varints_keep_java_widths() -> None:
    """readVarlong keeps 64 bits of 10 bytes; an int32 varint has at most 5 bytes."""
    from strom.protocol.records import read_varint32

    assert read_varint(b"\xfe\xff\xff\xff\xff\xff\xff\xff\xff\x7f", 0) == (2**63 - 1, 10)
    assert read_varint(b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f", 0) == (-(2**63), 10)
    assert read_varint32(b"\xfe\xff\xff\xff\x0f", 0) == (2**31 - 1, 5)
    with pytest.raises(KafkaError) as info:
        read_varint32(b"\x82\x80\x80\x80\x80\x00", 0)
    assert info.value.code == ErrorCode.CORRUPT_MESSAGE
