"""Kafka RecordBatch v2 (magic 2): header codec, validation, stamping, records.

Batch layout (big-endian; offsets from the start of the batch)::

     0 base_offset            int64
     8 batch_length           int32   bytes after this field (size - 12)
    12 partition_leader_epoch int32
    16 magic                  int8    (2)
    17 crc                    uint32  CRC32C of bytes [21, end of batch)
    21 attributes             int16   bits 0-2 codec, 3 timestamp type,
                                      4 transactional, 5 control
    23 last_offset_delta      int32
    27 base_timestamp         int64
    35 max_timestamp          int64
    43 producer_id            int64
    51 producer_epoch         int16
    53 base_sequence          int32
    57 records_count          int32
    61 records (possibly compressed)

Each record: length varint, attributes int8, timestamp_delta varlong,
offset_delta varint, key_length varint (-1 = null), key, value_length varint,
value, header_count varint, headers (key_length varint, utf-8 key,
value_length varint, value). Varints are zigzag, as in protobuf.

The produce path only touches headers: :func:`validate_batches` checks every
batch, :func:`stamp_batch` writes the base offset and leader epoch (outside the
CRC) in place. Records are decoded whole (:mod:`strom.protocol.record_decoder`) only by
clients, tests and tools; the broker reads them one at a time with bounded memory
(:mod:`strom.protocol.record_stream`).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from typing import ClassVar, Final, NamedTuple, TypeAlias

from strom.common.crc import crc32c
from strom.common.values import Value
from strom.protocol.append_origin import AppendOrigin
from strom.protocol.compression import compress
from strom.protocol.errors import ErrorCode, KafkaError

Buffer: TypeAlias = bytes | bytearray | memoryview

BASE_OFFSET_OFFSET: Final = 0
BATCH_LENGTH_OFFSET: Final = 8
PARTITION_LEADER_EPOCH_OFFSET: Final = 12
MAGIC_OFFSET: Final = 16
CRC_OFFSET: Final = 17
ATTRIBUTES_OFFSET: Final = 21
LAST_OFFSET_DELTA_OFFSET: Final = 23
BASE_TIMESTAMP_OFFSET: Final = 27
MAX_TIMESTAMP_OFFSET: Final = 35
PRODUCER_ID_OFFSET: Final = 43
PRODUCER_EPOCH_OFFSET: Final = 51
BASE_SEQUENCE_OFFSET: Final = 53
RECORDS_COUNT_OFFSET: Final = 57
BATCH_HEADER_SIZE: Final = 61
LOG_OVERHEAD: Final = 12  # base_offset + batch_length
MIN_BATCH_LENGTH: Final = BATCH_HEADER_SIZE - LOG_OVERHEAD  # 49
MAGIC: Final = 2

COMPRESSION_MASK: Final = 0x07
TIMESTAMP_TYPE_MASK: Final = 0x08
TRANSACTIONAL_MASK: Final = 0x10
CONTROL_MASK: Final = 0x20

CREATE_TIME: Final = 0
LOG_APPEND_TIME: Final = 1
NO_TIMESTAMP: Final = -1
NO_PRODUCER_ID: Final = -1
NO_PARTITION_LEADER_EPOCH: Final = -1

CONTROL_ABORT: Final = 0
CONTROL_COMMIT: Final = 1

_HEADER: Final = struct.Struct(">qiibIhiqqqhii")
_INT64: Final = struct.Struct(">q")
_INT32: Final = struct.Struct(">i")
_UINT32: Final = struct.Struct(">I")
_INT16: Final = struct.Struct(">h")
_LENGTH: Final = struct.Struct(">qi")
_CONTROL_KEY: Final = struct.Struct(">hh")
_CONTROL_VALUE: Final = struct.Struct(">hi")

assert _HEADER.size == BATCH_HEADER_SIZE


class BatchHeader(Value):
    """A v2 record batch's 61-byte header, as parsed by :func:`parse_header`."""

    __slots__ = (
        "attributes",
        "base_offset",
        "base_sequence",
        "base_timestamp",
        "batch_length",
        "crc",
        "last_offset_delta",
        "magic",
        "max_timestamp",
        "partition_leader_epoch",
        "producer_epoch",
        "producer_id",
        "records_count",
    )
    FIELDS: ClassVar[tuple[str, ...]] = (
        "base_offset",
        "batch_length",
        "partition_leader_epoch",
        "magic",
        "crc",
        "attributes",
        "last_offset_delta",
        "base_timestamp",
        "max_timestamp",
        "producer_id",
        "producer_epoch",
        "base_sequence",
        "records_count",
    )
    base_offset: Final[int]
    batch_length: Final[int]
    partition_leader_epoch: Final[int]
    magic: Final[int]
    crc: Final[int]
    attributes: Final[int]
    last_offset_delta: Final[int]
    base_timestamp: Final[int]
    max_timestamp: Final[int]
    producer_id: Final[int]
    producer_epoch: Final[int]
    base_sequence: Final[int]
    records_count: Final[int]

    def __init__(
        self,
        base_offset: int,
        batch_length: int,
        partition_leader_epoch: int,
        magic: int,
        crc: int,
        attributes: int,
        last_offset_delta: int,
        base_timestamp: int,
        max_timestamp: int,
        producer_id: int,
        producer_epoch: int,
        base_sequence: int,
        records_count: int,
    ) -> None:
        self.base_offset = base_offset
        self.batch_length = batch_length
        self.partition_leader_epoch = partition_leader_epoch
        self.magic = magic
        self.crc = crc
        self.attributes = attributes
        self.last_offset_delta = last_offset_delta
        self.base_timestamp = base_timestamp
        self.max_timestamp = max_timestamp
        self.producer_id = producer_id
        self.producer_epoch = producer_epoch
        self.base_sequence = base_sequence
        self.records_count = records_count

    @property
    def compression(self) -> int:
        return self.attributes & COMPRESSION_MASK

    @property
    def timestamp_type(self) -> int:
        """0 CreateTime, 1 LogAppendTime."""
        return (self.attributes & TIMESTAMP_TYPE_MASK) >> 3

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & TRANSACTIONAL_MASK)

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & CONTROL_MASK)

    @property
    def has_producer_id(self) -> bool:
        return self.producer_id >= 0

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta

    @property
    def next_offset(self) -> int:
        return self.last_offset + 1

    @property
    def size_in_bytes(self) -> int:
        return self.batch_length + LOG_OVERHEAD

    @property
    def last_sequence(self) -> int:
        """Kafka's lastSequence: base_sequence + last_offset_delta, wrapping at int32."""
        if self.base_sequence < 0:
            return -1
        return (self.base_sequence + self.last_offset_delta) & 0x7FFFFFFF


