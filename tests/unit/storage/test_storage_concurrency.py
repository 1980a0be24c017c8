"""Storage jobs in a thread while the log changes on the caller's thread.

Each test runs a job's blocking part in a real thread and stops it at a hook
(after the offset map, after a cleaned copy, after a deletion), changes the log
meanwhile (appends, reads, truncation, retention, a failed directory), lets the
thread finish and completes the job: the result must be what the log holds now,
never what it held when the job was planned. No sleeps: the threads meet on
events.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from strom.common.types import TopicPartition
from strom.protocol.records import Record, build_batch
from strom.storage import cleaner, deletion
from strom.storage.config import LogConfig
from strom.storage.deletion import DeletionJob
from strom.storage.jobs import StorageJob
from strom.storage.log import PartitionLog
from strom.storage.log_manager import LogManager

from .helpers import NOW, open_log, read_all

WAIT_S = 60  # a safety net against a hung thread, never a measure of speed
COMPACT = LogConfig(segment_bytes=300, cleanup_policy="compact", min_cleanable_dirty_ratio=0.0)
TP = TopicPartition("c", 0)


class Pause:
    """Stop the storage thread right after the first call of ``module.name``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, module: ModuleType, name: str) -> None:
        self.reached = threading.Event()
        self.release = threading.Event()
        original: Callable[..., Any] = getattr(module, name)

        def hooked(*args: Any, **kwargs: Any) -> Any:
            result = original(*args, **kwargs)
            if not self.reached.is_set():
                self.reached.set()
                assert self.release.wait(WAIT_S)
            return result

        monkeypatch.setattr(module, name, hooked)
        self.thread: threading.Thread | None = None

    def start(self, job: StorageJob) -> None:
        self.thread = threading.Thread(target=job.run)
        self.thread.start()
        assert self.reached.wait(WAIT_S), "the storage thread never reached the hook"

    def finish(self) -> None:
        self.release.set()
        assert self.thread is not None
        self.thread.join(WAIT_S)
        assert not self.thread.is_alive()


def _put(log: PartitionLog, key: bytes, value: bytes | None) -> None:
    log.append_as_leader(build_batch([(key, value, [], NOW)]), 0, NOW)
    log.update_high_watermark(log.log_end_offset)


def _dirty_log(log: PartitionLog, rounds: int = 6) -> None:
    for r in range(rounds):
        for key in (b"a", b"b", b"c"):
            _put(log, key, b"%s%d" % (key, r))
    log.roll(NOW)
    assert log.num_segments > 4


def _latest(records: list[Record]) -> dict[bytes | None, bytes | None]:
    return {r.key: r.value for r in records}


def _assert_well_formed(log: PartitionLog, *, leftovers: bool = False) -> None:
    """Offsets grow, every segment has its own files under its final names, and no
    cleaned copy is left over (unless ``leftovers``: not deleted yet)."""
    offsets = [r.offset for r in read_all(log)]
    assert offsets == sorted(set(offsets))
    for segment in log.segments:
        assert segment.log_path.name == f"{segment.base_offset:020d}.log"
        assert os.path.samestat(os.stat(segment.log_path), os.fstat(segment.file.fileno))
    assert leftovers or not [p for p in log.dir.iterdir() if p.name.endswith(".cleaned")]


def _manager(tmp_path: Path) -> tuple[LogManager, PartitionLog]:
    manager = LogManager([tmp_path], COMPACT, NOW)
    return manager, manager.create_log(TP, NOW)


def test_appends_and_reads_continue_during_a_cleaning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manager, log = _manager(tmp_path)
    _dirty_log(log)
    before = read_all(log)
    in_flight = log.read(0, 1 << 20).slices[0]
    original_bytes = in_flight.read()
    (job,) = manager.cleaning_jobs(NOW)
    pause = Pause(monkeypatch, cleaner, "cleaned_copy")
    pause.start(job)
    for i in range(10):  # rolls new segments while the copies are written
        _put(log, b"d", b"d%d" % i)
    assert read_all(log)[: len(before)] == before  # nothing changed yet
    pause.finish()
    assert job.complete() > 0
    after = read_all(log)
    assert _latest(after) == {**_latest(before), b"d": b"d9"}
    assert [r.value for r in after if r.key == b"d"] == [b"d%d" % i for i in range(10)]
    _assert_well_formed(log)
    assert manager.delete_due(NOW) == 0  # the replaced segments wait file.delete.delay.ms
    assert manager.delete_due(NOW + 60_000) > 0
    assert in_flight.read() == original_bytes  # a read in flight kept the old file
    manager.shutdown()


