"""The broker's partitions: local replicas, their logs, leadership, and waiting requests.

Owns the LogManager and one replication.Partition per hosted partition.
Leadership reaches it through :meth:`ReplicaManager.apply_partition_state`
(LeaderAndIsr, or the embedded store's image). Two kinds of waiting request:

- a long-polling Fetch registers a future per partition and is woken by the
  next append or high-watermark move on any of them (Kafka's delayed fetch);
- an acks=all produce, or a coordinator's write, waits until the high
  watermark passes its last offset (Kafka's delayed produce); it fails with
  NOT_LEADER_OR_FOLLOWER as soon as the replica stops being leader.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Final

from strom.common.config import BrokerConfig
from strom.common.types import TopicPartition
from strom.common.values import Value
from strom.metadata.image import PartitionInfo, TopicInfo
from strom.protocol.append_origin import AppendOrigin
from strom.protocol.errors import ErrorCode, KafkaError
from strom.storage.config import LogConfig
from strom.storage.log_manager import LogManager

# A partition's code, and its log's, are imported with the first partition this broker
# hosts, not at its start (issue 15).
if TYPE_CHECKING:
    from strom.replication.partition import Partition
    from strom.storage.log import PartitionLog
    from strom.storage.log_append import AppendInfo

log = logging.getLogger(__name__)


class LeadershipChange(Value):
    """A replica became leader or follower (or was first hosted): ``is_leader``."""

    __slots__ = ("is_leader",)
    FIELDS: ClassVar[tuple[str, ...]] = ("is_leader",)
    is_leader: Final[bool]

    def __init__(self, is_leader: bool) -> None:
        self.is_leader = is_leader


class ReplicaManager:
    def __init__(self, config: BrokerConfig, logs: LogManager, node_id: int) -> None:
        self.config = config
        self.logs = logs
        self.node_id = node_id
        self.partitions: dict[TopicPartition, Partition[PartitionLog]] = {}
        # topic id -> name of the topics with a local replica (LeaderAndIsr names them
        # before UpdateMetadata does: followers fetch by topic id at once)
        self.topic_names: dict[bytes, str] = {}
        self._waiters: dict[TopicPartition, list[asyncio.Future[None]]] = {}  # consumers
        self._append_waiters: dict[TopicPartition, list[asyncio.Future[None]]] = {}  # followers
        # requests waiting for followers' progress (DeleteRecords' low watermark)
        self._follower_waiters: dict[TopicPartition, list[asyncio.Future[None]]] = {}
        # acks=all: (required offset, future of the error code) per partition
        self._commit_waiters: dict[TopicPartition, list[tuple[int, asyncio.Future[ErrorCode]]]] = {}
        # Called when a local replica becomes a follower (the replica fetchers listen).
        self.on_follower: Callable[[TopicPartition, Partition[PartitionLog]], None] | None = None
        self.on_leader: Callable[[TopicPartition, Partition[PartitionLog]], None] | None = None
        # Whether the cluster has the partition (the broker's image): a partition with no
        # replica here is NOT_LEADER_OR_FOLLOWER when it exists, else unknown.
        self.exists: Callable[[TopicPartition], bool] = lambda tp: False

    def log_config(self, topic: TopicInfo) -> LogConfig:
        return LogConfig.from_topic_config(self.config.topic_config_strings(topic.configs))

    def _min_isr(self, topic: TopicInfo) -> int:
        return int(self.config.topic_config_strings(topic.configs)["min.insync.replicas"])

    def apply_partition_state(
        self, topic: TopicInfo, state: PartitionInfo, now_ms: int
    ) -> LeadershipChange | None:
        """Make the local replica leader or follower per ``state`` (created on first use).
        Returns the change when this broker gained or lost leadership (or first hosts the
        replica), else None: a leader-epoch bump while staying leader (an ISR or replica
        change) is not a new election, and the coordinators must keep their state."""
        tp = TopicPartition(topic.name, state.partition)
        if any(topic.topic_id):
            self.topic_names[topic.topic_id] = topic.name
        part = self.partitions.get(tp)
        created = part is None
        if part is None:
            from strom.replication.partition import Partition

            cfg = self.log_config(topic)
            plog = self.logs.get_log(tp) or self.logs.create_log(tp, now_ms, cfg)
            part = Partition(
                tp,
                plog,
                self.node_id,
                self._min_isr(topic),
                self.config.get_int("replica.lag.time.max.ms"),
            )
            self.partitions[tp] = part
        was_leader = part.is_leader
        if state.leader == self.node_id:
            changed = part.make_leader(state, now_ms)
            if changed and self.on_leader is not None:
                self.on_leader(tp, part)
            self.on_high_watermark(tp)
        else:
            changed = part.make_follower(state)
            if was_leader:
                self._fail_commit_waiters(tp, ErrorCode.NOT_LEADER_OR_FOLLOWER)
            if changed and self.on_follower is not None:
                self.on_follower(tp, part)
            self._wake(tp)
        if was_leader == part.is_leader and not created:
            return None
        return LeadershipChange(part.is_leader)

    def update_topic_config(self, topic: TopicInfo) -> None:
        cfg = self.log_config(topic)
        min_isr = self._min_isr(topic)
        for tp, part in self.partitions.items():
            if tp.topic == topic.name:
                part.log.config = cfg
                part.min_insync_replicas = min_isr

    def move_replica(self, tp: TopicPartition, log_dir: Path, now_ms: int) -> None:
        """AlterReplicaLogDirs for a local replica: its log moves to ``log_dir``."""
        part = self.get_partition(tp)
        part.log = self.logs.move_log(tp, log_dir, now_ms)

    def stop_replica(self, tp: TopicPartition, delete: bool) -> None:
        part = self.partitions.pop(tp, None)
        if part is not None:
            self._fail_commit_waiters(tp, ErrorCode.NOT_LEADER_OR_FOLLOWER)
        if delete:
            self.logs.delete_log(tp)
            if not any(other.topic == tp.topic for other in self.partitions):
                # the topic's id no longer names a local replica (fetches by id: UNKNOWN_TOPIC_ID)
                for topic_id in [i for i, name in self.topic_names.items() if name == tp.topic]:
                    del self.topic_names[topic_id]
        self._wake(tp)

    def delete_topic(self, name: str) -> None:
        for tp in [tp for tp in self.partitions if tp.topic == name]:
            self.stop_replica(tp, delete=True)

    def get_partition(self, tp: TopicPartition) -> Partition[PartitionLog]:
        """The local replica of ``tp``: NOT_LEADER_OR_FOLLOWER when the partition exists
        but has no replica here, UNKNOWN_TOPIC_OR_PARTITION when it does not exist."""
        p = self.partitions.get(tp)
        if p is None:
            if self.exists(tp):
                raise KafkaError(ErrorCode.NOT_LEADER_OR_FOLLOWER)
            raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
        if p.log.offline or self.logs.offline_dirs:  # no second lookup per partition else
            self.logs.get_log(tp)  # raises KAFKA_STORAGE_ERROR when its directory is offline
        return p

    def leader_partition(
        self, tp: TopicPartition, current_leader_epoch: int = -1
    ) -> Partition[PartitionLog]:
        """The local replica of ``tp`` if this broker leads it (Kafka's order: the
        partition, then the client's leader epoch, then leadership)."""
        p = self.get_partition(tp)
        p.check_leader_epoch(current_leader_epoch)
        p.require_leader()
        return p

    def append(
        self,
        tp: TopicPartition,
        records: bytes | memoryview,
        acks: int,
        now_ms: int,
        origin: AppendOrigin = AppendOrigin.CLIENT,
    ) -> AppendInfo:
        """Append as leader; ``origin`` COORDINATOR for coordinator records and markers.
        (append_records_to_leader requires leadership: :meth:`leader_partition` without
        a leader epoch to check.)"""
        part = self.partitions.get(tp)
        if part is None or part.log.offline or self.logs.offline_dirs:
            part = self.get_partition(tp)  # its error, or the partition (once checked)
        hw = part.log.high_watermark
        info = part.append_records_to_leader(records, acks, now_ms, origin)
        if self._append_waiters:
            self._wake_followers(tp)
        if part.log.high_watermark != hw:
            self.on_high_watermark(tp)
        return info

    async def append_committed(
        self,
        tp: TopicPartition,
        records: bytes | memoryview,
        now_ms: int,
        timeout_s: float,
        origin: AppendOrigin = AppendOrigin.COORDINATOR,
    ) -> AppendInfo:
        """Append with acks=all and wait until committed; KafkaError on failure."""
        info = self.append(tp, records, -1, now_ms, origin)
        if info.last_offset >= 0:
            code = await self.wait_for_commit(tp, info.last_offset + 1, timeout_s)
            if code != ErrorCode.NONE:
                raise KafkaError(code)
        return info

    # -- acks=all ------------------------------------------------------------------
    def commit_status(self, tp: TopicPartition, required_offset: int) -> ErrorCode | None:
        """What :meth:`wait_for_commit` would answer without waiting, None if it would
        wait."""
        part = self.partitions.get(tp)
        if part is None:
            return ErrorCode.NOT_LEADER_OR_FOLLOWER
        return part.check_enough_replicas_reach(required_offset)

    async def wait_for_commit(
        self, tp: TopicPartition, required_offset: int, timeout_s: float
    ) -> ErrorCode:
        """Wait until the high watermark of ``tp`` reaches ``required_offset``: NONE,
        NOT_ENOUGH_REPLICAS_AFTER_APPEND, NOT_LEADER_OR_FOLLOWER, or REQUEST_TIMED_OUT."""
        part = self.partitions.get(tp)
        if part is None:
            return ErrorCode.NOT_LEADER_OR_FOLLOWER
        done = part.check_enough_replicas_reach(required_offset)
        if done is not None:
            return done
        fut: asyncio.Future[ErrorCode] = asyncio.get_running_loop().create_future()
        entry = (required_offset, fut)
        self._commit_waiters.setdefault(tp, []).append(entry)
        try:
            async with asyncio.timeout(timeout_s):
                return await fut
        except TimeoutError:
            return ErrorCode.REQUEST_TIMED_OUT
        finally:
            waiting = self._commit_waiters.get(tp)
            if waiting is not None and entry in waiting:
                waiting.remove(entry)
                if not waiting:
                    del self._commit_waiters[tp]

    def on_high_watermark(self, tp: TopicPartition) -> None:
        """The high watermark of ``tp`` may have moved: complete acks=all waiters it
        passed, and wake long-polling fetches."""
        waiting = self._commit_waiters.get(tp)
        if waiting:
            part = self.partitions.get(tp)
            if part is not None:
                for required, fut in list(waiting):
                    code = part.check_enough_replicas_reach(required)
                    if code is not None and not fut.done():
                        fut.set_result(code)
        if self._waiters or self._append_waiters:
            self._wake(tp)

    def _fail_commit_waiters(self, tp: TopicPartition, code: ErrorCode) -> None:
        for _, fut in self._commit_waiters.pop(tp, []):
            if not fut.done():
                fut.set_result(code)

    # -- followers' progress ------------------------------------------------------------
    def on_follower_fetch(self, tp: TopicPartition) -> None:
        for fut in self._follower_waiters.pop(tp, []):
            if not fut.done():
                fut.set_result(None)

    async def wait_for_low_watermark(
        self, tp: TopicPartition, offset: int, timeout_s: float
    ) -> ErrorCode:
        """DeleteRecords in a cluster (Kafka's delayed delete records): wait until every
        live replica's log start offset reached ``offset``."""
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    part = self.partitions.get(tp)
                    if part is None or not part.is_leader:
                        return ErrorCode.NOT_LEADER_OR_FOLLOWER
                    if part.low_watermark() >= offset:
                        return ErrorCode.NONE
                    fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                    self._follower_waiters.setdefault(tp, []).append(fut)
                    await fut
        except TimeoutError:
            return ErrorCode.REQUEST_TIMED_OUT

    # -- long-polling fetches ----------------------------------------------------------
    def _wake(self, tp: TopicPartition) -> None:
        """The high watermark moved (or the replica changed): consumers and followers."""
        for waiters in (self._waiters.pop(tp, None), self._append_waiters.pop(tp, None)):
            for fut in waiters or ():
                if not fut.done():
                    fut.set_result(None)

    def _wake_followers(self, tp: TopicPartition) -> None:
        """An append: followers' fetches (consumers only see it once it is committed)."""
        for fut in self._append_waiters.pop(tp, None) or ():
            if not fut.done():
                fut.set_result(None)

    async def wait_for_data(
        self, tps: Iterable[TopicPartition], timeout_s: float, *, follower: bool = False
    ) -> None:
        """Return when any of ``tps`` gets a new high watermark (a follower: an append),
        or after ``timeout_s``."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        keys = list(tps)
        waiters = self._append_waiters if follower else self._waiters
        for tp in keys:
            waiters.setdefault(tp, []).append(fut)
        try:
            async with asyncio.timeout(timeout_s):
                await fut
        except TimeoutError:
            pass
        finally:
            for tp in keys:
                lst = waiters.get(tp)
                if lst is not None:
                    if fut in lst:
                        lst.remove(fut)
                    if not lst:
                        del waiters[tp]