class Record(NamedTuple):
    """One record (a NamedTuple: immutable and cheap to build on the consumer's hot path)."""

    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...] = ()


class ControlRecord(Value):
    """The key and value of a control batch's record (a transaction marker)."""

    __slots__ = ("control_type", "coordinator_epoch")
    FIELDS: ClassVar[tuple[str, ...]] = ("control_type", "coordinator_epoch")
    control_type: Final[int]  # CONTROL_ABORT or CONTROL_COMMIT
    coordinator_epoch: Final[int]

    def __init__(self, control_type: int, coordinator_epoch: int) -> None:
        self.control_type = control_type
        self.coordinator_epoch = coordinator_epoch

    @property
    def commit(self) -> bool:
        return self.control_type == CONTROL_COMMIT


def parse_header(buf: Buffer, pos: int = 0) -> BatchHeader:
    """Parse the 61-byte header at ``pos`` (the caller checks there are 61 bytes)."""
    return BatchHeader(*_HEADER.unpack_from(buf, pos))


def corrupt(message: str) -> KafkaError:
    """A CORRUPT_MESSAGE error with ``message``."""
    return KafkaError(ErrorCode.CORRUPT_MESSAGE, message)


def _check_header(header: BatchHeader, origin: AppendOrigin) -> None:
    count = header.records_count
    if count < 0:
        raise corrupt(f"negative record count {count}")
    if origin == AppendOrigin.REPLICATION:
        return
    if count == 0 or header.last_offset_delta + 1 != count:
        raise KafkaError(
            ErrorCode.INVALID_RECORD,
            f"inconsistent batch offset range (last_offset_delta {header.last_offset_delta}) "
            f"and count of records ({count})",
        )
    if origin != AppendOrigin.CLIENT:
        return
    if header.is_control:
        raise KafkaError(ErrorCode.INVALID_RECORD, "clients may not write control records")
    if header.is_transactional and header.producer_id < 0:
        raise KafkaError(ErrorCode.INVALID_RECORD, "transactional batch without a producer id")
    if header.producer_id >= 0 and header.base_sequence < 0:
        raise KafkaError(ErrorCode.INVALID_RECORD, "idempotent batch without a base sequence")


