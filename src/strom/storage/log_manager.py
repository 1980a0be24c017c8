"""All partition logs of a broker, spread over its log directories.

:class:`LogManager` is :class:`strom.storage.log_dirs.LogDirs` (the directories'
layout, loading, placement, offset checkpoints, failures) plus the periodic work
on the logs and the clean shutdown.

Threads: the loop plans, a storage thread does the blocking IO, the loop
applies the result (see strom.storage.jobs): :meth:`LogManager.flush_jobs`,
:meth:`LogManager.deletion_job` and :meth:`LogManager.cleaning_jobs` give the
jobs, and :attr:`LogManager.workers` runs them; the synchronous
:meth:`LogManager.flush_due`, :meth:`LogManager.delete_due` and
:meth:`LogManager.compact` run them inline (tests, tools).

Shutdown: the storage threads finish, every log is flushed and closed, the
checkpoints are written and only then the clean-shutdown marker
(``.kafka_cleanshutdown``) in each online directory.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from strom.common.types import TopicPartition
from strom.protocol.errors import ErrorCode, KafkaError
from strom.storage.deletion import DeletionJob, delete_now
from strom.storage.flush import FlushJob
from strom.storage.jobs import run_inline
from strom.storage.log_dirs import CLEAN_SHUTDOWN_FILE, LogDirs

if TYPE_CHECKING:
    from strom.storage.cleaner import CleaningJob


class LogManager(LogDirs):
    """Loads, creates, deletes, flushes and cleans the partition logs."""

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

    def requested_flush_jobs(
        self, tps: Iterable[TopicPartition], clock: Callable[[], int]
    ) -> list[FlushJob]:
        """Flushes of the logs of ``tps`` that reached flush.messages (the produce path:
        a dictionary lookup per partition, no walk over every log). ``clock`` is read
        (once) only when one of them asked: most produces need no look at the clock."""
        jobs: list[FlushJob] = []
        now_ms: int | None = None
        for tp in tps:
            log = self._logs.get(tp)
            if log is not None and log.flush_requested:
                if now_ms is None:
                    now_ms = clock()
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
