"""Decoding the records of v2 batches: the consumer's hot loop.

:func:`decode_batch` checks the CRC, decompresses and decodes every record in
one pass. Rows are built straight into the caller's tuple type: by default
:class:`~strom.protocol.records.Record` ``(offset, timestamp, key, value,
headers)``; a client passes its own NamedTuple whose first five fields are those
and ``extra`` for the rest (the same for the whole batch, e.g. topic and
partition), so a consumer makes one object per record and nothing else.
Anything malformed raises CORRUPT_MESSAGE.
"""

from __future__ import annotations

from typing import Any, Final, TypeVar

from strom.common.crc import crc32c
from strom.protocol.compression import decompress
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.records import (
    ATTRIBUTES_OFFSET,
    BATCH_HEADER_SIZE,
    LOG_APPEND_TIME,
    MAGIC,
    MIN_BATCH_LENGTH,
    BatchHeader,
    Buffer,
    Record,
    corrupt,
    parse_header,
    read_varint,
    read_varint32,
)

Row = TypeVar("Row", bound=tuple[Any, ...])
Headers = tuple[tuple[str, bytes | None], ...]

_new = tuple.__new__
_ZIGZAG: Final = tuple((b >> 1) ^ -(b & 1) for b in range(0x80))  # one-byte varints
# two-byte varints (b0, b1) at index b0 + (b1 << 7), i.e. raw value + 128
_ZIGZAG2: Final = (0,) * 0x80 + tuple((v >> 1) ^ -(v & 1) for v in range(0x4000))


def decode_records(  # noqa: C901
    body: bytes, count: int, header: BatchHeader, row: type[Row], extra: tuple[Any, ...]
) -> list[Row]:
    """The ``count`` records of an uncompressed batch body as ``row`` tuples.

    Varints are decoded inline with fast paths for one- and two-byte values
    (almost every length and delta; one-byte values through a table), in one
    function on purpose: a call costs more than the work. Bounds need no check
    per field: reading past the body raises IndexError, and every record must
    end exactly where its length says.
    """
    base_offset = header.base_offset
    base_ts = header.base_timestamp
    zz = _ZIGZAG
    z2 = _ZIGZAG2
    rows: list[Row] = []
    append = rows.append
    pos = 0
    try:
        for _ in range(count):
            b = body[pos]
            if b < 0x80:
                end = pos + 1 + zz[b]
                pos += 1
            elif (c := body[pos + 1]) < 0x80:
                end = pos + 2 + z2[b + (c << 7)]
                pos += 2
            else:
                length, pos = read_varint32(body, pos)
                end = pos + length
            b = body[pos + 1]  # skips the record attributes (unused)
            if b < 0x80:
                ts_delta = zz[b]
                pos += 2
            elif (c := body[pos + 2]) < 0x80:
                ts_delta = z2[b + (c << 7)]
                pos += 3
            else:
                ts_delta, pos = read_varint(body, pos + 1)
            b = body[pos]
            if b < 0x80:
                off_delta = zz[b]
                pos += 1
            elif (c := body[pos + 1]) < 0x80:
                off_delta = z2[b + (c << 7)]
                pos += 2
            else:
                off_delta, pos = read_varint32(body, pos)
            b = body[pos]
            if b == 1:  # null key (zigzag -1)
                key: bytes | None = None
                pos += 1
            else:
                if b < 0x80:
                    n = zz[b]
                    pos += 1
                else:
                    n, pos = read_varint32(body, pos)
                if n >= 0:
                    key = body[pos : pos + n]
                    pos += n
                else:
                    key = None
            b = body[pos]
            if b < 0x80:
                n = zz[b]
                pos += 1
            elif (c := body[pos + 1]) < 0x80:
                n = z2[b + (c << 7)]
                pos += 2
            else:
                n, pos = read_varint32(body, pos)
            if n >= 0:
                value: bytes | None = body[pos : pos + n]
                pos += n
            else:
                value = None
            if body[pos] == 0:  # no headers (zigzag 0)
                pos += 1
                headers: Headers = ()
            else:
                headers, pos = _read_headers(body, pos, end)
            if pos != end:
                raise corrupt("record length does not match its content")
            fields = (base_offset + off_delta, base_ts + ts_delta, key, value, headers)
            append(_new(row, fields + extra))  # concatenation: faster than unpacking
    except IndexError:
        raise corrupt("record runs past the end of the batch") from None
    if pos != len(body):
        raise corrupt("bytes left over after the last record")
    if header.timestamp_type == LOG_APPEND_TIME:  # every record has the batch's time
        ts = header.max_timestamp
        rows = [_new(row, (r[0], ts, *r[2:])) for r in rows]
    return rows


def _read_bytes(buf: bytes, pos: int, end: int) -> tuple[bytes | None, int]:
    """A varint-length-prefixed field (-1: null) ending at or before ``end``."""
    length, pos = read_varint32(buf, pos)
    if length < 0:
        return None, pos
    if pos + length > end:
        raise corrupt("record field runs past the end of the record")
    return buf[pos : pos + length], pos + length


def _read_headers(body: bytes, pos: int, end: int) -> tuple[Headers, int]:
    count, pos = read_varint32(body, pos)
    if count < 0 or count > end - pos:
        raise corrupt(f"invalid header count {count}")
    out: list[tuple[str, bytes | None]] = []
    for _ in range(count):
        raw_key, pos = _read_bytes(body, pos, end)
        if raw_key is None:
            raise corrupt("null header key")
        try:
            name = raw_key.decode()
        except UnicodeDecodeError as exc:
            raise corrupt("header key is not utf-8") from exc
        value, pos = _read_bytes(body, pos, end)
        out.append((name, value))
    return tuple(out), pos


def decode_batch_as(
    data: Buffer, row: type[Row], extra: tuple[Any, ...], *, verify_crc: bool = True
) -> tuple[BatchHeader, list[Row]]:
    """Decode one whole batch (decompressing if needed) into ``row`` tuples."""
    view = memoryview(data)
    if len(view) < BATCH_HEADER_SIZE:
        raise corrupt("batch is shorter than its header")
    header = parse_header(view)
    if header.magic != MAGIC:
        raise KafkaError(
            ErrorCode.UNSUPPORTED_FOR_MESSAGE_FORMAT, f"magic {header.magic} is not supported"
        )
    size = header.size_in_bytes
    if header.batch_length < MIN_BATCH_LENGTH or size > len(view):
        raise corrupt(f"batch length {header.batch_length} does not fit ({len(view)} bytes)")
    if verify_crc and crc32c.crc32c(view[ATTRIBUTES_OFFSET:size]) != header.crc:
        raise corrupt("CRC mismatch")
    body: Buffer = view[BATCH_HEADER_SIZE:size]
    if header.compression:
        body = decompress(header.compression, body)
    count = header.records_count
    if count < 0 or count > len(body):
        raise corrupt(f"invalid record count {count}")
    return header, decode_records(bytes(body), count, header, row, extra)


def decode_batch(data: Buffer, *, verify_crc: bool = True) -> tuple[BatchHeader, list[Record]]:
    """Decode one whole batch (decompressing if needed) into its records."""
    return decode_batch_as(data, Record, (), verify_crc=verify_crc)
