"""Log compaction: latest record per key, tombstones after delete.retention.ms, offsets kept."""

from __future__ import annotations

import os
import struct
import tracemalloc
import zlib
from pathlib import Path

import crc32c

from strom.protocol.compression import GZIP, ZSTD
from strom.protocol.records import build_batch, encode_records, iter_batches, write_varint
from strom.storage.cleaner import CleanerCheckpoint, clean_log
from strom.storage.config import LogConfig
from tests.unit.storage.helpers import NOW, open_log, read_all

DAY = 86_400_000


def _append(log, pairs: list[tuple[bytes, bytes | None]], ts: int = NOW) -> None:  # type: ignore[no-untyped-def]
    """Append and commit (the cleaner only maps records below the high watermark)."""
    log.append_as_leader(build_batch([(k, v, [], ts) for k, v in pairs]), 0, ts)
    log.update_high_watermark(log.log_end_offset)


def _fill(tmp_path: Path):  # type: ignore[no-untyped-def]
    log = open_log(tmp_path, LogConfig(segment_bytes=300, cleanup_policy="compact"))
    for round_ in range(6):
        _append(log, [(b"a", b"a%d" % round_), (b"b", b"b%d" % round_)])
    _append(log, [(b"c", b"c0")])
    _append(log, [(b"c", None)])  # tombstone for c
    _append(log, [(b"a", b"a-last")])
    return log


def test_clean_keeps_latest_per_key_and_offsets(tmp_path: Path) -> None:
    log = _fill(tmp_path)
    assert log.num_segments > 2
    before = read_all(log)
    latest = {r.key: r.offset for r in before}
    size_before = log.size_in_bytes
    removed = clean_log(log, NOW, DAY)
    assert removed > 0 and log.size_in_bytes == size_before - removed
    after = read_all(log)
    active_base = log.segments[-1].base_offset
    for r in after:
        if r.offset < active_base:
            assert latest[r.key] == r.offset  # only the latest record of each key stays
    assert [r for r in after if r.offset >= active_base] == [
        r for r in before if r.offset >= active_base
    ]
    by_key = {r.key: r for r in after}
    assert by_key[b"a"].value == b"a-last" and by_key[b"b"].value == b"b5"
    assert by_key[b"c"].value is None  # the tombstone is young: kept
    assert log.log_end_offset == before[-1].offset + 1


def test_old_tombstones_are_dropped(tmp_path: Path) -> None:
    log = _fill(tmp_path)
    log.roll(NOW)  # everything closed
    clean_log(log, NOW + DAY + 1, DAY)
    keys = {r.key for r in read_all(log)}
    assert b"c" not in keys and {b"a", b"b"} <= keys


def test_cleaned_log_reopens_and_checkpoint_skips_clean_work(tmp_path: Path) -> None:
    log = _fill(tmp_path)
    state = CleanerCheckpoint()
    assert clean_log(log, NOW, DAY, state) > 0
    assert clean_log(log, NOW, DAY, state) == 0  # nothing new closed since
    expected = read_all(log)
    log.flush()
    log.close()
    reopened = open_log(tmp_path, LogConfig(segment_bytes=300, cleanup_policy="compact"))
    assert read_all(reopened) == expected
    reopened2 = open_log(tmp_path, LogConfig(segment_bytes=300), clean=False)
    assert read_all(reopened2) == expected


def test_nothing_to_clean_with_one_segment(tmp_path: Path) -> None:
    log = open_log(tmp_path, LogConfig(cleanup_policy="compact"))
    _append(log, [(b"a", b"1"), (b"a", b"2")])
    assert clean_log(log, NOW, DAY) == 0


def test_min_compaction_lag_keeps_young_segments(tmp_path: Path) -> None:
    log = _fill(tmp_path)
    closed = log.segments[:-1]
    assert len(closed) > 1
    before = read_all(log)
    # every record was written at NOW: a lag reaching past NOW leaves all of them alone
    assert clean_log(log, NOW + 999, DAY, min_compaction_lag_ms=1000) == 0
    assert read_all(log) == before
    assert clean_log(log, NOW + 1000, DAY, min_compaction_lag_ms=1000) > 0


def _batches(log):  # type: ignore[no-untyped-def]
    out = []
    for segment in log.segments:
        data = os.pread(segment.file.fileno, segment.size, 0)
        out += [h for h, _ in iter_batches(data)]
    return out


def test_rewritten_batches_keep_their_compression(tmp_path: Path) -> None:
    """As Kafka's cleaner: the records a batch keeps are written with its codec."""
    log = open_log(tmp_path, LogConfig(segment_bytes=400, cleanup_policy="compact"))
    pairs = [(b"a", b"x" * 50), (b"b", b"y" * 50), (b"c", b"z" * 50)]
    for codec in (GZIP, ZSTD):
        batch = build_batch([(k, v, [], NOW) for k, v in pairs], compression=codec)
        log.append_as_leader(batch, 0, NOW)
    _append(log, [(b"a", b"new")])
    log.roll(NOW)
    assert clean_log(log, NOW, DAY) > 0
    kept = [(r.offset, r.key, r.value) for r in read_all(log)]
    assert kept == [(4, b"b", b"y" * 50), (5, b"c", b"z" * 50), (6, b"a", b"new")]
    assert [(h.base_offset, h.compression, h.records_count) for h in _batches(log)] == [
        (3, ZSTD, 2),
        (6, 0, 1),
    ]


def test_a_bomb_is_cleaned_in_bounded_memory(tmp_path: Path) -> None:
    """A gzip batch whose kept record holds 200 MB: streamed in, recompressed out."""
    size = 200 << 20
    zeros = bytes(1 << 20)
    old = encode_records([(b"old", b"1", [], NOW)], NOW)
    head = bytearray(b"\x00\x00\x02\x08bomb")  # attributes, deltas (offset 1), key
    write_varint(head, size)
    record = bytearray()
    write_varint(record, len(head) + size + 1)
    z = zlib.compressobj(6, zlib.DEFLATED, 31)
    body = [z.compress(old + record + head)] + [z.compress(zeros) for _ in range(200)]
    body += [z.compress(b"\x00"), z.flush()]
    template = bytearray(build_batch([(b"k", b"v", [], NOW)] * 2, compression=GZIP)[:61])
    bomb = template + b"".join(body)
    struct.pack_into(">i", bomb, 8, len(bomb) - 12)
    struct.pack_into(">I", bomb, 17, crc32c.crc32c(bytes(bomb[21:])))
    log = open_log(tmp_path, LogConfig(segment_bytes=len(bomb), cleanup_policy="compact"))
    log.append_as_leader(bytes(bomb), 0, NOW)
    _append(log, [(b"old", b"2")])  # supersedes offset 0: the bomb's batch is rewritten
    tracemalloc.start()
    try:
        assert clean_log(log, NOW, DAY) > 0
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20
    ((header, raw),) = iter_batches(os.pread(log.segments[0].file.fileno, 1 << 30, 0))
    assert (header.base_offset, header.records_count, header.compression) == (0, 1, GZIP)
    from strom.protocol.record_stream import stream_records

    (r,) = stream_records(raw, max_key_bytes=10)
    assert (r.offset, r.key, r.value_size) == (1, b"bomb", size)
