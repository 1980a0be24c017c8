"""Topic configs the log obeys: message.timestamp.before/after.max.ms, preallocate,
and the parsing of the cleaner's and deletion's configs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from strom.protocol.compression import GZIP
from strom.protocol.errors import ErrorCode, KafkaError, RecordValidationError
from strom.protocol.records import build_batch
from strom.storage.config import LONG_MAX, LogConfig

from .helpers import NOW, make_batch, open_log, read_all

SECOND = 1000


def _batch(*timestamps: int, compression: int = 0) -> bytes:
    return build_batch(
        [(b"k", b"v%d" % i, [], ts) for i, ts in enumerate(timestamps)], compression=compression
    )


def _refused(log, batch: bytes) -> list[int]:  # type: ignore[no-untyped-def]
    with pytest.raises(RecordValidationError) as info:
        log.append_as_leader(batch, 0, NOW)
    assert info.value.code == ErrorCode.INVALID_TIMESTAMP
    return [index for index, _ in info.value.record_errors]


def test_timestamp_before_max_ms(tmp_path: Path) -> None:
    log = open_log(tmp_path, LogConfig(message_timestamp_before_max_ms=SECOND))
    assert _refused(log, _batch(NOW - SECOND - 1)) == [0]
    log.append_as_leader(_batch(NOW - SECOND), 0, NOW)
    log.append_as_leader(_batch(NOW + 10**9), 0, NOW)  # no limit after now
    # the header's timestamps do not show the earliest record: the records are read
    assert _refused(log, _batch(NOW, NOW - 5 * SECOND, NOW, NOW - 2 * SECOND)) == [1, 3]
    gzipped = _batch(NOW, NOW - 5 * SECOND, compression=GZIP)
    assert _refused(log, gzipped) == [1]
    assert log.log_end_offset == 2


def test_timestamp_after_max_ms(tmp_path: Path) -> None:
    log = open_log(tmp_path, LogConfig(message_timestamp_after_max_ms=SECOND))
    with pytest.raises(KafkaError) as info:
        log.append_as_leader(_batch(NOW, NOW + SECOND + 1), 0, NOW)
    assert info.value.code == ErrorCode.INVALID_TIMESTAMP
    assert "should be within [" in (info.value.message or "")
    log.append_as_leader(_batch(NOW + SECOND, NOW - 10**9), 0, NOW)  # no limit before
    assert log.log_end_offset == 2


def test_difference_max_ms_fills_in_for_the_defaults(tmp_path: Path) -> None:
    """Kafka 3.6+ (KIP-937): before/after.max.ms take difference.max.ms's value while
    they keep their default; a value of their own wins."""
    both = LogConfig(message_timestamp_difference_max_ms=SECOND)
    assert (both.timestamp_before_max_ms, both.timestamp_after_max_ms) == (SECOND, SECOND)
    mixed = LogConfig(
        message_timestamp_difference_max_ms=SECOND, message_timestamp_before_max_ms=LONG_MAX - 1
    )
    assert (mixed.timestamp_before_max_ms, mixed.timestamp_after_max_ms) == (LONG_MAX - 1, SECOND)
    log = open_log(tmp_path, mixed)
    log.append_as_leader(_batch(NOW - 10**9), 0, NOW)
    assert _refused(log, _batch(NOW + SECOND + 1)) == [0]


def test_log_append_time_topics_are_not_checked(tmp_path: Path) -> None:
    config = LogConfig(
        message_timestamp_type="LogAppendTime", message_timestamp_before_max_ms=SECOND
    )
    log = open_log(tmp_path, config)
    assert log.append_as_leader(_batch(NOW - 10**9), 0, NOW).log_append_time == NOW


def test_new_topic_configs_parse() -> None:
    config = LogConfig.from_topic_config(
        {
            "file.delete.delay.ms": "0",
            "min.cleanable.dirty.ratio": "0.25",
            "max.compaction.lag.ms": "5000",
            "message.timestamp.before.max.ms": "10",
            "message.timestamp.after.max.ms": "20",
            "preallocate": "true",
        }
    )
    assert config.file_delete_delay_ms == 0 and config.min_cleanable_dirty_ratio == 0.25
    assert config.max_compaction_lag_ms == 5000 and config.preallocate
    assert (config.timestamp_before_max_ms, config.timestamp_after_max_ms) == (10, 20)
    for name, bad in (
        ("min.cleanable.dirty.ratio", "1.5"),
        ("max.compaction.lag.ms", "0"),
        ("preallocate", "yes"),
        ("file.delete.delay.ms", "-1"),
    ):
        with pytest.raises(KafkaError) as info:
            LogConfig.from_topic_config({name: bad})
        assert info.value.code == ErrorCode.INVALID_CONFIG


def _file_size(path: Path) -> int:
    return os.stat(path).st_size


def test_preallocate_sizes_new_segments_and_trims_them(tmp_path: Path) -> None:
    config = LogConfig(segment_bytes=1000, preallocate=True)
    log = open_log(tmp_path, config)
    active = log.active_segment
    assert _file_size(active.log_path) == 1000 and active.size == 0
    for _ in range(30):
        log.append_as_leader(make_batch(2), 0, NOW)
    assert log.num_segments > 1
    for closed in log.segments[:-1]:  # trimmed on roll
        assert _file_size(closed.log_path) == closed.size > 0
    assert _file_size(log.active_segment.log_path) == 1000 > log.active_segment.size
    assert [r.offset for r in read_all(log)] == list(range(60))
    log.flush()
    log.close()  # trims the active segment too
    for path in sorted((tmp_path / "topic-0").glob("*.log")):
        assert _file_size(path) < 1000
    reopened = open_log(tmp_path, config, recovery_point=60)
    assert reopened.append_as_leader(make_batch(1), 0, NOW).first_offset == 60
    assert [r.offset for r in read_all(reopened)] == list(range(61))


def test_a_preallocated_segment_recovers_after_a_crash(tmp_path: Path) -> None:
    config = LogConfig(segment_bytes=1000, preallocate=True)
    log = open_log(tmp_path, config)
    for _ in range(3):
        log.append_as_leader(make_batch(2), 0, NOW)
    path = log.active_segment.log_path
    assert _file_size(path) == 1000  # crash: never trimmed, zeros after the data
    crashed = open_log(tmp_path, config, clean=False)
    assert crashed.log_end_offset == 6 and crashed.active_segment.size < 1000
    assert crashed.append_as_leader(make_batch(1), 0, NOW).first_offset == 6
    assert [r.offset for r in read_all(crashed)] == list(range(7))
