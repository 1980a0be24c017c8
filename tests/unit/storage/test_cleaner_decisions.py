"""Which compacted logs the cleaner takes, and when (fake clock): Kafka's
min.cleanable.dirty.ratio, max.compaction.lag.ms, the first dirty and first
uncleanable offsets."""

from __future__ import annotations

from pathlib import Path

from strom.common.types import TopicPartition
from strom.protocol.records import build_batch
from strom.storage.cleanable import CleanerCheckpoint, log_to_clean
from strom.storage.cleaner import clean_log, plan_cleaning
from strom.storage.config import LogConfig
from strom.storage.log import PartitionLog
from strom.storage.log_manager import LogManager

from .helpers import NOW, open_log, read_all

DAY = 86_400_000
COMPACT = LogConfig(segment_bytes=400, cleanup_policy="compact")
TP = TopicPartition("c", 0)


def _put(log: PartitionLog, key: bytes, value: bytes | None, ts: int = NOW) -> None:
    log.append_as_leader(build_batch([(key, value, [], ts)]), 0, ts)
    log.update_high_watermark(log.log_end_offset)


def _unique_keys(log: PartitionLog, count: int, ts: int = NOW) -> None:
    for i in range(count):
        _put(log, b"key-%03d" % i, b"value", ts)


def _manager(tmp_path: Path, config: LogConfig) -> tuple[LogManager, PartitionLog]:
    manager = LogManager([tmp_path], config, NOW)
    return manager, manager.create_log(TP, NOW)


