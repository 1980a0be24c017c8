"""The broker's partitions: local replicas, their logs, and waiting fetchers.

Owns the LogManager and one replication.Partition per hosted partition. A
long-polling Fetch registers a future per partition and is woken by the next
append to any of them (Kafka's delayed fetch, purgatory-less).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from pathlib import Path

from strom.common.config import BrokerConfig
from strom.common.types import TopicPartition
from strom.metadata.store import TopicInfo
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.records import AppendOrigin
from strom.replication.partition import Partition
from strom.storage.config import LogConfig
from strom.storage.log import AppendInfo
from strom.storage.log_manager import LogManager

log = logging.getLogger(__name__)


class ReplicaManager:
    def __init__(self, config: BrokerConfig, logs: LogManager, node_id: int) -> None:
        self.config = config
        self.logs = logs
        self.node_id = node_id
        self.partitions: dict[TopicPartition, Partition] = {}
        self._waiters: dict[TopicPartition, list[asyncio.Future[None]]] = {}

    def log_config(self, topic: TopicInfo) -> LogConfig:
        return LogConfig.from_topic_config(self.config.topic_config_strings(topic.configs))

    def ensure_topic(self, topic: TopicInfo, now_ms: int) -> None:
        """Create or open the local replicas of every partition of ``topic``."""
        cfg = self.log_config(topic)
        min_isr = int(self.config.topic_config_strings(topic.configs)["min.insync.replicas"])
        for p in topic.partitions:
            if self.node_id not in p.replicas:
                continue
            tp = TopicPartition(topic.name, p.partition)
            if tp in self.partitions:
                continue
            plog = self.logs.get_log(tp) or self.logs.create_log(tp, now_ms, cfg)
            self.partitions[tp] = Partition(
                tp, plog, self.node_id, p.leader_epoch, p.replicas, p.isr, min_isr
            )

    def update_topic_config(self, topic: TopicInfo) -> None:
        cfg = self.log_config(topic)
        min_isr = int(self.config.topic_config_strings(topic.configs)["min.insync.replicas"])
        for tp, part in self.partitions.items():
            if tp.topic == topic.name:
                part.log.config = cfg
                part.min_insync_replicas = min_isr

    def move_replica(self, tp: TopicPartition, log_dir: Path, now_ms: int) -> None:
        """AlterReplicaLogDirs for a local replica: its log moves to ``log_dir``."""
        part = self.get_partition(tp)
        part.log = self.logs.move_log(tp, log_dir, now_ms)

    def delete_topic(self, name: str) -> None:
        for tp in [tp for tp in self.partitions if tp.topic == name]:
            del self.partitions[tp]
            self.logs.delete_log(tp)
            self._wake(tp)

    def get_partition(self, tp: TopicPartition) -> Partition:
        p = self.partitions.get(tp)
        if p is None:
            raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
        self.logs.get_log(tp)  # raises KAFKA_STORAGE_ERROR when its directory is offline
        return p

    def append(
        self,
        tp: TopicPartition,
        records: bytes | memoryview,
        acks: int,
        now_ms: int,
        origin: AppendOrigin = AppendOrigin.CLIENT,
    ) -> AppendInfo:
        """Append as leader; ``origin`` COORDINATOR for coordinator records and markers."""
        part = self.get_partition(tp)
        info = part.append_records_to_leader(records, acks, now_ms, origin)
        self._wake(tp)
        return info

    def _wake(self, tp: TopicPartition) -> None:
        waiters = self._waiters.pop(tp, None)
        if waiters:
            for fut in waiters:
                if not fut.done():
                    fut.set_result(None)

    async def wait_for_data(self, tps: Iterable[TopicPartition], timeout_s: float) -> None:
        """Return when any of ``tps`` gets an append, or after ``timeout_s``."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        keys = list(tps)
        for tp in keys:
            self._waiters.setdefault(tp, []).append(fut)
        try:
            async with asyncio.timeout(timeout_s):
                await fut
        except TimeoutError:
            pass
        finally:
            for tp in keys:
                lst = self._waiters.get(tp)
                if lst is not None:
                    if fut in lst:
                        lst.remove(fut)
                    if not lst:
                        del self._waiters[tp]
