"""Log compaction: keep the latest record per key in the closed segments of a log.

Kafka's cleaner, reduced to what strom needs for ``__consumer_offsets`` and
other ``cleanup.policy=compact`` logs:

1. Build the offset map: key -> offset of the key's latest record, over the
   whole log (closed segments and the active one).
2. Rewrite each closed segment that holds a superseded record: keep a record
   when it is the latest for its key; drop a tombstone (null value) once its
   segment's largest timestamp is older than ``delete.retention.ms``. Batches
   keep their base offset, epoch, producer fields and timestamps; kept records
   keep their offsets (offset deltas may leave gaps, as in Kafka). Batches
   left empty disappear; transactional, control and keyless batches are kept
   whole. The active segment is never touched.

Crash story: the cleaned bytes go to ``<base>.log.cleaned`` (fsynced); the old
segment's index files are deleted, then the ``.cleaned`` file is renamed over
the ``.log`` (atomic), then the segment is reopened and its indexes rebuilt.
A crash before the rename leaves a stray ``.cleaned`` file (deleted at load)
and possibly missing indexes (rebuilt at load); a crash after it leaves a
complete cleaned segment. Either way every kept record is intact.

The cleaner reads and rewrites whole segments in memory: fine for coordinator
topics (offsets.topic.segment.bytes), a limit for huge compacted user topics.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from typing import Final

import crc32c

from strom.protocol.record_decoder import decode_batch
from strom.protocol.records import (
    ATTRIBUTES_OFFSET,
    BATCH_HEADER_SIZE,
    COMPRESSION_MASK,
    LOG_OVERHEAD,
    BatchHeader,
    Record,
    iter_batches,
    write_varint,
)
from strom.storage.log import PartitionLog
from strom.storage.segment import LogSegment

CLEANED_SUFFIX: Final = ".cleaned"
_HEADER: Final = struct.Struct(">qiibIhiqqqhii")
_CRC: Final = struct.Struct(">I")
_CRC_OFFSET: Final = 17


@dataclass(slots=True)
class CleanerCheckpoint:
    """Offsets below ``first_dirty_offset`` were cleaned with the map of that time."""

    first_dirty_offset: int = 0


def _segment_bytes(segment: LogSegment) -> bytes:
    return os.pread(segment.file.fileno, segment.size, 0)


def _cleanable(header: BatchHeader) -> bool:
    return not header.is_control and not header.is_transactional


def build_offset_map(log: PartitionLog) -> dict[bytes, int]:
    """key -> offset of the latest record with that key."""
    latest: dict[bytes, int] = {}
    for segment in log.segments:
        for header, raw in iter_batches(_segment_bytes(segment)):
            if not _cleanable(header):
                continue
            for record in decode_batch(raw)[1]:
                if record.key is not None:
                    latest[record.key] = record.offset
    return latest


def _encode_records(header: BatchHeader, records: list[Record]) -> bytes:
    body = bytearray()
    for record in records:
        one = bytearray(b"\x00")
        write_varint(one, record.timestamp - header.base_timestamp)
        write_varint(one, record.offset - header.base_offset)
        for field in (record.key, record.value):
            if field is None:
                write_varint(one, -1)
            else:
                write_varint(one, len(field))
                one += field
        write_varint(one, len(record.headers))
        for key, value in record.headers:
            encoded = key.encode()
            write_varint(one, len(encoded))
            one += encoded
            if value is None:
                write_varint(one, -1)
            else:
                write_varint(one, len(value))
                one += value
        write_varint(body, len(one))
        body += one
    buf = bytearray(BATCH_HEADER_SIZE) + body
    _HEADER.pack_into(
        buf,
        0,
        header.base_offset,
        len(buf) - LOG_OVERHEAD,
        header.partition_leader_epoch,
        header.magic,
        0,
        header.attributes & ~COMPRESSION_MASK,
        records[-1].offset - header.base_offset,
        header.base_timestamp,
        header.max_timestamp,
        header.producer_id,
        header.producer_epoch,
        header.base_sequence,
        len(records),
    )
    _CRC.pack_into(buf, _CRC_OFFSET, crc32c.crc32c(memoryview(buf)[ATTRIBUTES_OFFSET:]))
    return bytes(buf)


def clean_segment_bytes(
    data: bytes, latest: dict[bytes, int], drop_tombstones: bool
) -> bytes | None:
    """The segment's batches with superseded records removed; None if nothing changes."""
    out = bytearray()
    changed = False
    for header, raw in iter_batches(data):
        if not _cleanable(header):
            out += raw
            continue
        records = decode_batch(raw)[1]
        kept = [
            r
            for r in records
            if r.key is None
            or (latest.get(r.key) == r.offset and not (drop_tombstones and r.value is None))
        ]
        if len(kept) == len(records):
            out += raw
        else:
            changed = True
            if kept:
                out += _encode_records(header, kept)
    return bytes(out) if changed else None


def _replace_segment(log: PartitionLog, index: int, data: bytes, now_ms: int) -> None:
    old = log.segments[index]
    cleaned = old.log_path.with_name(old.log_path.name + CLEANED_SUFFIX)
    with open(cleaned, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    old.offset_index.delete()
    old.time_index.delete()
    os.replace(cleaned, old.log_path)
    fresh = LogSegment(
        log.dir,
        old.base_offset,
        index_interval_bytes=log.config.index_interval_bytes,
        segment_index_bytes=log.config.segment_index_bytes,
        now_ms=now_ms,
    )
    fresh.recover()
    fresh.on_become_inactive()
    fresh.flush()
    log.segments[index] = fresh


def clean_log(
    log: PartitionLog,
    now_ms: int,
    delete_retention_ms: int,
    checkpoint: CleanerCheckpoint | None = None,
    min_compaction_lag_ms: int = 0,
) -> int:
    """Compact the closed segments of ``log``; the number of bytes removed.

    Segments holding records younger than ``min_compaction_lag_ms`` and all after them
    are left alone (Kafka's first uncleanable offset). With a checkpoint, nothing is
    done unless the cleanable part grew since the last run (Kafka's dirty section);
    OSError propagates to the caller.
    """
    closed = log.segments[:-1]
    if min_compaction_lag_ms > 0:  # only dirty segments are held back, as in Kafka
        first_dirty = checkpoint.first_dirty_offset if checkpoint is not None else 0
        for i, segment in enumerate(closed):
            young = segment.largest_timestamp > now_ms - min_compaction_lag_ms
            if young and segment.base_offset >= first_dirty:
                closed = closed[:i]
                break
    if not closed:
        return 0
    dirty_end = log.segments[len(closed)].base_offset
    if checkpoint is not None and dirty_end <= checkpoint.first_dirty_offset:
        return 0
    latest = build_offset_map(log)
    removed = 0
    for index, segment in enumerate(closed):
        drop_tombstones = segment.largest_timestamp < now_ms - delete_retention_ms
        data = _segment_bytes(segment)
        cleaned = clean_segment_bytes(data, latest, drop_tombstones)
        if cleaned is not None:
            _replace_segment(log, index, cleaned, now_ms)
            removed += len(data) - len(cleaned)
    if checkpoint is not None:
        checkpoint.first_dirty_offset = dirty_end
    return removed
