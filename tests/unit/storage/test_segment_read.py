"""LogSegment.read against its definition: the batch holding the start offset found with
the offset index and a scan of the headers (translate_offset, iter_headers), then whole
batches up to the byte and offset limits. read() answers the file's last batch from
what the segment remembers of it, and scans without BatchHeader objects otherwise; both
must give the very slices the definition gives, in every state of the segment."""

from __future__ import annotations

import itertools
from pathlib import Path

from strom.protocol.records import build_batch
from strom.storage.config import LogConfig
from strom.storage.log import PartitionLog
from strom.storage.segment import LogSegment
from strom.storage.segment_files import FileSlice

from .helpers import NOW, make_batch, open_log

MAX_BYTES = (0, 1, 60, 100, 150, 300, 1 << 20)


def _reference(
    segment: LogSegment, start_offset: int, max_bytes: int, max_offset: int, min_one: bool
) -> tuple[int, int] | None:
    found = segment.translate_offset(start_offset)
    if found is None:
        return None
    start, _ = found
    length = 0
    for _, header in segment.iter_headers(start):
        size = header.size_in_bytes
        if header.base_offset >= max_offset:
            break
        if length + size > max_bytes:
            if length == 0 and min_one:
                length = size
            break
        length += size
    return start, length


def _as_pair(found: FileSlice | None) -> tuple[int, int] | None:
    return None if found is None else (found.position, found.length)


def _check_every_read(log: PartitionLog) -> None:
    end = log.log_end_offset
    for segment in log.segments:
        for start, max_bytes, max_offset, min_one in itertools.product(
            range(segment.base_offset, end + 2),
            MAX_BYTES,
            (0, end // 2, end, end + 5),
            (True, False),
        ):
            want = _reference(segment, start, max_bytes, max_offset, min_one)
            got = _as_pair(segment.read(start, max_bytes, max_offset, min_one))
            assert got == want, (segment, start, max_bytes, max_offset, min_one)


def _leader_log(tmp_path: Path) -> PartitionLog:
    log = open_log(tmp_path, LogConfig(index_interval_bytes=100, segment_bytes=600))
    for count in (1, 3, 1, 2, 5, 1, 1, 4, 1, 2, 1, 1):
        log.append_as_leader(make_batch(count), 0, NOW)
    return log


def test_reads_of_leader_appends(tmp_path: Path) -> None:
    log = _leader_log(tmp_path)
    assert log.num_segments > 1
    assert log.active_segment.last_batch_position >= 0  # the last batch is known
    _check_every_read(log)


def test_reads_of_batches_with_offset_gaps(tmp_path: Path) -> None:
    log = open_log(tmp_path, LogConfig(index_interval_bytes=100))
    base = 0
    for count, gap in ((2, 0), (1, 3), (3, 1), (1, 7), (2, 2)):
        base += gap
        records = [(None, b"v", (), NOW + i) for i in range(count)]
        log.append_as_follower(build_batch(records, base_offset=base), NOW)
        base += count
    _check_every_read(log)


def test_reads_after_truncation_reopen_and_recovery(tmp_path: Path) -> None:
    log = _leader_log(tmp_path)
    log.truncate_to(log.log_end_offset - 3)
    _check_every_read(log)
    log.append_as_leader(make_batch(2), 0, NOW)
    _check_every_read(log)
    log.close()
    for clean in (True, False):
        log = open_log(
            tmp_path, LogConfig(index_interval_bytes=100, segment_bytes=600), clean=clean
        )
        assert log.active_segment.last_batch_position >= 0
        _check_every_read(log)
        log.append_as_leader(make_batch(1), 0, NOW)
        _check_every_read(log)
        log.close()


def test_an_empty_segment_and_an_unknown_tail(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    segment = log.active_segment
    assert segment.read(0, 100, 10, True) is None
    log.append_as_leader(make_batch(2), 0, NOW)
    segment.last_batch_position = -1  # not known: appends keep it unknown, reads scan
    log.append_as_leader(make_batch(1), 0, NOW)
    assert segment.last_batch_position == -1
    _check_every_read(log)
