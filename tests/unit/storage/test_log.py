from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from strom.protocol.append_origin import AppendOrigin
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.records import build_batch, build_control_batch, validate_batches
from strom.storage.config import LogConfig
from strom.storage.log import PartitionLog
from strom.storage.log_append import UnexpectedAppendOffsetError

from .helpers import NOW, make_batch, open_log, read_all, read_records

SMALL = LogConfig(segment_bytes=1024, index_interval_bytes=100)


def test_append_assigns_offsets_and_reads_back(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    info = log.append_as_leader(make_batch(3), leader_epoch=5, now_ms=NOW)
    assert (info.first_offset, info.last_offset, info.num_batches) == (0, 2, 1)
    assert info.log_append_time == -1 and info.max_timestamp == NOW + 2
    assert info.batches[0].partition_leader_epoch == 5
    info = log.append_as_leader(make_batch(2, tag="w"), leader_epoch=5, now_ms=NOW)
    assert (info.first_offset, info.last_offset) == (3, 4)
    assert log.log_end_offset == 5
    records = read_all(log)
    assert [r.offset for r in records] == [0, 1, 2, 3, 4]
    assert [r.value for r in records] == [b"v0", b"v1", b"v2", b"w0", b"w1"]
    assert log.leader_epoch_cache.entries == [(5, 0)]
    fetched = log.read(0, 1 << 20)
    assert all(validate_batches(s.read(), 1 << 20) for s in fetched.slices)
    log.close()


@pytest.mark.parametrize("timestamp_type", ["CreateTime", "LogAppendTime"])
@pytest.mark.parametrize("origin", [AppendOrigin.CLIENT, AppendOrigin.COORDINATOR])
def test_appended_headers_are_the_stored_headers(
    tmp_path: Path, timestamp_type: str, origin: AppendOrigin
) -> None:
    """AppendInfo.batches (made from the validated headers, not parsed again when only the
    offset and epoch change) equal the headers of the bytes written."""
    log = open_log(tmp_path, LogConfig(message_timestamp_type=timestamp_type))
    log.append_as_leader(make_batch(2), leader_epoch=3, now_ms=NOW, origin=origin)
    batches = make_batch(3) if origin == AppendOrigin.CLIENT else make_batch(3) + make_batch(1)
    info = log.append_as_leader(batches, leader_epoch=7, now_ms=NOW + 1, origin=origin)
    stored = [s.read() for s in log.read(2, 1 << 20).slices]
    assert list(info.batches) == validate_batches(b"".join(stored), 1 << 20)
    assert info.batches[0].base_offset == 2 and info.batches[0].partition_leader_epoch == 7
    log.close()


def test_read_from_mid_batch_offset_returns_containing_batch(tmp_path: Path) -> None:
    log = open_log(tmp_path, SMALL)
    for _ in range(20):
        log.append_as_leader(make_batch(5), 0, NOW)
    assert log.num_segments > 1
    for offset in range(100):
        records = read_records(log.read(offset, 1))
        assert records[0].offset <= offset <= records[-1].offset
        assert len(records) == 5
    log.close()


def test_read_limits(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    batch = make_batch(2)
    for _ in range(4):
        log.append_as_leader(batch, 0, NOW)
    assert log.read(0, len(batch) * 2 + 10).total_bytes == 2 * len(batch)
    assert log.read(0, 10, min_one_message=False).total_bytes == 0
    assert log.read(0, 10, min_one_message=True).total_bytes == len(batch)
    # max_offset (high watermark) excludes batches starting at or above it
    assert log.read(0, 1 << 20, max_offset=4).total_bytes == 2 * len(batch)
    assert log.read(4, 1 << 20, max_offset=4).total_bytes == 0
    assert log.read(8, 1 << 20).total_bytes == 0  # at the log end offset
    for bad in (-1, 9):
        with pytest.raises(KafkaError) as info:
            log.read(bad, 100)
        assert info.value.code == ErrorCode.OFFSET_OUT_OF_RANGE
    log.close()


def test_roll_by_size_and_index_lookup(tmp_path: Path) -> None:
    log = open_log(tmp_path, SMALL)
    batch = make_batch(3)
    for _ in range(60):
        log.append_as_leader(batch, 0, NOW)
    bases = [s.base_offset for s in log.segments]
    assert len(bases) > 3 and bases[0] == 0
    assert all(s.size <= SMALL.segment_bytes for s in log.segments)
    names = sorted(p.name for p in log.dir.iterdir() if p.suffix == ".log")
    assert names == [f"{b:020d}.log" for b in bases]
    assert any(s.offset_index.entries for s in log.segments)
    assert [r.offset for r in read_all(log)] == list(range(180))
    log.close()


def test_roll_by_age(tmp_path: Path) -> None:
    config = LogConfig(segment_ms=1000)
    log = open_log(tmp_path, config)
    log.append_as_leader(make_batch(1, NOW), 0, NOW)
    log.append_as_leader(make_batch(1, NOW + 500), 0, NOW + 500)
    assert log.num_segments == 1
    log.append_as_leader(make_batch(1, NOW + 1001), 0, NOW + 1001)
    assert [s.base_offset for s in log.segments] == [0, 2]
    assert log.roll_flush_pending
    assert log.maybe_flush(NOW + 1001) and log.recovery_point == 3
    log.close()


def test_truncate_to(tmp_path: Path) -> None:
    log = open_log(tmp_path, SMALL)
    for epoch in range(10):
        log.append_as_leader(make_batch(4), epoch, NOW)
    log.update_high_watermark(40)
    assert log.truncate_to(18)  # mid batch [16, 19]: the whole batch goes
    assert log.log_end_offset == 16 and log.high_watermark == 16
    assert [r.offset for r in read_all(log)] == list(range(16))
    assert log.leader_epoch_cache.latest_epoch == 3
    assert not log.truncate_to(100)
    info = log.append_as_leader(make_batch(1), 11, NOW)
    assert info.first_offset == 16
    assert log.truncate_to(0)
    assert log.log_end_offset == 0 and read_all(log) == []
    log.truncate_fully_and_start_at(500, NOW)
    assert (log.log_start_offset, log.log_end_offset) == (500, 500)
    assert log.append_as_leader(make_batch(1), 12, NOW).first_offset == 500
    log.close()


def test_append_as_follower(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    log.append_as_follower(
        build_batch([(None, b"a", [], NOW)], base_offset=0, partition_leader_epoch=2), NOW
    )
    log.append_as_follower(
        build_batch([(None, b"b", [], NOW)] * 2, base_offset=5, partition_leader_epoch=3), NOW
    )
    assert log.log_end_offset == 7
    assert log.leader_epoch_cache.entries == [(2, 0), (3, 5)]
    with pytest.raises(UnexpectedAppendOffsetError):
        log.append_as_follower(build_batch([(None, b"c", [], NOW)], base_offset=6), NOW)
    log.append_as_follower(build_control_batch(1, 0, True, 0, NOW, base_offset=7), NOW)
    assert log.end_offset_for_epoch(2) == (2, 5)
    assert log.end_offset_for_epoch(3) == (3, 8)
    assert log.end_offset_for_epoch(9) == (-1, -1)
    log.close()


def test_log_append_time(tmp_path: Path) -> None:
    log = open_log(tmp_path, LogConfig(message_timestamp_type="LogAppendTime"))
    info = log.append_as_leader(make_batch(3, timestamp=5), 0, NOW)
    assert info.log_append_time == NOW and info.max_timestamp == NOW
    assert {r.timestamp for r in read_all(log)} == {NOW}
    log.close()


def test_timestamp_difference_and_sizes(tmp_path: Path) -> None:
    log = open_log(
        tmp_path, LogConfig(message_timestamp_difference_max_ms=1000, max_message_bytes=200)
    )
    with pytest.raises(KafkaError) as info:
        log.append_as_leader(make_batch(1, timestamp=NOW - 5000), 0, NOW)
    assert info.value.code == ErrorCode.INVALID_TIMESTAMP
    with pytest.raises(KafkaError) as info:
        log.append_as_leader(make_batch(30), 0, NOW)
    assert info.value.code == ErrorCode.MESSAGE_TOO_LARGE
    assert log.log_end_offset == 0
    control = build_control_batch(1, 0, True, 0, NOW)
    with pytest.raises(KafkaError):
        log.append_as_leader(control, 0, NOW)
    assert log.append_as_leader(control, 0, NOW, origin=AppendOrigin.COORDINATOR).first_offset == 0
    log.close()


def test_before_append_hook_can_reject(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    seen: list[int] = []

    def hook(headers: object, first_offset: int) -> None:
        seen.append(first_offset)
        if len(seen) > 1:
            raise KafkaError(ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER)

    log.append_as_leader(make_batch(2), 0, NOW, before_append=hook)
    with pytest.raises(KafkaError):
        log.append_as_leader(make_batch(2), 0, NOW, before_append=hook)
    assert seen == [0, 2] and log.log_end_offset == 2
    log.close()


def test_flush_messages_policy(tmp_path: Path) -> None:
    log = open_log(tmp_path, LogConfig(flush_interval_messages=5, flush_interval_ms=1000))
    log.append_as_leader(make_batch(3), 0, NOW)
    assert log.recovery_point == 0
    log.append_as_leader(make_batch(3), 0, NOW)
    # flush.messages reached: a flush is requested (run in a storage thread, awaited by
    # the produce path), not done on the caller's thread
    assert log.flush_requested and log.recovery_point == 0
    assert log.maybe_flush(NOW) and log.recovery_point == 6 and not log.flush_requested
    log.append_as_leader(make_batch(1), 0, NOW)
    assert not log.maybe_flush(NOW + 999)
    assert log.maybe_flush(NOW + 1000) and log.recovery_point == 7
    log.close()


def test_retention_by_time(tmp_path: Path) -> None:
    config = LogConfig(segment_bytes=200, retention_ms=10_000)
    log = open_log(tmp_path, config)
    for i in range(12):
        log.append_as_leader(make_batch(2, NOW + i * 1000), 0, NOW)
    log.update_high_watermark(log.log_end_offset)
    segments_before = log.num_segments
    assert segments_before > 3
    assert log.delete_expired_segments(NOW + 5_000) == 0
    deleted = log.delete_expired_segments(NOW + 16_000)
    assert 0 < deleted < segments_before
    assert log.log_start_offset == log.segments[0].base_offset > 0
    assert all(s.largest_timestamp >= NOW + 6_000 for s in log.segments)
    # everything expired: the active segment goes too, after a roll
    assert log.delete_expired_segments(NOW + 100_000) > 0
    assert log.num_segments == 1 and log.active_segment.size == 0
    assert log.log_start_offset == log.log_end_offset == 24
    with pytest.raises(KafkaError):
        log.read(0, 100)
    log.close()


def test_retention_by_size_respects_high_watermark(tmp_path: Path) -> None:
    config = LogConfig(segment_bytes=400, retention_bytes=800)
    log = open_log(tmp_path, config)
    for _ in range(20):
        log.append_as_leader(make_batch(2), 0, NOW)
    assert log.delete_expired_segments(NOW) == 0  # high watermark still 0
    log.update_high_watermark(log.log_end_offset)
    assert log.delete_expired_segments(NOW) > 0
    assert log.size_in_bytes >= 800 - 400 and log.size_in_bytes - log.segments[0].size < 800
    assert [r.offset for r in read_all(log)] == list(range(log.log_start_offset, 40))
    log.close()


def test_delete_records(tmp_path: Path) -> None:
    log = open_log(tmp_path, LogConfig(segment_bytes=400))
    for epoch in range(20):
        log.append_as_leader(make_batch(2), epoch, NOW)
    with pytest.raises(KafkaError) as info:
        log.delete_records_before(5, NOW)
    assert info.value.code == ErrorCode.OFFSET_OUT_OF_RANGE
    log.update_high_watermark(40)
    segments_before = log.num_segments
    assert log.delete_records_before(15, NOW) == 15
    assert log.log_start_offset == 15 and log.num_segments < segments_before
    assert log.segments[0].base_offset <= 15
    assert read_records(log.read(15, 1000))[0].offset == 14  # the batch holding 15
    assert log.earliest().offset == 15
    assert log.leader_epoch_cache.entries[0] == (7, 15)
    with pytest.raises(KafkaError):
        log.read(14, 100)
    assert log.delete_records_before(10, NOW) == 15
    log.close()
    reopened = open_log(tmp_path, LogConfig(segment_bytes=400), log_start_offset=15)
    assert reopened.log_start_offset == 15
    reopened.close()


def test_fetch_offset_by_timestamp(tmp_path: Path) -> None:
    log = open_log(tmp_path, LogConfig(segment_bytes=500, index_interval_bytes=50))
    for i in range(20):  # batch i: offsets 3i..3i+2, timestamps NOW+100i+0..2
        log.append_as_leader(make_batch(3, NOW + 100 * i), i, NOW)
    found = log.fetch_offset_by_timestamp(NOW + 100 * 7 + 1)
    assert found is not None and (found.offset, found.timestamp) == (22, NOW + 701)
    found = log.fetch_offset_by_timestamp(NOW + 703)
    assert found is not None and (found.offset, found.timestamp) == (24, NOW + 800)
    found = log.fetch_offset_by_timestamp(0)
    assert found is not None and found.offset == 0
    assert log.fetch_offset_by_timestamp(NOW + 10_000) is None
    assert log.fetch_offset_by_timestamp(-2) == log.earliest()
    latest = log.fetch_offset_by_timestamp(-1)
    assert latest is not None and latest.offset == 60 and latest.leader_epoch == 19
    maximum = log.fetch_offset_by_timestamp(-3)
    assert maximum is not None and (maximum.offset, maximum.timestamp) == (59, NOW + 1902)
    log.close()


def test_max_timestamp_not_last(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    log.append_as_leader(build_batch([(None, b"a", [], NOW), (None, b"b", [], NOW + 50)]), 0, NOW)
    log.append_as_leader(make_batch(2, NOW + 10), 0, NOW)
    maximum = log.max_timestamp_offset()
    assert maximum is not None and (maximum.offset, maximum.timestamp) == (1, NOW + 50)
    log.close()


def test_reopen_clean_keeps_everything(tmp_path: Path) -> None:
    log = open_log(tmp_path, SMALL)
    for epoch in range(15):
        log.append_as_leader(make_batch(3), epoch // 5, NOW)
    log.flush()
    log.close()
    log = open_log(tmp_path, SMALL, recovery_point=45)
    assert log.log_end_offset == 45 and log.recovery_point == 45
    assert [r.offset for r in read_all(log)] == list(range(45))
    assert log.leader_epoch_cache.entries == [(0, 0), (1, 15), (2, 30)]
    assert log.append_as_leader(make_batch(1), 2, NOW).first_offset == 45
    log.close()


def test_missing_and_corrupt_indexes_are_rebuilt(tmp_path: Path) -> None:
    log = open_log(tmp_path, SMALL)
    for _ in range(30):
        log.append_as_leader(make_batch(3), 0, NOW)
    entries = [(s.offset_index.entries, s.time_index.entries) for s in log.segments]
    log.close()
    segment_dir = tmp_path / "topic-0"
    indexes = sorted(segment_dir.glob("*.index"))
    indexes[0].unlink()
    with open(indexes[1], "ab") as f:
        f.write(b"\x01\x02\x03")  # torn entry
    time_indexes = sorted(segment_dir.glob("*.timeindex"))
    time_indexes[2].write_bytes(time_indexes[2].read_bytes()[::-1])  # garbage
    log = open_log(tmp_path, SMALL, recovery_point=90)
    assert [(s.offset_index.entries, s.time_index.entries) for s in log.segments] == entries
    assert [r.offset for r in read_all(log)] == list(range(90))
    for offset in range(90):
        assert read_records(log.read(offset, 1))[0].offset <= offset
    log.close()


def _append_batches(tmp_path: Path, count: int) -> list[int]:
    """Append ``count`` batches, close uncleanly; return batch start positions."""
    log = open_log(tmp_path)
    positions = []
    for i in range(count):
        positions.append(log.active_segment.size)
        log.append_as_leader(make_batch(2, NOW + i), i % 3, NOW)
    log.close()
    return positions


def _check_recovered(tmp_path: Path, batches: int) -> None:
    log = open_log(tmp_path, clean=False)
    assert log.log_end_offset == 2 * batches
    assert [r.offset for r in read_all(log)] == list(range(2 * batches))
    assert log.append_as_leader(make_batch(1), 5, NOW).first_offset == 2 * batches
    assert [r.offset for r in read_all(log)] == list(range(2 * batches + 1))
    log.close()


def test_torn_write_at_every_byte_of_last_batch(tmp_path: Path) -> None:
    positions = _append_batches(tmp_path, 4)
    log_file = tmp_path / "topic-0" / f"{0:020d}.log"
    original = log_file.read_bytes()
    for cut in range(positions[-1], len(original)):
        for name in os.listdir(log_file.parent):
            os.unlink(log_file.parent / name)
        log_file.write_bytes(original[:cut])
        _check_recovered(tmp_path, 3)


def test_corrupt_byte_in_last_batch(tmp_path: Path) -> None:
    positions = _append_batches(tmp_path, 4)
    log_file = tmp_path / "topic-0" / f"{0:020d}.log"
    original = log_file.read_bytes()
    start = positions[-1]
    # The base offset (0-7) and leader epoch (12-15) are outside the CRC, as in
    # Kafka; a smaller base offset is still caught by the offset order check.
    covered = [start + i for i in range(8, 12)] + list(range(start + 16, len(original)))
    for i in covered:
        corrupt = bytearray(original)
        corrupt[i] ^= 0x40
        for name in os.listdir(log_file.parent):
            os.unlink(log_file.parent / name)
        log_file.write_bytes(bytes(corrupt))
        _check_recovered(tmp_path, 3)


def test_unclean_recovery_truncates_later_segments(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = open_log(tmp_path, SMALL)
    for _ in range(60):
        log.append_as_leader(make_batch(3), 0, NOW)
    second = log.segments[1]
    assert log.num_segments > 3
    log.close()
    with open(second.log_path, "r+b") as f:
        f.seek(70)
        f.write(b"\xff")
    with caplog.at_level(logging.WARNING, logger="strom.storage.log"):
        log = open_log(tmp_path, SMALL, clean=False)
    assert log.num_segments == 2 and log.log_end_offset == second.base_offset
    assert [r.offset for r in read_all(log)] == list(range(second.base_offset))
    log.close()
    # said as Kafka says "Found invalid messages in log segment ..."
    assert caplog.messages == [
        f"recovery of topic-0 cut {second.size} bytes of a torn or corrupt tail from "
        f"segment {second.base_offset} at byte 0 (next offset {second.base_offset})"
    ]


def _dead_disk(tmp_path: Path, flags: int) -> tuple[PartitionLog, list[Path]]:
    """A log of one batch whose segment file descriptor now opens /dev/null with
    ``flags`` (O_RDONLY: EBADF on write; O_WRONLY: on read), and its failed dirs."""
    failures: list[Path] = []
    log = open_log(tmp_path)
    log.on_dir_failure = lambda path, exc: failures.append(path)
    log.append_as_leader(make_batch(1), 0, NOW)
    dead = os.open(os.devnull, flags)
    os.dup2(dead, log.active_segment.file.fileno)
    os.close(dead)
    return log, failures


def test_os_error_is_kafka_storage_error(tmp_path: Path) -> None:
    log, failures = _dead_disk(tmp_path, os.O_RDONLY)
    with pytest.raises(KafkaError) as info:
        log.append_as_leader(make_batch(1), 0, NOW)
    assert info.value.code == ErrorCode.KAFKA_STORAGE_ERROR
    assert failures == [tmp_path] and log.offline
    with pytest.raises(KafkaError) as info:
        log.read(0, 100)
    assert info.value.code == ErrorCode.KAFKA_STORAGE_ERROR


def test_os_error_on_read_takes_the_log_offline(tmp_path: Path) -> None:
    log, failures = _dead_disk(tmp_path, os.O_WRONLY)
    with pytest.raises(KafkaError) as info:
        log.read(0, 100)
    assert info.value.code == ErrorCode.KAFKA_STORAGE_ERROR
    assert failures == [tmp_path] and log.offline
    with pytest.raises(KafkaError, match="offline") as info:
        log.read(0, 100)
    assert info.value.code == ErrorCode.KAFKA_STORAGE_ERROR


def test_slices_survive_retention_of_their_segment(tmp_path: Path) -> None:
    log = open_log(tmp_path, LogConfig(segment_bytes=200, retention_ms=1))
    for _ in range(6):
        log.append_as_leader(make_batch(2), 0, NOW)
    first = log.read(0, 1 << 20)
    expected = first.slices[0].read()
    log.update_high_watermark(log.log_end_offset)
    assert log.delete_expired_segments(NOW + 10_000) > 0
    assert not (tmp_path / "topic-0" / f"{0:020d}.log").exists()
    assert first.slices[0].read() == expected  # unlinked, still readable
    log.close()
