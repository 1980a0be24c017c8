from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from strom.common.types import TopicPartition
from strom.protocol.errors import ErrorCode, KafkaError
from strom.storage.checkpoint import read_offsets
from strom.storage.config import LogConfig
from strom.storage.jobs import run_inline
from strom.storage.log_dirs import CLEAN_SHUTDOWN_FILE
from strom.storage.log_manager import LogManager

from .helpers import NOW, make_batch, read_all


def _manager(dirs: list[Path], config: LogConfig | None = None) -> LogManager:
    return LogManager(dirs, config or LogConfig(), NOW)


def test_create_spreads_over_dirs_and_reloads(tmp_path: Path) -> None:
    dirs = [tmp_path / "a", tmp_path / "b"]
    manager = _manager(dirs)
    tps = [TopicPartition("my.topic_x-y", p) for p in range(4)]
    for tp in tps:
        log = manager.create_log(tp, NOW)
        log.append_as_leader(make_batch(tp.partition + 1), 0, NOW)
        log.update_high_watermark(log.log_end_offset)
    assert manager.create_log(tps[0], NOW) is manager.get_log(tps[0])
    assert sorted(p.name for p in dirs[0].iterdir()) == ["my.topic_x-y-0", "my.topic_x-y-2"]
    manager.shutdown()
    assert (dirs[0] / CLEAN_SHUTDOWN_FILE).exists()
    recovery_points = read_offsets(dirs[1] / "recovery-point-offset-checkpoint")
    assert recovery_points == {tps[1]: 2, tps[3]: 4}
    text = (dirs[1] / "recovery-point-offset-checkpoint").read_text()
    assert text == "0\n2\nmy.topic_x-y 1 2\nmy.topic_x-y 3 4\n"

    manager = _manager(dirs)
    assert not (dirs[0] / CLEAN_SHUTDOWN_FILE).exists()
    assert set(manager.all_logs()) == set(tps)
    for tp in tps:
        loaded = manager.get_log(tp)
        assert loaded is not None
        assert loaded.log_end_offset == tp.partition + 1
        assert loaded.high_watermark == tp.partition + 1
        assert loaded.recovery_point == tp.partition + 1
    assert manager.get_log(TopicPartition("other", 0)) is None
    manager.shutdown()


def test_unclean_start_recovers(tmp_path: Path) -> None:
    manager = _manager([tmp_path])
    tp = TopicPartition("t", 0)
    log = manager.create_log(tp, NOW)
    log.append_as_leader(make_batch(3), 0, NOW)
    log.close()  # crash: no marker, no checkpoints
    segment = tmp_path / "t-0" / f"{0:020d}.log"
    with open(segment, "ab") as f:
        f.write(b"\x00" * 30)  # torn tail
    manager = _manager([tmp_path])
    log2 = manager.get_log(tp)
    assert log2 is not None and log2.log_end_offset == 3
    assert os.path.getsize(segment) == log2.active_segment.size
    manager.shutdown()


def test_delete_log(tmp_path: Path) -> None:
    manager = _manager([tmp_path])
    tp = TopicPartition("gone", 3)
    manager.create_log(tp, NOW).append_as_leader(make_batch(1), 0, NOW)
    manager.delete_log(tp, NOW)
    assert manager.get_log(tp) is None
    (doomed,) = tmp_path.iterdir()  # renamed, removed file.delete.delay.ms later
    assert doomed.name.startswith("gone-3.") and doomed.name.endswith("-delete")
    assert manager.delete_due(NOW + 59_999) == 0 and doomed.exists()
    assert manager.delete_due(NOW + 60_000) == 1
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "gone-3.abcdef-delete").mkdir()  # interrupted deletion
    (tmp_path / "not a partition").mkdir()
    manager = _manager([tmp_path])
    assert not (tmp_path / "gone-3.abcdef-delete").exists()
    assert manager.all_logs() == {}
    manager.shutdown()


def test_retention_and_flush_over_all_logs(tmp_path: Path) -> None:
    config = LogConfig(segment_bytes=200, retention_ms=1000, flush_interval_ms=500)
    manager = _manager([tmp_path], config)
    log = manager.create_log(TopicPartition("t", 0), NOW)
    for i in range(10):
        log.append_as_leader(make_batch(2, NOW + i), 0, NOW)
    log.update_high_watermark(log.log_end_offset)
    assert manager.flush_due(NOW) == 1  # rolled segments await a flush
    assert manager.flush_due(NOW + 100) == 0
    log.append_as_leader(make_batch(1, NOW + 20), 0, NOW)
    assert manager.flush_due(NOW + 600) == 1 and log.recovery_point == log.log_end_offset
    assert manager.cleanup(NOW + 100) == 0
    assert manager.cleanup(NOW + 5000) > 0
    assert log.log_start_offset > 0
    manager.shutdown()


