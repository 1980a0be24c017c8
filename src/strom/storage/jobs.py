"""Storage work that must not block the event loop, in three steps.

Kafka runs fsync, segment deletion, index rebuilds and log cleaning on its
scheduler and cleaner threads. strom's request handling is one event loop,
so every such piece of work is a *job*:

1. planned on the loop (a snapshot of what to do: segments, offsets, a
   generation to detect truncations meanwhile), cheaply;
2. :meth:`StorageJob.run` in a storage thread: blocking IO only, on files
   and segment objects the loop no longer changes (closed segments, files
   under temporary names), never the log's lists or offsets; it keeps
   errors instead of raising;
3. :meth:`StorageJob.complete` back on the loop: apply the result (swap in
   cleaned segments if they are still the log's, advance the recovery point
   if no truncation happened) and send any OSError to the single log
   directory failure handler.

:class:`StorageWorkers` holds the two threads: the log cleaner's (Kafka's
``log.cleaner.threads`` default, 1) and one for the rest (fsync, deletion),
so that a long cleaning never delays a flush. This module imports no asyncio:
the broker awaits the returned futures. Without a loop (unit tests, tools),
:func:`run_inline` runs both steps in the caller's thread.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

DirFailureHandler = Callable[[Path, OSError], None]


class StorageJob(Protocol):
    def run(self) -> None:
        """Blocking IO, in a storage thread; never raises."""

    def complete(self) -> int:
        """On the loop, after :meth:`run`: apply the result; a count for logs and tests."""


def run_jobs(jobs: Sequence[StorageJob]) -> None:
    for job in jobs:
        job.run()


def run_inline(jobs: Sequence[StorageJob]) -> int:
    """Run and complete ``jobs`` in the calling thread (no event loop)."""
    run_jobs(jobs)
    return sum(job.complete() for job in jobs)


class StorageWorkers:
    """The storage threads: one for the log cleaner, one for fsync and deletion, each
    made with its first job (and the thread pool's module imported then, not at a
    broker's start)."""

    def __init__(self) -> None:
        self._executors: dict[bool, ThreadPoolExecutor] = {}  # by ``cleaner``
        self._closed = False

    def submit(self, jobs: Sequence[StorageJob], *, cleaner: bool = False) -> Future[None]:
        """Run the jobs' :meth:`~StorageJob.run` in order in a storage thread; the
        caller completes them on the loop once the future is done."""
        executor = self._executors.get(cleaner)
        if executor is None:
            if self._closed:  # as a shut down ThreadPoolExecutor
                raise RuntimeError("cannot schedule new futures after shutdown")
            from concurrent.futures import ThreadPoolExecutor

            name = "strom-log-cleaner" if cleaner else "strom-storage-io"
            executor = self._executors[cleaner] = ThreadPoolExecutor(1, thread_name_prefix=name)
        return executor.submit(run_jobs, list(jobs))

    def shutdown(self) -> None:
        """Wait for the running jobs; queued ones are dropped (never completed)."""
        self._closed = True
        for executor in self._executors.values():
            executor.shutdown(wait=True, cancel_futures=True)
