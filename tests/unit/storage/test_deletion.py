"""file.delete.delay.ms: segments leave the log at once, their files go later (fake clock)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from strom.common.types import TopicPartition
from strom.storage.config import LogConfig
from strom.storage.deletion import DeletionJob, DeletionQueue
from strom.storage.log import PartitionLog
from strom.storage.log_manager import LogManager

from .helpers import NOW, make_batch, open_log, read_all, read_records

DELAY = 60_000  # Kafka's default file.delete.delay.ms


def _files(log: PartitionLog) -> list[str]:
    return sorted(p.name for p in log.dir.iterdir() if not p.name.endswith(".snapshot"))


def _deleted(log: PartitionLog) -> list[str]:
    return [name for name in _files(log) if name.endswith(".deleted")]


def _filled(tmp_path: Path, config: LogConfig) -> PartitionLog:
    log = open_log(tmp_path, config)
    for i in range(12):
        log.append_as_leader(make_batch(2, NOW + i * 1000), 0, NOW)
    log.update_high_watermark(log.log_end_offset)
    return log


def _run_due(log: PartitionLog, now_ms: int) -> int:
    due = log.deletions.take_due(now_ms)
    failures: list[tuple[Path, OSError]] = []
    job = DeletionJob(due, lambda d, e: failures.append((d, e)))
    job.run()
    assert job.complete() == len(due) and failures == []
    return len(due)


def test_retention_renames_now_and_deletes_after_the_delay(tmp_path: Path) -> None:
    log = _filled(tmp_path, LogConfig(segment_bytes=200, retention_ms=10_000))
    before = log.num_segments
    gone = log.delete_expired_segments(NOW + 16_000)
    assert 0 < gone < before and log.num_segments == before - gone
    deleted = _deleted(log)
    assert len(deleted) == 3 * gone  # .log, .index, .timeindex of each
    assert all(name.split(".")[0] < f"{log.log_start_offset:020d}" for name in deleted)
    assert _run_due(log, NOW + 16_000 + DELAY - 1) == 0 and _deleted(log) == deleted
    assert _run_due(log, NOW + 16_000 + DELAY) == gone and _deleted(log) == []
    assert [r.offset for r in read_all(log)] == list(range(log.log_start_offset, 24))


def test_the_delay_is_the_topic_config(tmp_path: Path) -> None:
    config = LogConfig(segment_bytes=200, file_delete_delay_ms=0)
    log = _filled(tmp_path, config)
    assert log.delete_records_before(10, NOW + 5) == 10
    assert _deleted(log)
    assert _run_due(log, NOW + 5) > 0 and _deleted(log) == []
    log.config = LogConfig(segment_bytes=200, file_delete_delay_ms=500)  # AlterConfigs
    log.delete_records_before(20, NOW + 10)
    assert _run_due(log, NOW + 509) == 0
    assert _run_due(log, NOW + 510) > 0 and _deleted(log) == []


def test_truncation_has_no_clock_the_delay_counts_from_the_next_sweep(tmp_path: Path) -> None:
    log = _filled(tmp_path, LogConfig(segment_bytes=200))
    segments = log.num_segments
    assert log.truncate_to(4)
    assert log.num_segments < segments and _deleted(log)
    assert _run_due(log, NOW + 1_000) == 0  # first seen now: stamped NOW + 1000
    assert _run_due(log, NOW + 1_000 + DELAY - 1) == 0
    assert _run_due(log, NOW + 1_000 + DELAY) == segments - log.num_segments
    assert _deleted(log) == []


def test_truncate_fully_keeps_old_files_apart_from_the_new_segment(tmp_path: Path) -> None:
    log = _filled(tmp_path, LogConfig(segment_bytes=200))
    first = log.segments[0]
    log.truncate_fully_and_start_at(0, NOW)  # the new segment has the same base offset
    assert f"{0:020d}.log" in _files(log) and f"{0:020d}.log.deleted" in _files(log)
    log.append_as_leader(make_batch(1, tag="new"), 1, NOW)
    assert _run_due(log, NOW + DELAY) > 0
    assert [r.value for r in read_all(log)] == [b"new0"]
    assert first.log_path.name.endswith(".deleted") and not first.log_path.exists()


def test_a_slice_outlives_the_deletion_of_its_segment(tmp_path: Path) -> None:
    """The deletion unlinks and drops its reference in a storage thread; the fd stays
    open while a slice holds it, so its number is never reused under the reader."""
    log = _filled(tmp_path, LogConfig(segment_bytes=200, retention_ms=1, file_delete_delay_ms=0))
    fetched = log.read(0, 1 << 20)
    (piece,) = fetched.slices
    expected = piece.read()
    assert log.delete_expired_segments(NOW + 100_000) > 0
    job = DeletionJob(log.deletions.take_due(NOW + 100_000), lambda d, e: None)
    worker = threading.Thread(target=job.run)
    worker.start()
    worker.join()
    job.complete()
    assert _deleted(log) == []
    opened = [os.open(os.devnull, os.O_RDONLY) for _ in range(8)]  # reuse free fd numbers
    try:
        assert piece.fileno not in opened and not piece.file.closed
        assert piece.read() == expected
        assert [r.offset for r in read_records(fetched)][:2] == [0, 1]
    finally:
        for fd in opened:
            os.close(fd)


def test_a_failed_deletion_goes_to_the_directory_failure_handler(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "t-0.abc-delete"
    not_a_dir.write_text("a file where a directory was expected")
    queue = DeletionQueue()
    queue.schedule(not_a_dir, 0, NOW)
    failures: list[tuple[Path, OSError]] = []
    job = DeletionJob(queue.take_due(NOW), lambda d, e: failures.append((d, e)))
    job.run()
    assert job.complete() == 0
    assert [d for d, _ in failures] == [tmp_path]


def test_the_manager_sweeps_every_log_and_deleted_partitions(tmp_path: Path) -> None:
    config = LogConfig(segment_bytes=200, retention_ms=1)
    manager = LogManager([tmp_path], config, NOW)
    logs = [manager.create_log(TopicPartition("t", p), NOW) for p in range(2)]
    for log in logs:
        for _ in range(5):
            log.append_as_leader(make_batch(2), 0, NOW)
        log.update_high_watermark(log.log_end_offset)
    gone = manager.cleanup(NOW + 10)
    manager.delete_log(TopicPartition("t", 1), NOW + 10)
    assert gone > 0 and len(manager.deletions) == gone + 1
    job = manager.deletion_job(NOW + 10 + DELAY - 1)
    assert job is None
    assert manager.delete_due(NOW + 10 + DELAY) == gone + 1
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["t-0"]
    assert _deleted(logs[0]) == []
    manager.shutdown()


def test_shutdown_removes_what_still_waits(tmp_path: Path) -> None:
    manager = LogManager([tmp_path], LogConfig(segment_bytes=200, retention_ms=1), NOW)
    log = manager.create_log(TopicPartition("t", 0), NOW)
    for _ in range(5):
        log.append_as_leader(make_batch(2), 0, NOW)
    log.update_high_watermark(log.log_end_offset)
    assert manager.cleanup(NOW + 10) > 0 and _deleted(log)
    manager.shutdown()
    assert not any(p.name.endswith(".deleted") for p in (tmp_path / "t-0").iterdir())
