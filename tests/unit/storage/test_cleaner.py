"""Log compaction: latest record per key, tombstones after delete.retention.ms, offsets kept."""

from __future__ import annotations

from pathlib import Path

from strom.protocol.records import build_batch
from strom.storage.cleaner import CleanerCheckpoint, clean_log
from strom.storage.config import LogConfig
from tests.unit.storage.helpers import NOW, open_log, read_all

DAY = 86_400_000


def _append(log, pairs: list[tuple[bytes, bytes | None]], ts: int = NOW) -> None:  # type: ignore[no-untyped-def]
    log.append_as_leader(build_batch([(k, v, [], ts) for k, v in pairs]), 0, ts)


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
