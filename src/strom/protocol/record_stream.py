"""The records of one v2 batch, one at a time, with bounded memory: the broker's reader.

Clients decode whole batches (:mod:`strom.protocol.record_decoder`, fast). The
broker reads records only to check keys on compacted topics, to compact logs, to
load its coordinators, to find offsets by timestamp and to read transaction
markers, and a compressed batch may expand to any size. So it reads them here,
from :func:`~strom.protocol.compression_stream.decompress_chunks`, like Kafka's
``skipKeyValueIterator`` and ``streamingIterator``: only the fields asked for
are kept, each up to a limit; larger fields are skipped (or hashed), their sizes
reported. Memory stays bounded by the limits, whatever the batch expands to.

Anything malformed (a record running past the data, a length that does not
match its content, bytes after the last record) raises CORRUPT_MESSAGE, as
:func:`~strom.protocol.record_decoder.decode_batch` does.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterator
from typing import Final, NamedTuple

from strom.common.crc import crc32c
from strom.protocol.compression_stream import decompress_chunks
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.records import (
    ATTRIBUTES_OFFSET,
    BATCH_HEADER_SIZE,
    LOG_APPEND_TIME,
    MAGIC,
    MIN_BATCH_LENGTH,
    BatchHeader,
    Buffer,
    ControlRecord,
    Record,
    corrupt,
    parse_control_record,
    parse_header,
    read_varint,
    varint_bytes,
)

DIGEST_BYTES: Final = 16
_CONTROL_BYTES: Final = 64  # a control record's key and value are a few bytes


class StreamedRecord(NamedTuple):
    """One record as the broker reads it. ``key``/``value`` are None when null (size
    -1) or larger than the limit asked for (size >= 0); ``key_digest`` is a 16-byte
    BLAKE2b digest of a non-null key when asked for."""

    batch_index: int
    offset: int
    timestamp: int
    key_size: int
    key: bytes | None
    value_size: int
    value: bytes | None
    key_digest: bytes | None = None

    @property
    def partial(self) -> bool:
        """A non-null key or value was larger than its limit (and was not returned)."""
        return (self.key is None and self.key_digest is None and self.key_size >= 0) or (
            self.value is None and self.value_size >= 0
        )


class _Input:
    """Decompressed bytes pulled chunk by chunk; ``position`` counts bytes consumed."""

    __slots__ = ("_buf", "_chunks", "_pos", "position")

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buf = b""
        self._pos = 0
        self.position = 0

    def _next_chunk(self) -> bytes | None:
        for chunk in self._chunks:
            if chunk:
                return chunk
        return None

    def varint(self, max_bytes: int = 5) -> int:
        """A zigzag varint (varlong with ``max_bytes=10``)."""
        buf, pos = self._buf, self._pos
        if pos + 1 < len(buf):  # one or two bytes: almost every length and delta
            b = buf[pos]
            if b < 0x80:
                self._pos = pos + 1
                self.position += 1
                return (b >> 1) ^ -(b & 1)
            c = buf[pos + 1]
            if c < 0x80:
                v = (b & 0x7F) | (c << 7)
                self._pos = pos + 2
                self.position += 2
                return (v >> 1) ^ -(v & 1)
        while len(buf) - pos < max_bytes:
            chunk = self._next_chunk()
            if chunk is None:
                break
            buf = buf[pos:] + chunk
            pos = 0
        value, end = read_varint(buf, pos, max_bytes)
        self._buf, self._pos = buf, end
        self.position += end - pos
        return value

    def pieces(self, n: int) -> Iterator[bytes]:
        """The next ``n`` bytes in pieces (consumed as they are yielded)."""
        self.position += n
        while n > 0:
            avail = len(self._buf) - self._pos
            if not avail:
                chunk = self._next_chunk()
                if chunk is None:
                    raise corrupt("record runs past the end of the batch")
                self._buf, self._pos, avail = chunk, 0, len(chunk)
            take = min(avail, n)
            piece = self._buf[self._pos : self._pos + take]
            self._pos += take
            n -= take
            yield piece

    def take(self, n: int) -> bytes:
        if self._pos + n <= len(self._buf):
            piece = self._buf[self._pos : self._pos + n]
            self._pos += n
            self.position += n
            return piece
        return b"".join(self.pieces(n))

    def skip(self, n: int, sink: Callable[[bytes], object] | None = None) -> None:
        if self._pos + n <= len(self._buf):
            if sink is not None:
                sink(self._buf[self._pos : self._pos + n])
            self._pos += n
            self.position += n
            return
        for piece in self.pieces(n):
            if sink is not None:
                sink(piece)

    def at_end(self) -> bool:
        return self._pos == len(self._buf) and self._next_chunk() is None


def _open(batch: Buffer, verify_crc: bool) -> tuple[BatchHeader, _Input]:
    view = memoryview(batch)
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
    if header.records_count < 0:
        raise corrupt(f"invalid record count {header.records_count}")
    return header, _Input(decompress_chunks(header.compression, view[BATCH_HEADER_SIZE:size]))


def _field(src: _Input, size: int, limit: int) -> bytes | None:
    if size < 0:
        return None
    if size <= limit:
        return src.take(size)
    src.skip(size)
    return None


def _digest(src: _Input, size: int) -> bytes:
    import hashlib  # here, not at the top: it loads OpenSSL, 1 ms of every broker's start

    h = hashlib.blake2b(digest_size=DIGEST_BYTES)
    src.skip(size, h.update)
    return h.digest()


def _skip_headers(src: _Input) -> None:
    count = src.varint()
    if count < 0:
        raise corrupt(f"invalid header count {count}")
    for _ in range(count):
        key_size = src.varint()
        if key_size < 0:
            raise corrupt("null header key")
        src.skip(key_size)
        src.skip(max(src.varint(), 0))


def stream_records(
    batch: Buffer,
    *,
    max_key_bytes: int = 0,
    max_value_bytes: int = 0,
    digest_keys: bool = False,
    verify_crc: bool = True,
) -> Iterator[StreamedRecord]:
    """The records of the batch at the start of ``batch``, one at a time.

    Keys up to ``max_key_bytes`` and values up to ``max_value_bytes`` are returned;
    larger ones are skipped without being held. Headers are checked and skipped.
    """
    header, src = _open(batch, verify_crc)
    append_time = header.max_timestamp if header.timestamp_type == LOG_APPEND_TIME else None
    for index in range(header.records_count):
        length = src.varint()
        start = src.position
        src.skip(1)  # attributes (unused)
        timestamp = header.base_timestamp + src.varint(10)
        offset = header.base_offset + src.varint()
        key_size = max(src.varint(), -1)
        digest = _digest(src, key_size) if digest_keys and key_size >= 0 else None
        key = None if digest is not None else _field(src, key_size, max_key_bytes)
        value_size = max(src.varint(), -1)
        value = _field(src, value_size, max_value_bytes)
        _skip_headers(src)
        if src.position - start != length:
            raise corrupt("record length does not match its content")
        if append_time is not None:
            timestamp = append_time
        yield StreamedRecord(index, offset, timestamp, key_size, key, value_size, value, digest)
    if not src.at_end():
        raise corrupt("bytes left over after the last record")


def stream_kept_records(batch: Buffer, keep: Container[int]) -> Iterator[bytes]:
    """The bytes (uncompressed) of the records of ``batch`` whose index is in ``keep``,
    in bounded pieces: the log cleaner's copy of the records it retains."""
    header, src = _open(batch, verify_crc=False)
    for index in range(header.records_count):
        length = src.varint()
        if length < 0:
            raise corrupt(f"negative record length {length}")
        if index in keep:
            yield varint_bytes(length)
            yield from src.pieces(length)
        else:
            src.skip(length)
    if not src.at_end():
        raise corrupt("bytes left over after the last record")


def read_control_record(batch: Buffer) -> ControlRecord | None:
    """The transaction marker of a control batch (its first record); None if it has none."""
    for r in stream_records(batch, max_key_bytes=_CONTROL_BYTES, max_value_bytes=_CONTROL_BYTES):
        return parse_control_record(Record(r.offset, r.timestamp, r.key, r.value))
    return None
