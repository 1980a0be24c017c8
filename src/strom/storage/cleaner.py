"""Log compaction: keep the latest record per key in the closed segments of a log.

Kafka's cleaner, reduced to what strom needs for ``__consumer_offsets`` and
other ``cleanup.policy=compact`` logs. Which logs, and which segments, is
decided on the loop (see strom.storage.cleanable); a :class:`CleaningJob`
then does the IO in the cleaner thread and swaps the result in on the loop:

1. Offset map (cleaner thread): a 16-byte digest of each key -> offset of the
   key's latest record, over the records from the first dirty offset up to the
   last stable offset (committed records only: a record that a truncation may
   still remove never supersedes another). Kafka ends the map at the first
   uncleanable offset; strom also maps the committed records after it (the
   active segment's, those held back by min.compaction.lag.ms), so a record
   superseded there goes at the next cleaning instead of a later one.
2. Cleaned copies (cleaner thread): each closed segment below the first
   uncleanable offset that holds a superseded record is rewritten to
   ``<base>.log.cleaned`` with its indexes (``.index.cleaned``, ...), fsynced.
   A record stays when no later record has its key; a tombstone (null value)
   goes once its segment's largest timestamp is older than
   ``delete.retention.ms``. Batches keep their base offset, epoch, producer
   fields and timestamps; kept records keep their offsets (offset deltas may
   leave gaps, as in Kafka) and a rewritten batch keeps its compression codec.
   Batches left empty disappear; transactional, control and keyless batches
   are kept whole. The active segment is never rewritten.
3. Swap (loop): a cleaned copy replaces its segment only if the job is not
   stale (no truncation, the log online: Kafka aborts cleanings on truncation)
   and the segment is still in the log (retention may have deleted it
   meanwhile); stale copies are deleted by the cleaner thread later. The old
   segment goes to the delayed deletion (``file.delete.delay.ms``); reads in
   flight keep its open file.

Crash story: the swap renames the old indexes to ``.deleted``, renames the
cleaned .log over the old one (atomic), then renames the cleaned indexes into
place. A crash at any point leaves either the old or the cleaned .log, whole,
with its own indexes or none (rebuilt at load); ``.cleaned`` and ``.deleted``
leftovers are deleted at load. Every kept record is intact.

Memory: segments are read one batch at a time and records are streamed (see
strom.protocol.record_stream), so a batch that decompresses to hundreds of MB
is cleaned in bounded memory; the offset map holds 16 bytes per distinct key
and the plan an index per kept record of the batches that change.
"""

from __future__ import annotations

import contextlib
import logging
import os
import struct
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO, Final

from strom.common.crc import crc32c
from strom.protocol.compression_stream import CHUNK_BYTES, stream_compressor
from strom.protocol.errors import KafkaError
from strom.protocol.record_stream import stream_kept_records, stream_records
from strom.protocol.records import (
    ATTRIBUTES_OFFSET,
    BATCH_LENGTH_OFFSET,
    CRC_OFFSET,
    LOG_OVERHEAD,
    BatchHeader,
)
from strom.storage.cleanable import (
    CleanerCheckpoint,
    LogToClean,
    log_to_clean,
    segments_overlapping,
)
from strom.storage.deletion import DELETED_SUFFIX
from strom.storage.log import PartitionLog
from strom.storage.segment import LogSegment
from strom.storage.segment_files import LOG_SUFFIX, filename_prefix

__all__ = ["CleanerCheckpoint", "CleaningJob", "clean_log", "plan_cleaning"]

CLEANED_SUFFIX: Final = ".cleaned"
_HEADER: Final = struct.Struct(">qiibIhiqqqhii")
_INT32: Final = struct.Struct(">i")
_CRC: Final = struct.Struct(">I")

logger = logging.getLogger(__name__)


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


def build_offset_map(
    segments: Sequence[LogSegment], upper_offset: int, stop: Callable[[], bool] = lambda: False
) -> dict[bytes, int]:
    """Digest of each key -> offset of the latest record with that key, over the
    cleanable batches of ``segments`` below ``upper_offset`` (Kafka's offset map holds
    a hash of each key too: keys of any size take 16 bytes). ``stop`` is polled
    between segments (an aborted cleaning)."""
    latest: dict[bytes, int] = {}
    for segment in segments:
        if stop():
            break
        for position, header in segment.iter_headers():
            if header.last_offset >= upper_offset:
                return latest
            if not _cleanable(header):
                continue
            raw = os.pread(segment.file.fileno, header.size_in_bytes, position)
            for record in stream_records(raw, digest_keys=True):
                if record.key_digest is not None:
                    latest[record.key_digest] = record.offset
    return latest