def test_a_truncation_during_a_cleaning_discards_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The offset map saw records that the truncation removed: swapping the copies
    in would lose the older values they superseded (Kafka aborts the cleaning)."""
    manager, log = _manager(tmp_path)
    _dirty_log(log)
    cut = 9  # rounds 0-2 stay, 3-5 go: their values superseded those of 0-2
    expected = [r for r in read_all(log) if r.offset < cut]
    (job,) = manager.cleaning_jobs(NOW)
    pause = Pause(monkeypatch, cleaner, "build_offset_map")
    pause.start(job)
    assert log.truncate_to(cut)  # a follower truncating to the leader's epoch end
    log.update_high_watermark(log.log_end_offset)
    pause.finish()
    assert job.complete() == 0
    assert read_all(log) == expected
    assert _latest(read_all(log)) == {b"a": b"a2", b"b": b"b2", b"c": b"c2"}
    assert manager.compact(NOW) >= 0  # the next run cleans again and drops the stale copies
    _assert_well_formed(log)
    assert _latest(read_all(log)) == {b"a": b"a2", b"b": b"b2", b"c": b"c2"}
    manager.shutdown()


def test_retention_racing_the_cleaner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Segments deleted while their cleaned copies were written are not brought back;
    the copies of the others are swapped in, each in the place of its own segment."""
    manager, log = _manager(tmp_path)
    _dirty_log(log)
    before = read_all(log)
    (job,) = manager.cleaning_jobs(NOW)
    pause = Pause(monkeypatch, cleaner, "build_offset_map")
    pause.start(job)
    start = log.segments[2].base_offset
    assert log.delete_records_before(start, NOW) == start
    assert log.segments[0].base_offset == start
    pause.finish()
    assert job.complete() > 0
    after = read_all(log)
    assert after[0].offset >= start
    assert _latest(after) == _latest(before)
    _assert_well_formed(log, leftovers=True)
    manager.compact(NOW)  # deletes the copies that lost their segment
    _assert_well_formed(log)
    manager.shutdown()


def test_a_directory_failure_during_a_cleaning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manager, log = _manager(tmp_path)
    _dirty_log(log)
    (job,) = manager.cleaning_jobs(NOW)
    pause = Pause(monkeypatch, cleaner, "cleaned_copy")
    pause.start(job)
    manager.handle_dir_failure(tmp_path, OSError(5, "Input/output error"))
    assert log.offline and log.segments == []
    pause.finish()
    assert job.complete() == 0
    assert manager.offline_dirs == {tmp_path} and manager.all_logs() == {}


def test_a_flush_never_claims_what_a_truncation_replaced(tmp_path: Path) -> None:
    log = open_log(tmp_path, LogConfig(segment_bytes=300, flush_interval_ms=1000))
    for i in range(10):
        _put(log, b"k", b"%d" % i)
    job = log.flush_job(NOW + 10**9)  # flush.ms passed: planned up to offset 10
    assert job is not None and job.offset == 10
    _put(log, b"k", b"appended during the fsync")
    thread = threading.Thread(target=job.run)
    thread.start()
    thread.join(WAIT_S)
    assert job.complete() == 1 and log.recovery_point == 10  # not the new end, 11
    job = log.flush_job(NOW + 2 * 10**9)
    assert job is not None
    assert log.truncate_to(4)
    for i in range(8):
        _put(log, b"k", b"new %d" % i)  # offsets 4..11, never fsynced
    job.run()
    assert job.complete() == 0 and log.recovery_point == 4
    retry = log.flush_job(NOW + 2 * 10**9)  # the next periodic flush covers the new records
    assert retry is not None and retry.offset == 12
    retry.run()
    assert retry.complete() == 1 and log.recovery_point == 12


def test_a_deletion_never_removes_a_new_segment_with_the_same_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Removed segments are renamed .deleted at once, so the storage thread's unlinks
    never hit the files of a segment created meanwhile with the same base offset."""
    log = open_log(tmp_path, LogConfig(segment_bytes=300, file_delete_delay_ms=0))
    for i in range(10):
        _put(log, b"k", b"old %d" % i)
    log.truncate_fully_and_start_at(0, NOW)  # the replica fetcher's restart from 0
    _put(log, b"k", b"first")
    job = DeletionJob(log.deletions.take_due(NOW), lambda d, e: pytest.fail(f"{d}: {e}"))
    pause = Pause(monkeypatch, deletion, "delete_now")
    pause.start(job)
    log.truncate_fully_and_start_at(0, NOW)  # again, while the thread deletes
    _put(log, b"k", b"second")
    pause.finish()
    job.complete()
    assert [r.value for r in read_all(log)] == [b"second"]
    _assert_well_formed(log)
    reopened = open_log(tmp_path, LogConfig(segment_bytes=300))
    assert [r.value for r in read_all(reopened)] == [b"second"]


def test_shutdown_stops_a_running_cleaning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    manager, log = _manager(tmp_path)
    _dirty_log(log)
    before = read_all(log)
    (job,) = manager.cleaning_jobs(NOW)
    pause = Pause(monkeypatch, cleaner, "build_offset_map")
    pause.start(job)
    manager.shutdown()  # does not wait for the whole cleaning: it stops at the next check
    pause.finish()
    assert not job.job.finished and job.job.cleaned == []
    again = LogManager([tmp_path], COMPACT, NOW)
    reopened = again.get_log(TP)
    assert reopened is not None and read_all(reopened) == before
    again.shutdown()