def validate_batches(
    data: Buffer, max_batch_size: int, *, origin: AppendOrigin = AppendOrigin.CLIENT
) -> list[BatchHeader]:
    """Check every batch of a produce (or replica fetch) payload; return the headers.

    Checks sizes, magic, CRC32C and the record count. Leader appends
    (``CLIENT``, ``COORDINATOR``) also need count == last_offset_delta + 1;
    ``CLIENT`` appends may not hold control batches and need consistent
    producer fields. Never decodes records.
    """
    view = memoryview(data)
    end = len(view)
    pos = 0
    headers: list[BatchHeader] = []
    while pos < end:
        remaining = end - pos
        if remaining < BATCH_HEADER_SIZE:
            raise corrupt(f"{remaining} trailing bytes are not a complete batch header")
        magic = view[pos + MAGIC_OFFSET]
        if magic != MAGIC:
            if magic in (0, 1):
                raise KafkaError(
                    ErrorCode.UNSUPPORTED_FOR_MESSAGE_FORMAT, f"magic {magic} is not supported"
                )
            raise corrupt(f"invalid magic {magic}")
        header = parse_header(view, pos)
        size = header.batch_length + LOG_OVERHEAD
        if header.batch_length < MIN_BATCH_LENGTH or size > remaining:
            raise corrupt(f"batch length {header.batch_length} does not fit ({remaining} bytes)")
        if size > max_batch_size:
            raise KafkaError(
                ErrorCode.MESSAGE_TOO_LARGE,
                f"batch of {size} bytes exceeds the maximum of {max_batch_size}",
            )
        if crc32c.crc32c(view[pos + ATTRIBUTES_OFFSET : pos + size]) != header.crc:
            raise corrupt(f"CRC mismatch in batch at offset {header.base_offset}")
        _check_header(header, origin)
        headers.append(header)
        pos += size
    return headers


def stamp_batch(buf: bytearray, pos: int, base_offset: int, partition_leader_epoch: int) -> None:
    """Write base offset and leader epoch in place (both outside the CRC)."""
    _INT64.pack_into(buf, pos + BASE_OFFSET_OFFSET, base_offset)
    _INT32.pack_into(buf, pos + PARTITION_LEADER_EPOCH_OFFSET, partition_leader_epoch)


def set_log_append_time(buf: bytearray, pos: int, timestamp: int) -> None:
    """Kafka's setMaxTimestamp(LOG_APPEND_TIME, ts): attributes, max_timestamp, new CRC."""
    (attributes,) = _INT16.unpack_from(buf, pos + ATTRIBUTES_OFFSET)
    _INT16.pack_into(buf, pos + ATTRIBUTES_OFFSET, attributes | TIMESTAMP_TYPE_MASK)
    _INT64.pack_into(buf, pos + MAX_TIMESTAMP_OFFSET, timestamp)
    (batch_length,) = _INT32.unpack_from(buf, pos + BATCH_LENGTH_OFFSET)
    end = pos + batch_length + LOG_OVERHEAD
    crc = crc32c.crc32c(memoryview(buf)[pos + ATTRIBUTES_OFFSET : end])
    _UINT32.pack_into(buf, pos + CRC_OFFSET, crc)