def _kept(raw: bytes, latest: dict[bytes, int], drop_tombstones: bool) -> _Kept | None:
    """The records of a cleanable batch to keep; None if it keeps them all (Kafka's
    shouldRetainRecord: no later record with the key, and not an expired tombstone)."""
    indexes: list[int] = []
    last_offset = -1
    count = 0
    for r in stream_records(raw, digest_keys=True):
        count += 1
        digest = r.key_digest
        if digest is None or (
            r.offset >= latest.get(digest, -1) and not (drop_tombstones and r.value_size < 0)
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


def write_cleaned(segment: LogSegment, plan: dict[int, _Kept], out: BinaryIO) -> None:
    """Write ``segment`` cleaned by ``plan`` to ``out``."""
    for position, header, raw in _batches(segment):
        kept = plan.get(position)
        if kept is None:
            out.write(raw)
        elif kept.indexes:
            _write_batch(out, header, raw, kept)


def _discard(segment: LogSegment) -> None:
    """Delete a cleaned copy that was not swapped in (cleaner thread)."""
    segment.delete()


def cleaned_copy(
    segment: LogSegment, plan: dict[int, _Kept], segment_index_bytes: int, now_ms: int
) -> LogSegment:
    """``segment`` cleaned by ``plan`` as a new segment under the ``.cleaned`` suffix:
    written, indexes built, fsynced, with the old file's modification time (Kafka
    keeps it: retention falls back to it for records without timestamps)."""
    prefix = segment.dir / filename_prefix(segment.base_offset)
    for name in (LOG_SUFFIX, ".index", ".timeindex"):  # leftovers of a stale copy
        prefix.with_name(prefix.name + name + CLEANED_SUFFIX).unlink(missing_ok=True)
    cleaned = LogSegment(
        segment.dir,
        segment.base_offset,
        index_interval_bytes=segment.index_interval_bytes,
        segment_index_bytes=segment_index_bytes,
        now_ms=now_ms,
        suffix=CLEANED_SUFFIX,
    )
    try:
        with open(cleaned.log_path, "r+b") as out:
            write_cleaned(segment, plan, out)
        cleaned.recover()
        cleaned.on_become_inactive()
        cleaned.flush()
        mtime_ns = os.fstat(segment.file.fileno).st_mtime_ns
        os.utime(cleaned.log_path, ns=(mtime_ns, mtime_ns))
    except BaseException:
        with contextlib.suppress(OSError):
            _discard(cleaned)
        raise
    return cleaned


class CleaningJob:
    """One cleaning of one log: planned on the loop, IO in the cleaner thread
    (:meth:`run`), swap on the loop (:meth:`complete`)."""

    def __init__(
        self,
        log: PartitionLog,
        to_clean: LogToClean,
        checkpoint: CleanerCheckpoint | None,
        now_ms: int,
        *,
        delete_retention_ms: int | None = None,
        trash: Sequence[LogSegment] = (),
    ) -> None:
        self.log = log
        self.to_clean = to_clean
        self.checkpoint = checkpoint
        self.now_ms = now_ms
        self.generation = log.truncations
        self.delete_retention_ms = (
            log.config.delete_retention_ms if delete_retention_ms is None else delete_retention_ms
        )
        self.segment_index_bytes = log.config.segment_index_bytes
        end = to_clean.first_uncleanable_offset
        self.segments = [s for s in log.segments[:-1] if s.base_offset < end]
        self.map_upper_offset = log.last_stable_offset
        self.map_segments = segments_overlapping(
            log, to_clean.first_dirty_offset, self.map_upper_offset
        )
        self.trash = list(trash)  # stale cleaned copies to delete first
        self.cleaned: list[tuple[LogSegment, LogSegment]] = []  # (old, cleaned copy)
        self.discarded: list[LogSegment] = []  # copies not swapped in: for the next job
        self.finished = False
        self.error: OSError | KafkaError | None = None
        self.stop: threading.Event | None = None  # set: the broker shuts down

    @property
    def stale(self) -> bool:
        """The log was truncated or went offline since the job was planned (or the
        cleaner stops): the thread stops early and nothing is swapped in."""
        stopping = self.stop is not None and self.stop.is_set()
        return stopping or self.log.offline or self.log.truncations != self.generation

    def run(self) -> None:
        """Cleaner thread: the offset map and the cleaned copies. Reads only closed
        segments (and the active one below the last stable offset), writes only
        ``.cleaned`` files; stops early when the job goes stale."""
        try:
            while self.trash:
                with contextlib.suppress(OSError):  # a leftover; deleted at load anyway
                    _discard(self.trash.pop())
            latest = build_offset_map(self.map_segments, self.map_upper_offset, lambda: self.stale)
            horizon = self.now_ms - self.delete_retention_ms
            for segment in self.segments:
                if self.stale:
                    return
                plan = plan_segment(segment, latest, segment.largest_timestamp < horizon)
                if plan:
                    copy = cleaned_copy(segment, plan, self.segment_index_bytes, self.now_ms)
                    self.cleaned.append((segment, copy))
            self.finished = True
        except (OSError, KafkaError) as exc:
            self.error = exc
        finally:
            self.segments = self.map_segments = []

    def complete(self) -> int:
        """Loop: swap in the cleaned copies still valid; the number of bytes removed."""
        log = self.log
        pending, self.cleaned = self.cleaned, []
        if self.stale or self.error is not None:
            self.discarded += [copy for _, copy in pending]
            if isinstance(self.error, OSError) and not log.offline:
                log.handle_io_error(self.error)
            elif self.error is not None:
                logger.error("cleaning %s failed: %s", log.dir.name, self.error)
            return 0
        removed = 0
        while pending:
            old, copy = pending.pop(0)
            index = next((i for i, s in enumerate(log.segments) if s is old), None)
            if index is None or index == len(log.segments) - 1:
                self.discarded.append(copy)  # deleted by retention meanwhile
                continue
            try:
                copy.take_names_of(old, DELETED_SUFFIX)
            except OSError as exc:
                self.discarded += [copy] + [c for _, c in pending]
                log.handle_io_error(exc)
                return removed
            log.segments[index] = copy
            log.deletions.schedule(old, log.config.file_delete_delay_ms)
            removed += old.size - copy.size
        if self.finished and self.checkpoint is not None:
            self.checkpoint.first_dirty_offset = self.to_clean.first_uncleanable_offset
        return removed


def plan_cleaning(
    log: PartitionLog,
    checkpoint: CleanerCheckpoint | None,
    now_ms: int,
    *,
    min_compaction_lag_ms: int | None = None,
    delete_retention_ms: int | None = None,
    force: bool = False,
    trash: Sequence[LogSegment] = (),
) -> CleaningJob | None:
    """A cleaning of ``log`` if it should be cleaned now (its dirty ratio or
    max.compaction.lag.ms; any dirty bytes with ``force``), else None."""
    to_clean = log_to_clean(log, checkpoint, now_ms, min_compaction_lag_ms)
    if to_clean.cleanable_bytes <= 0:
        return None
    if not force and not to_clean.should_clean(log.config.min_cleanable_dirty_ratio):
        return None
    return CleaningJob(
        log, to_clean, checkpoint, now_ms, delete_retention_ms=delete_retention_ms, trash=trash
    )


def clean_log(
    log: PartitionLog,
    now_ms: int,
    delete_retention_ms: int,
    checkpoint: CleanerCheckpoint | None = None,
    min_compaction_lag_ms: int = 0,
) -> int:
    """Compact the closed segments of ``log`` now, in this thread, whatever its dirty
    ratio; the number of bytes removed. With a checkpoint, only a dirty section that
    grew since the last run is worth a cleaning. OSError goes to the log's handler."""
    job = plan_cleaning(
        log,
        checkpoint,
        now_ms,
        min_compaction_lag_ms=min_compaction_lag_ms,
        delete_retention_ms=delete_retention_ms,
        force=True,
    )
    if job is None:
        return 0
    job.run()
    removed = job.complete()
    for copy in job.discarded:
        with contextlib.suppress(OSError):
            _discard(copy)
    return removed
