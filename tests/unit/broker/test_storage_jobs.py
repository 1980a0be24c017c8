"""The broker's periodic storage work: blocking IO in a storage thread, results
applied on the event loop, which keeps serving meanwhile."""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from strom.broker.broker import Broker
from strom.broker.metrics import BrokerMetrics
from strom.common.types import TopicPartition
from strom.protocol.records import build_batch
from strom.storage.config import LogConfig
from strom.storage.jobs import StorageWorkers
from strom.storage.log_manager import LogManager

NOW = 1_700_000_000_000
WAIT_S = 60  # a safety net against a hung thread, never a measure of speed


class BlockingJob:
    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.threads: dict[str, int] = {}

    def run(self) -> None:
        self.threads["run"] = threading.get_ident()
        self.started.set()
        assert self.release.wait(WAIT_S)

    def complete(self) -> int:
        self.threads["complete"] = threading.get_ident()
        return 1


def _stub(logs: Any, now_ms: int = NOW) -> Any:
    stub = SimpleNamespace(logs=logs, now_ms=lambda: now_ms)
    stub.run_storage_jobs = functools.partial(Broker.run_storage_jobs, stub)
    stub.delete_due_files = functools.partial(Broker.delete_due_files, stub)
    stub.run_flush_jobs = functools.partial(Broker.run_flush_jobs, stub)
    stub.metrics = BrokerMetrics()
    return stub


def test_jobs_run_in_a_storage_thread_while_the_loop_serves() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        job = BlockingJob()
        stub = _stub(SimpleNamespace(workers=StorageWorkers()))
        task = asyncio.create_task(stub.run_storage_jobs([job]))
        assert await loop.run_in_executor(None, job.started.wait, WAIT_S)
        served = 0
        for _ in range(100):  # other tasks run while the job blocks its thread
            await asyncio.sleep(0)
            served += 1
        assert served == 100 and not task.done()
        job.release.set()
        assert await task == 1
        assert job.threads["run"] != threading.get_ident()
        assert job.threads["complete"] == threading.get_ident()
        stub.logs.workers.shutdown()

    asyncio.run(main())


def test_periodic_storage_work_through_the_threads(tmp_path: Path) -> None:
    # Wall-clock time: segments emptied by the cleaner fall back to their file's
    # modification time for retention, as in Kafka.
    now = int(time.time() * 1000)
    config = LogConfig(
        segment_bytes=300,
        cleanup_policy="compact,delete",
        retention_ms=60_000,
        flush_interval_ms=1000,
        min_cleanable_dirty_ratio=0.0,
        file_delete_delay_ms=0,
    )
    manager = LogManager([tmp_path], config, now)
    log = manager.create_log(TopicPartition("t", 0), now)
    for i in range(12):
        batch = build_batch([(b"k%d" % (i % 2), b"v%d" % i, [], now)])
        log.append_as_leader(batch, 0, now)
    log.update_high_watermark(log.log_end_offset)

    async def main() -> None:
        broker = _stub(manager, now + 1000)
        assert await Broker.flush_due(broker) == 1
        assert log.recovery_point == log.log_end_offset
        assert broker.metrics.log_flush.count == 1  # LogFlushRateAndTimeMs
        assert broker.metrics.log_flush.sum > 0
        assert await Broker.compact_logs(broker) > 0
        old = _stub(manager, now + 120_000)
        assert await Broker.cleanup_logs(old) > 0  # retention, then the due deletions
        assert not [p for p in log.dir.iterdir() if p.name.endswith(".deleted")]

    asyncio.run(main())
    manager.shutdown()