def test_sections_of_a_log(tmp_path: Path) -> None:
    log = open_log(tmp_path, COMPACT)
    _unique_keys(log, 30)
    closed = log.segments[:-1]
    assert len(closed) > 3
    fresh = log_to_clean(log, CleanerCheckpoint(), NOW)
    assert fresh.first_dirty_offset == 0 and fresh.clean_bytes == 0
    assert fresh.first_uncleanable_offset == log.active_segment.base_offset
    assert fresh.cleanable_bytes == sum(s.size for s in closed)
    assert fresh.cleanable_ratio == 1.0 and not fresh.need_compaction_now
    # a checkpoint past the log end (a lost tail) or below its start: the whole log
    for bad in (log.log_end_offset + 5, -1):
        assert log_to_clean(log, CleanerCheckpoint(bad), NOW).first_dirty_offset == 0
    half = closed[len(closed) // 2].base_offset
    split = log_to_clean(log, CleanerCheckpoint(half), NOW)
    assert split.clean_bytes == sum(s.size for s in closed if s.base_offset < half)
    assert split.clean_bytes + split.cleanable_bytes == fresh.cleanable_bytes


def test_nothing_past_the_high_watermark_is_cleanable(tmp_path: Path) -> None:
    log = open_log(tmp_path, COMPACT)
    _unique_keys(log, 30)
    log.high_watermark = log.segments[1].base_offset + 1  # a follower far behind
    to_clean = log_to_clean(log, None, NOW)
    assert to_clean.first_uncleanable_offset == log.segments[1].base_offset


def test_a_record_above_the_high_watermark_supersedes_nothing(tmp_path: Path) -> None:
    """It may still be truncated away: the cleaner maps committed records only."""
    log = open_log(tmp_path, COMPACT)
    _put(log, b"a", b"old")
    _unique_keys(log, 20)
    hw = log.log_end_offset
    log.append_as_leader(build_batch([(b"a", b"new", [], NOW)]), 0, NOW)  # not committed
    log.roll(NOW)
    clean_log(log, NOW, DAY)
    assert [r.value for r in read_all(log) if r.key == b"a"] == [b"old", b"new"]
    log.update_high_watermark(hw + 1)
    clean_log(log, NOW, DAY)
    assert [r.value for r in read_all(log) if r.key == b"a"] == [b"new"]


def test_min_cleanable_dirty_ratio(tmp_path: Path) -> None:
    config = COMPACT.replace(min_cleanable_dirty_ratio=0.5)
    manager, log = _manager(tmp_path, config)
    _unique_keys(log, 40)  # a big clean section once cleaned: no key repeats
    manager.compact(NOW)
    cleaned = log_to_clean(log, manager._cleaner_state[TP], NOW)
    assert cleaned.cleanable_bytes == 0 and cleaned.clean_bytes > 0
    for _ in range(8):
        _put(log, b"key-000", b"again")  # a little dirt
    log.roll(NOW)
    dirty = log_to_clean(log, manager._cleaner_state[TP], NOW)
    assert 0 < dirty.cleanable_ratio < 0.5
    before = read_all(log)
    assert manager.cleaning_jobs(NOW) == [] and manager.compact(NOW) == 0
    assert read_all(log) == before
    log.config = config.replace(min_cleanable_dirty_ratio=dirty.cleanable_ratio / 2)
    assert manager.compact(NOW) > 0
    assert [r.value for r in read_all(log) if r.key == b"key-000"] == [b"again"]
    manager.shutdown()


def test_max_compaction_lag_cleans_below_the_ratio(tmp_path: Path) -> None:
    config = COMPACT.replace(max_compaction_lag_ms=10_000)
    manager, log = _manager(tmp_path, config)
    _unique_keys(log, 40)
    log.roll(NOW)  # all cleaned: the dirty section starts with the records below
    manager.compact(NOW)
    first_dirty = NOW + 1_000
    for i in range(8):
        _put(log, b"key-000", b"again-%d" % i, first_dirty)
    log.roll(first_dirty)
    state = manager._cleaner_state[TP]
    assert log_to_clean(log, state, first_dirty).cleanable_ratio < config.min_cleanable_dirty_ratio
    at_lag = first_dirty + 10_000
    assert not log_to_clean(log, state, at_lag).need_compaction_now
    assert manager.compact(at_lag) == 0
    past = log_to_clean(log, state, at_lag + 1)
    assert past.need_compaction_now and past.max_compaction_delay_ms == 1
    assert manager.compact(at_lag + 1) > 0
    assert [r.value for r in read_all(log) if r.key == b"key-000"] == [b"again-7"]
    manager.shutdown()


def test_max_compaction_lag_rolls_the_active_segment(tmp_path: Path) -> None:
    """Kafka's LogConfig.maxSegmentMs: min(segment.ms, max.compaction.lag.ms) on a
    compacted topic, so that dirty records do not wait in the active segment."""
    for policy, rolls in (("compact", True), ("delete", False)):
        config = LogConfig(cleanup_policy=policy, max_compaction_lag_ms=5_000)
        log = open_log(tmp_path / policy, config)
        _put(log, b"k", b"1", NOW)
        _put(log, b"k", b"2", NOW + 5_000)
        assert log.num_segments == 1
        _put(log, b"k", b"3", NOW + 5_001)
        assert (log.num_segments == 2) is rolls, policy


def test_min_compaction_lag_holds_young_segments_back(tmp_path: Path) -> None:
    config = COMPACT.replace(min_compaction_lag_ms=1_000)
    log = open_log(tmp_path, config)
    for i in range(20):
        _put(log, b"k", b"v%d" % i, NOW + i)
    assert log.num_segments > 3
    young = log_to_clean(log, None, NOW + 500)
    assert young.first_uncleanable_offset == 0 and young.cleanable_bytes == 0
    assert plan_cleaning(log, None, NOW + 500, force=True) is None
    old = log_to_clean(log, None, NOW + 2_000)
    assert old.first_uncleanable_offset == log.active_segment.base_offset


def test_the_filthiest_log_is_cleaned_first(tmp_path: Path) -> None:
    manager = LogManager([tmp_path], COMPACT, NOW)
    logs = [manager.create_log(TopicPartition("c", p), NOW) for p in range(2)]
    for i in range(30):
        _put(logs[0], b"k%d" % (i % 2), b"v")  # two keys: very dirty
        _put(logs[1], b"k%d" % i, b"v")  # unique keys
    state = manager._cleaner_state.setdefault(TopicPartition("c", 1), CleanerCheckpoint())
    state.first_dirty_offset = logs[1].segments[2].base_offset  # partly clean already
    jobs = manager.cleaning_jobs(NOW)
    assert [job.tp.partition for job in jobs] == [0, 1]
    assert jobs[0].job.to_clean.cleanable_ratio > jobs[1].job.to_clean.cleanable_ratio
    assert manager.cleaning_jobs(NOW) == []  # both in flight
    for job in jobs:
        job.run()
        job.complete()
    assert len(manager.cleaning_jobs(NOW)) == 0  # clean now: below the ratio
    manager.shutdown()
