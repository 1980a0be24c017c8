"""Streaming codecs with bounded memory: the broker's side of compression.

A compressed batch may expand to any size (a few hundred KB of gzip can hold a
record of hundreds of MB: a decompression bomb). The broker therefore never
decompresses a batch whole; :func:`decompress_chunks` yields the records
section in pieces of at most :data:`CHUNK_BYTES` whatever the ratio, as Kafka
walks a compressed batch through a decompressing InputStream:

- gzip: ``zlib.decompressobj`` with ``max_length`` (members one after another).
- lz4: python-lz4's ``LZ4FrameDecompressor`` with ``max_length`` (frames one
  after another).
- zstd: ``zstandard``'s stream reader, windows up to 128 MiB (zstd's default
  limit, as zstd-jni in Kafka); the frames' block headers are walked first, so a
  truncated frame is an error, not a short stream.
- snappy: xerial blocks one at a time; a raw block (librdkafka's format, or one
  xerial block) that declares more than :data:`SNAPPY_WHOLE_BYTES` is decoded by
  a small streaming decoder that keeps 64 KiB of history (every snappy
  compressor copies only within 64 KiB fragments). Snappy expands at most ~21
  times, so such blocks come only from huge batches.

The client keeps its whole-batch codec (:mod:`strom.protocol.compression`).
:func:`stream_compressor` is the streaming counterpart of ``compress``, for the
log cleaner's rewritten batches. Corrupt input raises
``KafkaError(CORRUPT_MESSAGE)``.

As in :mod:`strom.protocol.compression`, each codec's library is imported by the
functions that use it, with the first batch of that codec, and its errors become
CORRUPT_MESSAGE there.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import Final, Protocol

from strom.protocol.compression import (
    CODEC_NAMES,
    GZIP,
    LZ4,
    NONE,
    SNAPPY,
    XERIAL_MAGIC,
    ZSTD,
    xerial_block,
    xerial_header,
)
from strom.protocol.errors import ErrorCode, KafkaError

Buffer = bytes | bytearray | memoryview

CHUNK_BYTES: Final = 64 * 1024
SNAPPY_WHOLE_BYTES: Final = 4 * 1024 * 1024
SNAPPY_HISTORY: Final = 64 * 1024
ZSTD_MAX_WINDOW: Final = 1 << 27
_ZSTD_MAGIC: Final = 0xFD2FB528
_ZSTD_SKIPPABLE: Final = 0x184D2A50
_XERIAL_HEADER_SIZE: Final = 16
_XERIAL_BLOCK: Final = 32 * 1024
_ZSTD_LEVEL: Final = 3
_GZIP_LEVEL: Final = 6


def _corrupt(message: str) -> KafkaError:
    return KafkaError(ErrorCode.CORRUPT_MESSAGE, message)


def decompress_chunks(codec: int, data: Buffer) -> Iterator[bytes]:
    """The decompressed bytes of ``data`` in pieces of bounded size (see the module)."""
    if codec not in CODEC_NAMES:
        raise KafkaError(
            ErrorCode.UNSUPPORTED_COMPRESSION_TYPE, f"unknown compression codec {codec}"
        )
    if codec == NONE:
        yield bytes(data)
        return
    chunks = {GZIP: _gzip_chunks, SNAPPY: _snappy_chunks, LZ4: _lz4_chunks, ZSTD: _zstd_chunks}
    try:
        yield from chunks[codec](bytes(data))
    except KafkaError:
        raise
    except (OSError, EOFError, IndexError, RuntimeError, ValueError, zlib.error) as exc:
        raise _corrupt(f"corrupt {CODEC_NAMES[codec]} data: {exc}") from exc


def _gzip_chunks(data: bytes) -> Iterator[bytes]:
    while True:
        stream = zlib.decompressobj(wbits=31)  # gzip only, as java.util.zip.GZIPInputStream
        tail = data
        while not stream.eof:
            out = stream.decompress(tail, CHUNK_BYTES)
            if out:
                yield out
            elif len(stream.unconsumed_tail) == len(tail):
                raise _corrupt("truncated gzip data")
            tail = stream.unconsumed_tail
        data = stream.unused_data
        if not data:
            return


def _lz4_chunks(data: bytes) -> Iterator[bytes]:
    import lz4.frame

    while data:
        frame = lz4.frame.LZ4FrameDecompressor()
        out = frame.decompress(data, max_length=CHUNK_BYTES)
        while True:
            if out:
                yield out
            if frame.eof:
                break
            if frame.needs_input:
                raise _corrupt("truncated lz4 frame")
            out = frame.decompress(b"", max_length=CHUNK_BYTES)
        data = frame.unused_data


def _zstd_chunks(data: bytes) -> Iterator[bytes]:
    import zstandard

    check_zstd_frames(data)
    try:
        reader = zstandard.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW).stream_reader(
            data, read_across_frames=True
        )
        while chunk := reader.read(CHUNK_BYTES):
            yield chunk
    except zstandard.ZstdError as exc:
        raise _corrupt(f"corrupt zstd data: {exc}") from exc


def check_zstd_frames(data: bytes) -> None:
    """Walk the frame and block headers of ``data``: they must end exactly at its end."""
    end = len(data)
    pos = 0
    if not end:
        raise _corrupt("empty zstd data")
    while pos < end:
        if end - pos < 8:
            raise _corrupt("truncated zstd frame header")
        magic = int.from_bytes(data[pos : pos + 4], "little")
        if magic & 0xFFFFFFF0 == _ZSTD_SKIPPABLE:
            pos += 8 + int.from_bytes(data[pos + 4 : pos + 8], "little")
            continue
        if magic != _ZSTD_MAGIC:
            raise _corrupt("not a zstd frame")
        pos = _zstd_blocks(data, pos + 4)
    if pos != end:
        raise _corrupt("truncated zstd frame")


def _zstd_blocks(data: bytes, pos: int) -> int:
    """The position after the frame whose header descriptor is at ``pos``."""
    descriptor = data[pos]
    single_segment = (descriptor >> 5) & 1
    content_size_bytes = (single_segment, 2, 4, 8)[descriptor >> 6]
    pos += 1 + (1 - single_segment) + (0, 1, 2, 4)[descriptor & 3] + content_size_bytes
    end = len(data)
    while True:
        if pos + 3 > end:
            raise _corrupt("truncated zstd block")
        block = int.from_bytes(data[pos : pos + 3], "little")
        kind = (block >> 1) & 3
        if kind == 3:
            raise _corrupt("reserved zstd block type")
        pos += 3 + (1 if kind == 1 else block >> 3)
        if block & 1:
            return pos + (4 if descriptor & 0x04 else 0)


# -- snappy --------------------------------------------------------------------------


def _snappy_chunks(data: bytes) -> Iterator[bytes]:
    if not data.startswith(XERIAL_MAGIC):
        yield from _snappy_block(data)
        return
    if len(data) < _XERIAL_HEADER_SIZE:
        raise _corrupt("truncated xerial snappy header")
    pos = _XERIAL_HEADER_SIZE
    while pos < len(data):
        if pos + 4 > len(data):
            raise _corrupt("truncated xerial snappy block length")
        length = int.from_bytes(data[pos : pos + 4], "big", signed=True)
        pos += 4
        if length < 0 or pos + length > len(data):
            raise _corrupt("truncated xerial snappy block")
        yield from _snappy_block(data[pos : pos + length])
        pos += length


def _snappy_block(block: bytes) -> Iterator[bytes]:
    import cramjam

    try:
        size = cramjam.snappy.decompress_raw_len(block)
        whole = bytes(cramjam.snappy.decompress_raw(block)) if size <= SNAPPY_WHOLE_BYTES else None
    except cramjam.DecompressionError as exc:
        raise _corrupt(f"corrupt snappy data: {exc}") from exc
    if whole is not None:
        yield whole
    else:
        yield from _snappy_stream(block, size)


def _uvarint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift > 28:
            raise _corrupt("snappy length varint is too long")


def _snappy_stream(block: bytes, size: int) -> Iterator[bytes]:  # noqa: C901
    """Decode one raw snappy block of ``size`` bytes with bounded memory (IndexError
    on truncated input is turned into CORRUPT_MESSAGE by the caller)."""
    _, pos = _uvarint(block, 0)
    end = len(block)
    out = bytearray()
    sent = 0  # out[:sent] was yielded and is kept only as history
    total = 0
    while pos < end:
        tag = block[pos]
        kind = tag & 3
        if kind == 0:  # literal
            n = tag >> 2
            if n < 60:
                pos += 1
            else:
                extra = n - 59
                n = int.from_bytes(block[pos + 1 : pos + 1 + extra], "little")
                pos += 1 + extra
            n += 1
            if pos + n > end:
                raise _corrupt("truncated snappy literal")
            out += block[pos : pos + n]
            pos += n
        else:  # copy
            if kind == 1:
                length = 4 + ((tag >> 2) & 7)
                offset = ((tag >> 5) << 8) | block[pos + 1]
                pos += 2
            else:
                length = 1 + (tag >> 2)
                width = 2 if kind == 2 else 4
                offset = int.from_bytes(block[pos + 1 : pos + 1 + width], "little")
                pos += 1 + width
            if pos > end:
                raise _corrupt("truncated snappy copy")
            if not 0 < offset <= len(out):
                raise _corrupt(f"snappy copy offset {offset} is out of range")
            start = len(out) - offset
            if offset >= length:
                out += out[start : start + length]
            else:  # overlapping: a repeated pattern
                out += (out[start:] * (length // offset + 1))[:length]
        if len(out) - sent >= CHUNK_BYTES:
            total += len(out) - sent
            yield bytes(out[sent:])
            drop = max(len(out) - SNAPPY_HISTORY, 0)
            del out[:drop]
            sent = len(out)
            if total > size:
                raise _corrupt("snappy data is longer than its declared length")
    total += len(out) - sent
    if total != size:
        raise _corrupt(f"snappy data has {total} bytes, its header says {size}")
    if len(out) > sent:
        yield bytes(out[sent:])


# -- streaming compression -----------------------------------------------------------


class StreamCompressor(Protocol):
    def compress(self, data: bytes) -> bytes: ...

    def finish(self) -> bytes: ...


class _Gzip:
    def __init__(self) -> None:
        self._z = zlib.compressobj(_GZIP_LEVEL, zlib.DEFLATED, 31)

    def compress(self, data: bytes) -> bytes:
        return self._z.compress(data)

    def finish(self) -> bytes:
        return self._z.flush()


class _Xerial:
    """snappy-java's framing, 32 KiB blocks (as :func:`compression.compress`)."""

    def __init__(self) -> None:
        self._pending = bytearray()
        self._started = False

    def _blocks(self, final: bool) -> bytes:
        out = bytearray()
        if not self._started:
            out += xerial_header()
            self._started = True
        while len(self._pending) >= _XERIAL_BLOCK or (final and self._pending):
            out += xerial_block(bytes(self._pending[:_XERIAL_BLOCK]))
            del self._pending[:_XERIAL_BLOCK]
        return bytes(out)

    def compress(self, data: bytes) -> bytes:
        self._pending += data
        return self._blocks(False)

    def finish(self) -> bytes:
        return self._blocks(True)


class _Cramjam:
    """lz4 frames and zstd through cramjam's streaming compressors (as ``compress``)."""

    def __init__(self, codec: int) -> None:
        import cramjam

        self._c = cramjam.lz4.Compressor() if codec == LZ4 else cramjam.zstd.Compressor(_ZSTD_LEVEL)

    def compress(self, data: bytes) -> bytes:
        self._c.compress(data)
        return bytes(self._c.flush())

    def finish(self) -> bytes:
        return bytes(self._c.finish())


class _Identity:
    def compress(self, data: bytes) -> bytes:
        return data

    def finish(self) -> bytes:
        return b""


def stream_compressor(codec: int) -> StreamCompressor:
    """A compressor for ``codec`` fed piece by piece; output as it is produced."""
    if codec == NONE:
        return _Identity()
    if codec == GZIP:
        return _Gzip()
    if codec == SNAPPY:
        return _Xerial()
    if codec in (LZ4, ZSTD):
        return _Cramjam(codec)
    raise KafkaError(ErrorCode.UNSUPPORTED_COMPRESSION_TYPE, f"unknown compression codec {codec}")
