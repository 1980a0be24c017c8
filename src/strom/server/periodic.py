"""A broker's periodic tasks: retention, flushes, file deletion, producer and
transaction expiry, transaction marker retries, the log cleaner, the ISR and
leader balance checks of a cluster member, and the offset checkpoints, each run
every interval of its config (:func:`periodic_tasks`) by :func:`run_periodic`,
which logs a failure and carries on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from strom.broker.broker import Broker
from strom.storage.checkpoint import (
    LOG_START_OFFSET_CHECKPOINT,
    RECOVERY_POINT_CHECKPOINT,
    REPLICATION_OFFSET_CHECKPOINT,
)

log = logging.getLogger("strom.server")

MARKER_RETRY_S = 0.2  # transaction markers that could not be written are retried this often


async def run_periodic(interval_s: float, fn: Callable[[], object], what: str) -> None:
    while True:
        await asyncio.sleep(interval_s)
        try:
            result = fn()
            if isinstance(result, Awaitable):
                await result
        except Exception:
            log.exception("periodic %s failed", what)


def periodic_tasks(broker: Broker) -> list[tuple[float, Callable[[], object], str]]:
    """(interval in seconds, task, name) of every periodic task of ``broker``."""
    cfg = broker.config

    def every(key: str) -> float:
        return cfg.get_int(key) / 1000

    tasks: list[tuple[float, Callable[[], object], str]] = [
        (every("log.retention.check.interval.ms"), broker.cleanup_logs, "retention"),
        (min(every("log.flush.scheduler.interval.ms"), 1.0), broker.flush_due, "flush"),
        (1.0, broker.delete_due_files, "file deletion"),  # file.delete.delay.ms
        (
            every("producer.id.expiration.check.interval.ms"),
            broker.remove_expired_producers,
            "producer expiry",
        ),
        # the transaction runtime is made on first use (Broker.transactions), not here
        (
            every("transaction.abort.timed.out.transaction.cleanup.interval.ms"),
            lambda: broker.transactions.abort_timed_out_transactions(),
            "txn abort",
        ),
        (
            every("transaction.remove.expired.transaction.cleanup.interval.ms"),
            lambda: broker.transactions.expire_transactional_ids(),
            "txn expiry",
        ),
        (MARKER_RETRY_S, lambda: broker.transactions.retry_markers(), "txn markers"),
    ]
    if cfg.get_bool("log.cleaner.enable"):
        tasks.append((every("log.cleaner.backoff.ms"), broker.compact_logs, "log cleaner"))
    if broker.cluster is not None:
        cluster = broker.cluster
        lag = every("replica.lag.time.max.ms")
        tasks.append((lag / 2, cluster.check_isr, "ISR expiration"))
        rebalance_s = cfg.get_int("leader.imbalance.check.interval.seconds")
        tasks.append((rebalance_s, cluster.runtime.auto_rebalance, "leader rebalance"))
    for key, name in (
        ("log.flush.offset.checkpoint.interval.ms", RECOVERY_POINT_CHECKPOINT),
        ("log.flush.start.offset.checkpoint.interval.ms", LOG_START_OFFSET_CHECKPOINT),
        ("replica.high.watermark.checkpoint.interval.ms", REPLICATION_OFFSET_CHECKPOINT),
    ):
        interval = cfg.get_int(key)
        if interval > 0:
            tasks.append((interval / 1000, _checkpoint_writer(broker, name), name))
    return tasks


def _checkpoint_writer(broker: Broker, name: str) -> Callable[[], Awaitable[None]]:
    async def write() -> None:
        offsets = broker.logs.checkpoint_offsets(name)  # a snapshot, taken on the loop
        await asyncio.to_thread(broker.logs.write_checkpoint, name, offsets)

    return write
