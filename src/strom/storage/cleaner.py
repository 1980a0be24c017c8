"""Log compaction: keep the latest record per key in the closed segments of a log.

Kafka's cleaner, reduced to what strom needs for ``__consumer_offsets`` and
other ``cleanup.policy=compact`` logs:

1. Build the offset map: a 16-byte digest of each key -> offset of the key's
   latest record, over the whole log (closed segments and the active one).
2. Rewrite each closed segment that holds a superseded record: keep a record
   when it is the latest for its key; drop a tombstone (null value) once its
   segment's largest timestamp is older than ``delete.retention.ms``. Batches
   keep their base offset, epoch, producer fields and timestamps; kept records
   keep their offsets (offset deltas may leave gaps, as in Kafka) and a
   rewritten batch keeps its compression codec, as in Kafka. Batches left
   empty disappear; transactional, control and keyless batches are kept
   whole. The active segment is never touched.

Crash story: the cleaned bytes go to ``<base>.log.cleaned`` (fsynced); the old
segment's index files are deleted, then the ``.cleaned`` file is renamed over
the ``.log`` (atomic), then the segment is reopened and its indexes rebuilt.
A crash before the rename leaves a stray ``.cleaned`` file (deleted at load)
and possibly missing indexes (rebuilt at load); a crash after it leaves a
complete cleaned segment. Either way every kept record is intact.

Memory: segments are read one batch at a time and records are streamed (see
strom.protocol.record_stream), so a batch that decompresses to hundreds of MB
is cleaned in bounded memory; the offset map holds 16 bytes per distinct key
and the plan an index per kept record of the batches that change.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final

import crc32c

from strom.protocol.compression_stream import CHUNK_BYTES, stream_compressor
from strom.protocol.record_stream import stream_kept_records, stream_records
from strom.protocol.records import (
    ATTRIBUTES_OFFSET,
    BATCH_LENGTH_OFFSET,
    CRC_OFFSET,
    LOG_OVERHEAD,
    BatchHeader,
)
from strom.storage.log import PartitionLog
from strom.storage.segment import LogSegment

CLEANED_SUFFIX: Final = ".cleaned"
_HEADER: Final = struct.Struct(">qiibIhiqqqhii")
_INT32: Final = struct.Struct(">i")
_CRC: Final = struct.Struct(">I")


@dataclass(slots=True)
class CleanerCheckpoint:
    """Offsets below ``first_dirty_offset`` were cleaned with the map of that time."""

    first_dirty_offset: int = 0


@dataclass(frozen=True, slots=True)
class _Kept:
    """The records a batch keeps: their indexes and the offset of the last one."""

    indexes: frozenset[int]
    last_offset: int


def _batches(segment: LogSegment) -> Iterator[tuple[int, BatchHeader, bytes]]:
    """(position, header, bytes) of each batch, read one at a time."""
    for position, header in segment.iter_headers():
        yield position, header, os.pread(segment.file.fileno, header.size_in_bytes, position)


def _cleanable(header: BatchHeader) -> bool:
    return not header.is_control and not header.is_transactional


def build_offset_map(log: PartitionLog) -> dict[bytes, int]:
    """Digest of each key -> offset of the latest record with that key (Kafka's offset
    map holds a hash of each key too: keys of any size take 16 bytes)."""
    latest: dict[bytes, int] = {}
    for segment in log.segments:
        for _, header, raw in _batches(segment):
            if not _cleanable(header):
                continue
            for record in stream_records(raw, digest_keys=True):
                if record.key_digest is not None:
                    latest[record.key_digest] = record.offset
    return latest


def _kept(raw: bytes, latest: dict[bytes, int], drop_tombstones: bool) -> _Kept | None:
    """The records of a cleanable batch to keep; None if it keeps them all."""
    indexes: list[int] = []
    last_offset = -1
    count = 0
    for r in stream_records(raw, digest_keys=True):
        count += 1
        digest = r.key_digest
        if digest is None or (
            latest.get(digest) == r.offset and not (drop_tombstones and r.value_size < 0)
        ):
            indexes.append(r.batch_index)
            last_offset = r.offset
    return None if len(indexes) == count else _Kept(frozenset(indexes), last_offset)


def plan_segment(
    segment: LogSegment, latest: dict[bytes, int], drop_tombstones: bool
) -> dict[int, _Kept]:
    """Position -> records kept, for each batch of ``segment`` that loses records."""
    plan: dict[int, _Kept] = {}
    for position, header, raw in _batches(segment):
        if _cleanable(header):
            kept = _kept(raw, latest, drop_tombstones)
            if kept is not None:
                plan[position] = kept
    return plan


def _write_batch(out: BinaryIO, header: BatchHeader, raw: bytes, kept: _Kept) -> None:
    """Write ``header``'s batch with only the ``kept`` records, compressed as before,
    streaming: the records are never all in memory, whatever they decompress to."""
    start = out.tell()
    fixed = _HEADER.pack(
        header.base_offset,
        0,  # batch length, written at the end
        header.partition_leader_epoch,
        header.magic,
        0,  # CRC, written at the end
        header.attributes,
        kept.last_offset - header.base_offset,
        header.base_timestamp,
        header.max_timestamp,
        header.producer_id,
        header.producer_epoch,
        header.base_sequence,
        len(kept.indexes),
    )
    out.write(fixed)
    crc = crc32c.crc32c(fixed[ATTRIBUTES_OFFSET:])
    compressor = stream_compressor(header.compression)
    pending = bytearray()
    for piece in stream_kept_records(raw, kept.indexes):
        pending += piece
        if len(pending) < CHUNK_BYTES:
            continue
        data = compressor.compress(bytes(pending))
        pending.clear()
        out.write(data)
        crc = crc32c.crc32c(data, crc)
    data = compressor.compress(bytes(pending)) + compressor.finish()
    out.write(data)
    crc = crc32c.crc32c(data, crc)
    end = out.tell()
    out.seek(start + BATCH_LENGTH_OFFSET)
    out.write(_INT32.pack(end - start - LOG_OVERHEAD))
    out.seek(start + CRC_OFFSET)
    out.write(_CRC.pack(crc))
    out.seek(end)


def write_cleaned(segment: LogSegment, plan: dict[int, _Kept], path: Path) -> int:
    """Write ``segment`` cleaned by ``plan`` to ``path`` (fsynced); its size."""
    with open(path, "wb") as out:
        for position, header, raw in _batches(segment):
            kept = plan.get(position)
            if kept is None:
                out.write(raw)
            elif kept.indexes:
                _write_batch(out, header, raw, kept)
        out.flush()
        os.fsync(out.fileno())
        return out.tell()


def _replace_segment(log: PartitionLog, index: int, cleaned: Path, now_ms: int) -> None:
    old = log.segments[index]
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
        plan = plan_segment(segment, latest, drop_tombstones)
        if plan:
            size = segment.size
            cleaned = segment.log_path.with_name(segment.log_path.name + CLEANED_SUFFIX)
            new_size = write_cleaned(segment, plan, cleaned)
            _replace_segment(log, index, cleaned, now_ms)
            removed += size - new_size
    if checkpoint is not None:
        checkpoint.first_dirty_offset = dirty_end
    return removed
