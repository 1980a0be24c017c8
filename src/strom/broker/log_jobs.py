"""The broker's storage jobs (mixed into Broker): retention, file deletion,
compaction, flushes and producer expiry. Blocking storage IO runs in the
LogManager's storage threads: planned here on the loop, run in a thread, completed
back on the loop (strom.storage.jobs). The server's periodic tasks call these;
the produce path calls :meth:`LogJobs.flush_requested` (flush.messages).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from strom.broker.metrics import BrokerMetrics
from strom.common.types import TopicPartition
from strom.storage.flush import FlushJob
from strom.storage.jobs import StorageJob
from strom.storage.log_manager import LogManager


class LogJobs:
    """Broker's storage jobs; the host class provides ``logs``, ``metrics`` and
    ``now_ms``."""

    logs: LogManager
    metrics: BrokerMetrics

    if TYPE_CHECKING:

        def now_ms(self) -> int: ...

    async def run_storage_jobs(self, jobs: Sequence[StorageJob], *, cleaner: bool = False) -> int:
        """Run ``jobs`` in a storage thread (the cleaner's with ``cleaner``), then
        complete them here; cancelled, a running job finishes but is not completed."""
        if not jobs:
            return 0
        await asyncio.wrap_future(self.logs.workers.submit(jobs, cleaner=cleaner))
        return sum(job.complete() for job in jobs)

    async def cleanup_logs(self) -> int:
        """Retention (on the loop: segments leave their logs, renamed .deleted), then
        the removal of whatever file.delete.delay.ms made due."""
        deleted = self.logs.cleanup(self.now_ms())
        await self.delete_due_files()
        return deleted

    async def delete_due_files(self) -> int:
        job = self.logs.deletion_job(self.now_ms())
        return await self.run_storage_jobs([job]) if job is not None else 0

    async def compact_logs(self) -> int:
        removed = 0
        for job in self.logs.cleaning_jobs(self.now_ms()):
            removed += await self.run_storage_jobs([job], cleaner=True)
        return removed

    def remove_expired_producers(self) -> int:
        return self.logs.remove_expired_producers(self.now_ms())

    async def flush_due(self) -> int:
        return await self.run_flush_jobs(self.logs.flush_jobs(self.now_ms()))

    async def flush_requested(self, tps: Iterable[TopicPartition]) -> None:
        """flush.messages: fsync the logs of ``tps`` that reached it (Kafka flushes
        before the produce is answered), in a storage thread."""
        await self.run_flush_jobs(self.logs.requested_flush_jobs(tps, self.now_ms))

    async def run_flush_jobs(self, jobs: Sequence[FlushJob]) -> int:
        """fsync in a storage thread; each flush's time goes to the metrics."""
        done = await self.run_storage_jobs(jobs)
        for job in jobs:
            self.metrics.log_flush.observe(job.elapsed_ms)  # LogFlushRateAndTimeMs
        return done
