"""Kafka record batch compression codecs.

The codec id lives in the low three bits of a batch's attributes:
0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd. Only the records section of a v2
batch (everything after the 61-byte header) is compressed.

- gzip: an RFC 1952 stream (stdlib ``gzip``).
- snappy: the Java client writes xerial/snappy-java framing
  (``b"\\x82SNAPPY\\x00"``, int32 version, int32 compatible version, then blocks
  of int32 length + raw snappy); librdkafka may send raw snappy. We write
  xerial framing and read both.
- lz4: the LZ4 *frame* format (magic ``04 22 4d 18``), as librdkafka,
  kafka-python and the Java client (for magic 2) use.
- zstd: a standard zstd frame.

Unknown codecs raise ``KafkaError(UNSUPPORTED_COMPRESSION_TYPE)``; data that
cannot be decompressed raises ``KafkaError(CORRUPT_MESSAGE)``.

The codec libraries (gzip, cramjam) are imported by the functions that use them, with
the first compressed batch: a broker that sees none does not load them.
"""

from __future__ import annotations

import struct
import zlib
from typing import Final

from strom.protocol.errors import ErrorCode, KafkaError

NONE: Final = 0
GZIP: Final = 1
SNAPPY: Final = 2
LZ4: Final = 3
ZSTD: Final = 4

CODEC_NAMES: Final[dict[int, str]] = {
    NONE: "none",
    GZIP: "gzip",
    SNAPPY: "snappy",
    LZ4: "lz4",
    ZSTD: "zstd",
}

XERIAL_MAGIC: Final = b"\x82SNAPPY\x00"
_XERIAL_HEADER: Final = struct.Struct(">8sii")
_INT32: Final = struct.Struct(">i")
_XERIAL_BLOCK_SIZE: Final = 32 * 1024  # snappy-java's default block size
_ZSTD_LEVEL: Final = 3  # Kafka's default compression.zstd.level
_GZIP_LEVEL: Final = 6  # java.util.zip default


def codec_by_name(name: str) -> int:
    """The codec id for a compression.type name (``"none"``, ``"gzip"``, ...)."""
    for codec, codec_name in CODEC_NAMES.items():
        if codec_name == name:
            return codec
    raise KafkaError(ErrorCode.UNSUPPORTED_COMPRESSION_TYPE, f"unknown compression {name!r}")


def compress(codec: int, data: bytes | bytearray | memoryview) -> bytes:
    """Compress ``data`` with the Kafka codec ``codec``."""
    if codec == NONE:
        return bytes(data)
    if codec == GZIP:
        import gzip

        return gzip.compress(bytes(data), compresslevel=_GZIP_LEVEL, mtime=0)
    if codec == SNAPPY:
        return _xerial_compress(data)
    import cramjam

    if codec == LZ4:
        return bytes(cramjam.lz4.compress(bytes(data)))
    if codec == ZSTD:
        return bytes(cramjam.zstd.compress(bytes(data), level=_ZSTD_LEVEL))
    raise KafkaError(ErrorCode.UNSUPPORTED_COMPRESSION_TYPE, f"unknown compression codec {codec}")


def decompress(codec: int, data: bytes | bytearray | memoryview) -> bytes:
    """Decompress ``data`` written with the Kafka codec ``codec``."""
    if codec == NONE:
        return bytes(data)
    if codec not in CODEC_NAMES:
        raise KafkaError(
            ErrorCode.UNSUPPORTED_COMPRESSION_TYPE, f"unknown compression codec {codec}"
        )
    import gzip

    import cramjam

    try:
        if codec == GZIP:
            return gzip.decompress(bytes(data))
        if codec == SNAPPY:
            return _snappy_decompress(bytes(data))
        if codec == LZ4:
            return bytes(cramjam.lz4.decompress(bytes(data)))
        return bytes(cramjam.zstd.decompress(bytes(data)))
    except KafkaError:
        raise
    except (OSError, EOFError, zlib.error, ValueError, cramjam.DecompressionError) as exc:
        name = CODEC_NAMES[codec]
        raise KafkaError(ErrorCode.CORRUPT_MESSAGE, f"corrupt {name} data: {exc}") from exc


def xerial_header() -> bytes:
    """The header of snappy-java's framing: magic, version 1, compatible version 1."""
    return _XERIAL_HEADER.pack(XERIAL_MAGIC, 1, 1)


def xerial_block(data: bytes) -> bytes:
    """One block of snappy-java's framing: int32 length + raw snappy."""
    import cramjam

    block = bytes(cramjam.snappy.compress_raw(data))
    return _INT32.pack(len(block)) + block


def _xerial_compress(data: bytes | bytearray | memoryview) -> bytes:
    view = memoryview(data)
    out = [xerial_header()]
    for start in range(0, len(view), _XERIAL_BLOCK_SIZE):
        out.append(xerial_block(bytes(view[start : start + _XERIAL_BLOCK_SIZE])))
    return b"".join(out)


def _snappy_decompress(data: bytes) -> bytes:
    import cramjam

    if not data.startswith(XERIAL_MAGIC):
        return bytes(cramjam.snappy.decompress_raw(data))
    if len(data) < _XERIAL_HEADER.size:
        raise KafkaError(ErrorCode.CORRUPT_MESSAGE, "truncated xerial snappy header")
    pos = _XERIAL_HEADER.size
    out: list[bytes] = []
    while pos < len(data):
        if pos + 4 > len(data):
            raise KafkaError(ErrorCode.CORRUPT_MESSAGE, "truncated xerial snappy block length")
        (length,) = _INT32.unpack_from(data, pos)
        pos += 4
        if length < 0 or pos + length > len(data):
            raise KafkaError(ErrorCode.CORRUPT_MESSAGE, "truncated xerial snappy block")
        out.append(bytes(cramjam.snappy.decompress_raw(data[pos : pos + length])))
        pos += length
    return b"".join(out)