def iter_batches(data: Buffer) -> Iterator[tuple[BatchHeader, memoryview]]:
    """Yield (header, whole batch) from a fetch response's records.

    A truncated final batch (fetch responses may end mid-batch) ends the
    iteration silently. A length too small to be a batch is corrupt.
    """
    view = memoryview(data)
    end = len(view)
    pos = 0
    while end - pos >= LOG_OVERHEAD:
        (_, batch_length) = _LENGTH.unpack_from(view, pos)
        if batch_length < MIN_BATCH_LENGTH:
            raise corrupt(f"batch length {batch_length} is too small")
        size = batch_length + LOG_OVERHEAD
        if size > end - pos:
            return
        yield parse_header(view, pos), view[pos : pos + size]
        pos += size


# -- varints -----------------------------------------------------------------


def write_varint(out: bytearray, value: int) -> None:
    """Append a zigzag varint (or varlong) to ``out``."""
    z = (value << 1) ^ (value >> 63)
    while z & ~0x7F:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)


def read_varint(buf: Buffer, pos: int, max_bytes: int = 10) -> tuple[int, int]:
    """Read a zigzag varlong at ``pos`` (at most ``max_bytes`` bytes, the value kept to
    64 bits as Java's readVarlong does); return (value, new position). Bounds checked."""
    result = 0
    shift = 0
    end = len(buf)
    limit = pos + max_bytes
    while True:
        if pos >= end:
            raise corrupt("truncated varint")
        if pos >= limit:
            raise corrupt("varint is too long")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            bits = 64 if max_bytes > 5 else 32
            result &= (1 << bits) - 1
            return (result >> 1) ^ -(result & 1), pos
        shift += 7


def read_varint32(buf: Buffer, pos: int) -> tuple[int, int]:
    """Read a zigzag varint of an int32 field: at most 5 bytes, kept to 32 bits (Java's
    readVarint); lengths, offset deltas and counts of a record."""
    return read_varint(buf, pos, 5)


# -- building ----------------------------------------------------------------

RecordInput: TypeAlias = tuple[bytes | None, bytes | None, Sequence[tuple[str, bytes | None]], int]


def varint_bytes(value: int) -> bytes:
    """A zigzag varint (or varlong) as bytes."""
    if -_SMALL <= value < _SMALL:
        return (_VARINTS or _varint_table())[value + _SMALL]
    out = bytearray()
    write_varint(out, value)
    return bytes(out)


def _varints(limit: int) -> tuple[bytes, ...]:
    table = []
    for value in range(-limit, limit):
        out = bytearray()
        write_varint(out, value)
        table.append(bytes(out))
    return tuple(table)


_SMALL: Final = 8192  # every value in [-8192, 8192) fits two varint bytes
# Built on first use, not at import (~10 ms: a broker that writes no records never needs it).
_VARINTS: Final[list[bytes]] = []


def _varint_table() -> list[bytes]:
    if not _VARINTS:
        _VARINTS[:] = _varints(_SMALL)  # one atomic assignment: safe from any thread
    return _VARINTS


_NULL: Final = b"\x01"  # varint -1: a null key or value


def _header_bytes(headers: Sequence[tuple[str, bytes | None]]) -> bytes:
    out = bytearray(varint_bytes(len(headers)))
    for header_key, header_value in headers:
        raw = header_key.encode()
        out += varint_bytes(len(raw))
        out += raw
        if header_value is None:
            out += _NULL
        else:
            out += varint_bytes(len(header_value))
            out += header_value
    return bytes(out)


