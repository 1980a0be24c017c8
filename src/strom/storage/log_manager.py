"""All partition logs of a broker, spread over its log directories.

Each log directory holds::

    <topic>-<partition>/                 one PartitionLog per partition
    <topic>-<partition>.<uuid>-delete/   a deleted partition, removed file.delete.delay.ms later
    .kafka_cleanshutdown                 present only after a clean shutdown
    recovery-point-offset-checkpoint     "topic partition offset" lines
    log-start-offset-checkpoint          "topic partition offset" lines
    replication-offset-checkpoint        high watermarks, same format

Crash story: at startup the clean-shutdown marker decides whether logs are
recovered from their checkpointed recovery points; the marker is deleted once
every log is loaded and written again only by :meth:`LogManager.shutdown`,
after all logs are flushed and checkpoints written. Directories renamed to
``-delete`` are removed at startup if a crash interrupted their deletion.

Threads: the loop plans, a storage thread does the blocking IO, the loop
applies the result (see strom.storage.jobs): :meth:`LogManager.flush_jobs`,
:meth:`LogManager.deletion_job` and :meth:`LogManager.cleaning_jobs` give the
jobs, and :attr:`LogManager.workers` runs them; the synchronous
:meth:`LogManager.flush_due`, :meth:`LogManager.delete_due` and
:meth:`LogManager.compact` run them inline (tests, tools).

Failure story: every OSError on a log directory goes through
:meth:`LogManager.handle_dir_failure`: the directory goes offline, its logs
refuse all calls, and callers get ``KafkaError(KAFKA_STORAGE_ERROR)`` for
those partitions. The broker keeps serving the other directories.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final

from strom.common.types import TopicPartition, random_uuid
from strom.protocol.errors import ErrorCode, KafkaError
from strom.storage.checkpoint import (
    LOG_START_OFFSET_CHECKPOINT,
    RECOVERY_POINT_CHECKPOINT,
    REPLICATION_OFFSET_CHECKPOINT,
    CorruptCheckpointError,
    read_offsets,
    write_offsets,
)
from strom.storage.config import LogConfig
from strom.storage.deletion import DeletionJob, DeletionQueue, delete_now
from strom.storage.flush import FlushJob
from strom.storage.jobs import StorageWorkers, run_inline
from strom.storage.log import PartitionLog, parse_topic_partition_dir
from strom.storage.segment import LogSegment

if TYPE_CHECKING:
    from strom.storage.cleanable import CleanerCheckpoint
    from strom.storage.cleaner import CleaningJob

CLEAN_SHUTDOWN_FILE: Final = ".kafka_cleanshutdown"
# Each checkpoint file and the PartitionLog attribute it records.
_CHECKPOINT_FIELDS: Final = {
    RECOVERY_POINT_CHECKPOINT: "recovery_point",
    LOG_START_OFFSET_CHECKPOINT: "log_start_offset",
    REPLICATION_OFFSET_CHECKPOINT: "high_watermark",
}
DELETE_DIR_SUFFIX: Final = "-delete"

logger = logging.getLogger(__name__)


def _read_offsets_or_empty(path: Path) -> dict[TopicPartition, int]:
    try:
        return read_offsets(path)
    except CorruptCheckpointError:
        logger.warning("ignoring corrupt checkpoint %s", path)
        return {}


class LogManager:
    """Loads, creates, deletes, flushes and cleans the partition logs."""

    def __init__(
        self,
        log_dirs: Sequence[Path],
        default_config: LogConfig,
        now_ms: int,
        *,
        topic_config: Callable[[str], LogConfig] | None = None,
        producer_id_expiration_ms: int = 86_400_000,
    ) -> None:
        self.log_dirs = [Path(log_dir) for log_dir in log_dirs]
        self.default_config = default_config
        self._topic_config = topic_config
        self.producer_id_expiration_ms = producer_id_expiration_ms
        # told when a directory goes offline (the broker reacts; may be any thread)
        self.on_dir_offline: Callable[[Path], None] | None = None
        self._logs: dict[TopicPartition, PartitionLog] = {}
        self._dir_of: dict[TopicPartition, Path] = {}
        self._cleaner_state: dict[TopicPartition, CleanerCheckpoint] = {}
        self._cleaning: set[TopicPartition] = set()  # a cleaning job is in flight
        self._uncleanable: set[TopicPartition] = set()  # a cleaning failed (as Kafka)
        self._cleaner_trash: list[LogSegment] = []  # cleaned copies not swapped in
        self.deletions = DeletionQueue()
        self.workers = StorageWorkers()
        self._stop_cleaning = threading.Event()  # shutdown: running cleanings stop early
        self.offline_dirs: set[Path] = set()
        for log_dir in self.log_dirs:
            self._load_dir(log_dir, now_ms)

    def config_for(self, topic: str) -> LogConfig:
        return self._topic_config(topic) if self._topic_config else self.default_config

    # -- startup ---------------------------------------------------------------

    def _load_dir(self, log_dir: Path, now_ms: int) -> None:
        try:
            log_dir.mkdir(parents=True, exist_ok=True)
            marker = log_dir / CLEAN_SHUTDOWN_FILE
            clean_shutdown = marker.exists()
            recovery_points = _read_offsets_or_empty(log_dir / RECOVERY_POINT_CHECKPOINT)
            log_start_offsets = _read_offsets_or_empty(log_dir / LOG_START_OFFSET_CHECKPOINT)
            high_watermarks = _read_offsets_or_empty(log_dir / REPLICATION_OFFSET_CHECKPOINT)
            for child in sorted(log_dir.iterdir()):
                if not child.is_dir():
                    continue
                if child.name.endswith(DELETE_DIR_SUFFIX):
                    shutil.rmtree(child)
                    continue
                parsed = parse_topic_partition_dir(child.name)
                if parsed is None:
                    continue
                tp = TopicPartition(*parsed)
                if tp in self._logs:
                    logger.error("duplicate log directory for %s: %s", tp, child)
                    continue
                self._register(
                    tp,
                    log_dir,
                    PartitionLog.open(
                        child,
                        self.config_for(tp.topic),
                        now_ms,
                        clean_shutdown,
                        recovery_point=recovery_points.get(tp, 0),
                        log_start_offset=log_start_offsets.get(tp, 0),
                        high_watermark=high_watermarks.get(tp),
                        on_dir_failure=self.handle_dir_failure,
                        deletions=self.deletions,
                    ),
                )
            marker.unlink(missing_ok=True)
        except OSError as exc:
            self.handle_dir_failure(log_dir, exc)

    def _register(self, tp: TopicPartition, log_dir: Path, log: PartitionLog) -> None:
        log.producer_state.expiration_ms = self.producer_id_expiration_ms
        self._logs[tp] = log
        self._dir_of[tp] = log_dir

    # -- failures --------------------------------------------------------------

    def handle_dir_failure(self, log_dir: Path, exc: OSError) -> None:
        """The single OSError handler: take ``log_dir`` and its logs offline."""
        if log_dir in self.offline_dirs:
            return
        logger.error("log directory %s is offline: %s", log_dir, exc)
        self.offline_dirs.add(log_dir)
        for tp, tp_dir in self._dir_of.items():
            if tp_dir == log_dir:
                self._logs[tp].mark_offline()
        if self.on_dir_offline is not None:
            self.on_dir_offline(log_dir)

    def _storage_error(self, tp: TopicPartition) -> KafkaError:
        return KafkaError(ErrorCode.KAFKA_STORAGE_ERROR, f"the log directory of {tp} is offline")

    def _online_dirs(self) -> list[Path]:
        return [log_dir for log_dir in self.log_dirs if log_dir not in self.offline_dirs]

    # -- partitions ------------------------------------------------------------

    def dir_of(self, tp: TopicPartition) -> Path | None:
        """The log directory holding ``tp``, None if it has no log here."""
        return self._dir_of.get(tp)

    def get_log(self, tp: TopicPartition) -> PartitionLog | None:
        """The partition's log, None if absent; KAFKA_STORAGE_ERROR if offline."""
        log = self._logs.get(tp)
        if log is not None and (
            log.offline or (self.offline_dirs and self._dir_of[tp] in self.offline_dirs)
        ):
            raise self._storage_error(tp)
        return log

    def create_log(
        self, tp: TopicPartition, now_ms: int, config: LogConfig | None = None
    ) -> PartitionLog:
        """Get or create the log, in the online directory with the fewest logs."""
        existing = self.get_log(tp)
        if existing is not None:
            return existing
        online = self._online_dirs()
        if not online:
            raise KafkaError(ErrorCode.KAFKA_STORAGE_ERROR, "no log directory is online")
        counts = {log_dir: 0 for log_dir in online}
        for tp_dir in self._dir_of.values():
            if tp_dir in counts:
                counts[tp_dir] += 1
        log_dir = min(online, key=lambda candidate: counts[candidate])
        try:
            log = PartitionLog.open(
                log_dir / f"{tp.topic}-{tp.partition}",
                config or self.config_for(tp.topic),
                now_ms,
                clean_shutdown=True,
                on_dir_failure=self.handle_dir_failure,
                deletions=self.deletions,
            )
        except OSError as exc:
            self.handle_dir_failure(log_dir, exc)
            raise self._storage_error(tp) from exc
        self._register(tp, log_dir, log)
        return log

    def delete_log(self, tp: TopicPartition, now_ms: int | None = None) -> None:
        """Forget the partition and rename its directory to ``-delete``; a storage
        thread removes it file.delete.delay.ms later (the broker default, as Kafka's
        LogManager.asyncDelete), so reads in flight finish."""
        log = self._logs.pop(tp, None)
        log_dir = self._dir_of.pop(tp, None)
        self._cleaner_state.pop(tp, None)
        self._uncleanable.discard(tp)
        if log is None or log_dir is None or log.offline or log_dir in self.offline_dirs:
            return
        try:
            log.detach()
            doomed = log_dir / f"{tp.topic}-{tp.partition}.{random_uuid().hex()}{DELETE_DIR_SUFFIX}"
            log.dir.rename(doomed)
            self.deletions.schedule(doomed, self.default_config.file_delete_delay_ms, now_ms)
        except OSError as exc:
            self.handle_dir_failure(log_dir, exc)
            raise self._storage_error(tp) from exc

    def move_log(self, tp: TopicPartition, dest: Path, now_ms: int) -> PartitionLog:
        """AlterReplicaLogDirs: move ``tp``'s log into log directory ``dest`` (one of
        ``log_dirs``): flush and snapshot, rename the partition directory, reopen it
        there (a clean open at the log end). Reads in flight keep their open files.
        Returns the log to use from now on; KAFKA_STORAGE_ERROR when a directory is
        offline or the move fails."""
        log = self.get_log(tp)
        if log is None:
            raise KafkaError(ErrorCode.REPLICA_NOT_AVAILABLE, f"{tp} has no log here")
        source = self._dir_of[tp]
        if dest == source:
            return log
        if dest in self.offline_dirs:
            raise KafkaError(ErrorCode.KAFKA_STORAGE_ERROR, f"Log directory {dest} is offline")
        try:
            log.active_segment.trim()  # preallocate: reopened, the file size is the data
        except OSError as exc:
            self.handle_dir_failure(source, exc)
            raise self._storage_error(tp) from exc
        log.flush(now_ms)
        log.producer_state.write_snapshot(log.log_end_offset)
        start, hw, end = log.log_start_offset, log.high_watermark, log.log_end_offset
        log.detach()
        self._logs.pop(tp)
        self._dir_of.pop(tp)
        self._cleaner_state.pop(tp, None)
        target = dest / log.dir.name
        try:
            if target.exists():
                shutil.rmtree(target)  # a leftover of an interrupted move
            shutil.move(str(log.dir), str(target))
            moved = PartitionLog.open(
                target,
                log.config,
                now_ms,
                clean_shutdown=True,
                recovery_point=end,
                log_start_offset=start,
                high_watermark=hw,
                on_dir_failure=self.handle_dir_failure,
                deletions=self.deletions,
            )
        except OSError as exc:
            self.handle_dir_failure(dest, exc)
            raise self._storage_error(tp) from exc
        self._register(tp, dest, moved)
        self.write_checkpoints()
        return moved

    def all_logs(self) -> dict[TopicPartition, PartitionLog]:
        """The online logs."""
        return {tp: log for tp, log in self._logs.items() if not log.offline}

    def offline_partitions(self) -> set[TopicPartition]:
        return {tp for tp, log in self._logs.items() if log.offline}

    # -- periodic work ---------------------------------------------------------

    def cleanup(self, now_ms: int) -> int:
        """Retention over every online log; the number of segments deleted."""
        deleted = 0
        for log in self.all_logs().values():
            try:
                deleted += log.delete_expired_segments(now_ms)
            except KafkaError as exc:
                if exc.code != ErrorCode.KAFKA_STORAGE_ERROR:
                    raise
        return deleted

    def cleaning_jobs(self, now_ms: int) -> list[ManagedCleaning]:
        """Cleanings for the compacted online logs that should be cleaned now, the
        filthiest first (Kafka's grabFilthiestCompactedLog, over every log); run them
        in :attr:`workers` with ``cleaner=True``, then complete them on the loop."""
        compacted = [
            (tp, log)
            for tp, log in self.all_logs().items()
            if log.config.compact_enabled and tp not in self._cleaning | self._uncleanable
        ]
        if not compacted:
            return []
        # the cleaner's code is imported with the first compacted log
        from strom.storage.cleanable import CleanerCheckpoint
        from strom.storage.cleaner import plan_cleaning

        candidates: list[tuple[float, ManagedCleaning]] = []
        for tp, log in compacted:
            state = self._cleaner_state.setdefault(tp, CleanerCheckpoint())
            job = plan_cleaning(log, state, now_ms)
            if job is not None:
                job.stop = self._stop_cleaning
                candidates.append((job.to_clean.cleanable_ratio, ManagedCleaning(self, tp, job)))
        candidates.sort(key=lambda pair: -pair[0])
        jobs = [job for _, job in candidates]
        if self._cleaner_trash and jobs:
            jobs[0].job.trash += self._cleaner_trash
            self._cleaner_trash = []
        self._cleaning.update(job.tp for job in jobs)
        return jobs

    def compact(self, now_ms: int) -> int:
        """Compact, in this thread, every online log whose cleanup.policy includes
        ``compact`` and that should be cleaned now (its dirty ratio above
        min.cleanable.dirty.ratio, or a dirty record older than max.compaction.lag.ms);
        the number of bytes removed. See strom.storage.cleaner."""
        removed = run_inline(self.cleaning_jobs(now_ms))
        trash, self._cleaner_trash = self._cleaner_trash, []
        for copy in trash:
            with contextlib.suppress(OSError):
                delete_now(copy)
        return removed

    def cleaning_done(self, tp: TopicPartition, job: CleaningJob) -> None:
        """Bookkeeping after a cleaning completed on the loop."""
        self._cleaning.discard(tp)
        self._cleaner_trash += job.discarded
        if job.error is not None and not isinstance(job.error, OSError):
            self._uncleanable.add(tp)

    def remove_expired_producers(self, now_ms: int) -> int:
        """Forget producers idle for producer.id.expiration.ms (none with an open
        transaction); the number removed."""
        return sum(log.producer_state.remove_expired(now_ms) for log in self.all_logs().values())

    def flush_jobs(self, now_ms: int) -> list[FlushJob]:
        """Flushes due (flush.ms passed, a segment rolled, flush.messages reached), to
        run in :attr:`workers`."""
        jobs: list[FlushJob] = []
        for log in self.all_logs().values():
            job = log.flush_job(now_ms)
            if job is not None:
                jobs.append(job)
        return jobs

    def requested_flush_jobs(self, tps: Iterable[TopicPartition], now_ms: int) -> list[FlushJob]:
        """Flushes of the logs of ``tps`` that reached flush.messages (the produce path:
        a dictionary lookup per partition, no walk over every log)."""
        jobs: list[FlushJob] = []
        for tp in tps:
            log = self._logs.get(tp)
            if log is not None and log.flush_requested:
                job = log.flush_job(now_ms)
                if job is not None:
                    jobs.append(job)
        return jobs

    def flush_due(self, now_ms: int) -> int:
        """Flush, in this thread, logs whose flush.ms passed or that rolled; the number
        flushed."""
        jobs = self.flush_jobs(now_ms)
        run_inline(jobs)
        return len(jobs)

    def deletion_job(self, now_ms: int) -> DeletionJob | None:
        """The files and directories whose file.delete.delay.ms has passed, to remove
        in :attr:`workers`; None when nothing is due."""
        due = self.deletions.take_due(now_ms)
        return DeletionJob(due, self.handle_dir_failure) if due else None

    def delete_due(self, now_ms: int) -> int:
        """Remove, in this thread, what is due; the number of segments and directories."""
        job = self.deletion_job(now_ms)
        return run_inline([job]) if job is not None else 0

    def checkpoint_offsets(self, name: str) -> dict[Path, dict[TopicPartition, int]]:
        """The offsets one checkpoint file holds, per online log directory (a snapshot
        that :meth:`write_checkpoint` may write from another thread): ``name`` is
        RECOVERY_POINT_CHECKPOINT, LOG_START_OFFSET_CHECKPOINT or
        REPLICATION_OFFSET_CHECKPOINT."""
        attr = _CHECKPOINT_FIELDS[name]
        out: dict[Path, dict[TopicPartition, int]] = {d: {} for d in self._online_dirs()}
        for tp, log in self._logs.items():
            log_dir = self._dir_of[tp]
            if log_dir in out and not log.offline:
                out[log_dir][tp] = getattr(log, attr)
        return out

    def write_checkpoint(self, name: str, offsets: dict[Path, dict[TopicPartition, int]]) -> None:
        """Write one checkpoint file in each log directory (blocking: fsync)."""
        for log_dir, entries in offsets.items():
            if log_dir in self.offline_dirs:
                continue
            try:
                write_offsets(log_dir / name, entries)
            except OSError as exc:
                self.handle_dir_failure(log_dir, exc)

    def write_checkpoints(self) -> None:
        """Write the recovery point, log start offset and high watermark checkpoints."""
        for name in _CHECKPOINT_FIELDS:
            self.write_checkpoint(name, self.checkpoint_offsets(name))

    def shutdown(self) -> None:
        """Wait for the storage threads, flush and close every log, checkpoint, mark
        each directory clean, and remove the files waiting for their deletion."""
        self._stop_cleaning.set()
        self.workers.shutdown()
        run_inline([DeletionJob(self.deletions.take_all(), self.handle_dir_failure)])
        trash, self._cleaner_trash = self._cleaner_trash, []
        for copy in trash:
            with contextlib.suppress(OSError):
                delete_now(copy)
        for log in self.all_logs().values():
            try:
                log.flush()
                log.close()
            except KafkaError as exc:
                if exc.code != ErrorCode.KAFKA_STORAGE_ERROR:
                    raise
        self.write_checkpoints()
        for log_dir in self._online_dirs():
            try:
                (log_dir / CLEAN_SHUTDOWN_FILE).touch()
            except OSError as exc:
                self.handle_dir_failure(log_dir, exc)


class ManagedCleaning:
    """A cleaning job whose completion also does the LogManager's bookkeeping."""

    def __init__(self, manager: LogManager, tp: TopicPartition, job: CleaningJob) -> None:
        self.manager = manager
        self.tp = tp
        self.job = job

    def run(self) -> None:
        self.job.run()

    def complete(self) -> int:
        try:
            return self.job.complete()
        finally:
            self.manager.cleaning_done(self.tp, self.job)
