"""Bounded decompression: the same bytes as the whole-batch codecs, in bounded pieces."""

from __future__ import annotations

import gzip
import random
import tracemalloc
import zlib

import cramjam
import pytest

from strom.protocol import compression_stream
from strom.protocol.compression import GZIP, LZ4, NONE, SNAPPY, ZSTD, compress, decompress
from strom.protocol.compression_stream import (
    CHUNK_BYTES,
    SNAPPY_WHOLE_BYTES,
    decompress_chunks,
    stream_compressor,
)
from strom.protocol.errors import ErrorCode, KafkaError

CODECS = [GZIP, SNAPPY, LZ4, ZSTD]


def sample(size: int, seed: int = 7) -> bytes:
    """Compressible but not trivial: words from a small vocabulary."""
    rng = random.Random(seed)
    words = [rng.randbytes(rng.randrange(1, 12)) for _ in range(300)]
    out = bytearray()
    while len(out) < size:
        out += rng.choice(words)
    return bytes(out[:size])


def joined(codec: int, data: bytes) -> bytes:
    pieces = list(decompress_chunks(codec, data))
    limit = {NONE: len(data), SNAPPY: SNAPPY_WHOLE_BYTES}.get(codec, CHUNK_BYTES)
    assert all(len(p) <= limit for p in pieces)
    return b"".join(pieces)


@pytest.mark.parametrize("codec", [NONE, *CODECS])
@pytest.mark.parametrize("size", [0, 1, 1000, 300_000])
def test_same_bytes_as_whole_decompression(codec: int, size: int) -> None:
    data = sample(size)
    packed = compress(codec, data)
    assert joined(codec, packed) == decompress(codec, packed) == data


def test_concatenated_gzip_members_lz4_and_zstd_frames() -> None:
    a, b = sample(70_000, 1), sample(90_000, 2)
    assert joined(GZIP, gzip.compress(a) + gzip.compress(b)) == a + b
    assert joined(LZ4, compress(LZ4, a) + compress(LZ4, b)) == a + b
    assert joined(ZSTD, compress(ZSTD, a) + compress(ZSTD, b)) == a + b
    skippable = (0x184D2A50).to_bytes(4, "little") + (3).to_bytes(4, "little") + b"xyz"
    assert joined(ZSTD, skippable + compress(ZSTD, a)) == a


def test_raw_snappy_and_xerial_blocks() -> None:
    data = sample(200_000)
    assert joined(SNAPPY, bytes(cramjam.snappy.compress_raw(data))) == data  # librdkafka
    assert joined(SNAPPY, compress(SNAPPY, data)) == data  # snappy-java framing


def test_big_raw_snappy_blocks_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks over SNAPPY_WHOLE_BYTES go through the streaming decoder: same bytes."""
    monkeypatch.setattr(compression_stream, "SNAPPY_WHOLE_BYTES", 0)
    for data in (sample(1_000_000), bytes(300_000), sample(5) * 50_000, b"a"):
        raw = bytes(cramjam.snappy.compress_raw(data))
        pieces = list(decompress_chunks(SNAPPY, raw))
        assert b"".join(pieces) == data
        assert all(len(p) <= CHUNK_BYTES + 64 for p in pieces[:-1])


@pytest.mark.parametrize("codec", CODECS)
def test_truncated_or_garbled_data_is_corrupt(codec: int) -> None:
    packed = compress(codec, sample(200_000))
    for bad in (packed[: len(packed) // 2], packed[:-3], b"\x00" * 20, packed[:1]):
        if codec == SNAPPY and bad == packed[:-3]:
            continue  # xerial framing: a shorter last block can still be valid snappy
        with pytest.raises(KafkaError) as info:
            b"".join(decompress_chunks(codec, bad))
        assert info.value.code == ErrorCode.CORRUPT_MESSAGE


def test_snappy_stream_refuses_bad_copies(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compression_stream, "SNAPPY_WHOLE_BYTES", 0)
    for block in (
        b"\x0a\x02\x01\x00",  # a copy before any output
        b"\x0a\x00a\xfe\x05\x00",  # offset 5 with 1 byte of history
        b"\x05\x00a",  # declares 5 bytes, holds 1
        b"\x0a\x0ca",  # literal runs past the end
    ):
        with pytest.raises(KafkaError) as info:
            b"".join(decompress_chunks(SNAPPY, block))
        assert info.value.code == ErrorCode.CORRUPT_MESSAGE


def test_unknown_codec() -> None:
    with pytest.raises(KafkaError) as info:
        next(decompress_chunks(6, b"x"))
    assert info.value.code == ErrorCode.UNSUPPORTED_COMPRESSION_TYPE


def test_a_gzip_bomb_decompresses_in_bounded_memory() -> None:
    """200 MB of zeros in ~200 KB of gzip: the pieces never add up in memory."""
    z = zlib.compressobj(6, zlib.DEFLATED, 31)
    zeros = bytes(1 << 20)
    bomb = b"".join([z.compress(zeros) for _ in range(200)] + [z.flush()])
    tracemalloc.start()
    try:
        total = sum(len(p) for p in decompress_chunks(GZIP, bomb))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == 200 << 20
    assert peak < 8 << 20


@pytest.mark.parametrize("codec", [NONE, *CODECS])
def test_stream_compressor_round_trips(codec: int) -> None:
    data = sample(500_000)
    c = stream_compressor(codec)
    packed = b"".join([c.compress(data[i : i + 7000]) for i in range(0, len(data), 7000)])
    packed += c.finish()
    assert decompress(codec, packed) == data