def encode_records(records: Sequence[RecordInput], base_timestamp: int) -> bytes:
    """The records of a batch body, uncompressed: the producer's hot loop.

    Varints come from a table; each record is a few parts joined once at the end
    (no per-record buffer, keys and values copied once).
    """
    table = _VARINTS or _varint_table()
    small = _SMALL
    parts: list[bytes] = []
    extend = parts.extend
    for offset_delta, (key, value, headers, ts) in enumerate(records):
        delta = ts - base_timestamp
        ts_part = table[delta + small] if -small <= delta < small else varint_bytes(delta)
        off_part = (
            table[offset_delta + small] if offset_delta < small else (varint_bytes(offset_delta))
        )
        if key is None:
            key_len, key, key_size = _NULL, b"", 0
        else:
            key_size = len(key)
            key_len = table[key_size + small] if key_size < small else varint_bytes(key_size)
        if value is None:
            value_len, value, value_size = _NULL, b"", 0
        else:
            value_size = len(value)
            value_len = (
                table[value_size + small] if value_size < small else varint_bytes(value_size)
            )
        header_part = _header_bytes(headers) if headers else b"\x00"
        size = (
            1
            + len(ts_part)
            + len(off_part)
            + len(key_len)
            + key_size
            + len(value_len)
            + value_size
            + len(header_part)
        )
        size_part = table[size + small] if size < small else varint_bytes(size)
        extend((size_part, b"\x00", ts_part, off_part, key_len, key, value_len, value, header_part))
    return b"".join(parts)


def build_batch(
    records: Sequence[RecordInput],
    *,
    base_offset: int = 0,
    compression: int = 0,
    producer_id: int = NO_PRODUCER_ID,
    producer_epoch: int = -1,
    base_sequence: int = -1,
    is_transactional: bool = False,
    is_control: bool = False,
    partition_leader_epoch: int = NO_PARTITION_LEADER_EPOCH,
    timestamp_type: int = CREATE_TIME,
) -> bytes:
    """Encode one v2 batch of (key, value, headers, timestamp) records."""
    if not records:
        raise ValueError("a record batch needs at least one record")
    base_timestamp = records[0][3]
    max_timestamp = max(record[3] for record in records)
    body = encode_records(records, base_timestamp)
    payload = compress(compression, body) if compression else body
    attributes = (
        (compression & COMPRESSION_MASK)
        | (TIMESTAMP_TYPE_MASK if timestamp_type == LOG_APPEND_TIME else 0)
        | (TRANSACTIONAL_MASK if is_transactional else 0)
        | (CONTROL_MASK if is_control else 0)
    )
    buf = bytearray(BATCH_HEADER_SIZE)
    buf += payload
    _HEADER.pack_into(
        buf,
        0,
        base_offset,
        len(buf) - LOG_OVERHEAD,
        partition_leader_epoch,
        MAGIC,
        0,
        attributes,
        len(records) - 1,
        base_timestamp,
        max_timestamp,
        producer_id,
        producer_epoch,
        base_sequence,
        len(records),
    )
    _UINT32.pack_into(buf, CRC_OFFSET, crc32c.crc32c(memoryview(buf)[ATTRIBUTES_OFFSET:]))
    return bytes(buf)


def build_control_batch(
    producer_id: int,
    producer_epoch: int,
    commit: bool,
    coordinator_epoch: int,
    timestamp: int,
    base_offset: int = 0,
    partition_leader_epoch: int = NO_PARTITION_LEADER_EPOCH,
) -> bytes:
    """A transaction marker: a transactional control batch with one record."""
    key = _CONTROL_KEY.pack(0, CONTROL_COMMIT if commit else CONTROL_ABORT)
    value = _CONTROL_VALUE.pack(0, coordinator_epoch)
    return build_batch(
        [(key, value, (), timestamp)],
        base_offset=base_offset,
        producer_id=producer_id,
        producer_epoch=producer_epoch,
        is_transactional=True,
        is_control=True,
        partition_leader_epoch=partition_leader_epoch,
    )


def parse_control_record(record: Record) -> ControlRecord:
    """Decode a control record's key (version, type) and value (version, epoch)."""
    if record.key is None or len(record.key) < _CONTROL_KEY.size:
        raise corrupt("control record key is too short")
    _, control_type = _CONTROL_KEY.unpack_from(record.key)
    coordinator_epoch = -1
    if record.value is not None and len(record.value) >= _CONTROL_VALUE.size:
        _, coordinator_epoch = _CONTROL_VALUE.unpack_from(record.value)
    return ControlRecord(control_type, coordinator_epoch)