def test_compaction_covers_every_compacted_log_and_only_those(tmp_path: Path) -> None:
    from strom.protocol.records import build_batch

    manager = _manager([tmp_path])
    compacted = manager.create_log(
        TopicPartition("c", 0), NOW, LogConfig(segment_bytes=300, cleanup_policy="delete,compact")
    )
    plain = manager.create_log(TopicPartition("d", 0), NOW, LogConfig(segment_bytes=300))
    for log in (compacted, plain):
        for round_ in range(8):
            batch = build_batch([(b"k", b"v%d" % round_, [], NOW), (b"j", b"w", [], NOW)])
            log.append_as_leader(batch, 0, NOW)
        log.update_high_watermark(log.log_end_offset)
    assert compacted.num_segments > 2 and plain.num_segments > 2
    plain_before = read_all(plain)
    assert manager.compact(NOW) > 0
    assert manager.compact(NOW) == 0  # nothing closed since the last cleaning
    active = compacted.segments[-1].base_offset
    closed = [r for r in read_all(compacted) if r.offset < active]
    assert sorted(r.key for r in closed) == sorted({r.key for r in closed})  # one per key
    assert read_all(plain) == plain_before
    manager.shutdown()


def test_offline_dir_gives_storage_error(tmp_path: Path) -> None:
    good, bad = tmp_path / "good", tmp_path / "bad"
    manager = _manager([good, bad])
    tp_good, tp_bad = TopicPartition("t", 0), TopicPartition("t", 1)
    manager.create_log(tp_good, NOW)
    log_bad = manager.create_log(tp_bad, NOW)
    log_bad.append_as_leader(make_batch(1), 0, NOW)
    # Replace the active segment file by a directory and break the open fd, so
    # IO fails even for root (chmod would not stop root).
    segment = log_bad.active_segment
    read_only = os.open(os.devnull, os.O_RDONLY)
    os.dup2(read_only, segment.file.fileno)
    os.close(read_only)
    with pytest.raises(KafkaError) as info:
        log_bad.append_as_leader(make_batch(1), 0, NOW)
    assert info.value.code == ErrorCode.KAFKA_STORAGE_ERROR
    assert manager.offline_dirs == {bad}
    with pytest.raises(KafkaError) as info:
        manager.get_log(tp_bad)
    assert info.value.code == ErrorCode.KAFKA_STORAGE_ERROR
    assert manager.offline_partitions() == {tp_bad}
    good_log = manager.get_log(tp_good)
    assert good_log is not None
    good_log.append_as_leader(make_batch(1), 0, NOW)
    assert manager.create_log(TopicPartition("t", 2), NOW).dir.parent == good
    manager.shutdown()
    assert (good / CLEAN_SHUTDOWN_FILE).exists() and not (bad / CLEAN_SHUTDOWN_FILE).exists()


def test_unreadable_dir_at_startup_goes_offline(tmp_path: Path) -> None:
    good = tmp_path / "good"
    manager = _manager([good])
    manager.create_log(TopicPartition("t", 0), NOW).append_as_leader(make_batch(2), 0, NOW)
    manager.shutdown()
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    segment = good / "t-0" / f"{0:020d}.log"
    segment.unlink()
    segment.mkdir()  # the segment file is now a directory: opening it fails
    manager = _manager([not_a_dir, good])
    assert manager.offline_dirs == {not_a_dir, good}
    with pytest.raises(KafkaError) as info:
        manager.create_log(TopicPartition("t", 5), NOW)
    assert info.value.code == ErrorCode.KAFKA_STORAGE_ERROR
    shutil.rmtree(segment)


def test_logs_survive_many_restarts(tmp_path: Path) -> None:
    tp = TopicPartition("t", 0)
    for round_number in range(3):
        manager = _manager([tmp_path], LogConfig(segment_bytes=300))
        log = manager.create_log(tp, NOW)
        for _ in range(5):
            log.append_as_leader(make_batch(2), round_number, NOW)
        assert [r.offset for r in read_all(log)] == list(range(10 * (round_number + 1)))
        manager.shutdown()


def test_requested_flushes_read_the_clock_only_when_a_log_asks(tmp_path: Path) -> None:
    manager = _manager([tmp_path], LogConfig(flush_interval_messages=3))
    tps = [TopicPartition("t", 0), TopicPartition("t", 1)]
    logs = [manager.create_log(tp, NOW) for tp in tps]
    reads: list[int] = []

    def clock() -> int:
        reads.append(NOW)
        return NOW

    logs[0].append_as_leader(make_batch(2), 0, NOW)
    logs[1].append_as_leader(make_batch(1), 0, NOW)
    assert manager.requested_flush_jobs(tps, clock) == [] and reads == []
    logs[0].append_as_leader(make_batch(1), 0, NOW)
    logs[1].append_as_leader(make_batch(2), 0, NOW)
    jobs = manager.requested_flush_jobs([*tps, TopicPartition("u", 0)], clock)
    assert len(jobs) == 2 and reads == [NOW]  # both logs asked; one read
    run_inline(jobs)
    assert [log.recovery_point for log in logs] == [3, 3]
    assert manager.requested_flush_jobs(tps, clock) == []
    manager.shutdown()
