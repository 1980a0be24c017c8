"""The group coordinator's IO edge: ``__consumer_offsets``, shards, waiting requests, timers.

One GroupCoordinatorShard per ``__consumer_offsets`` partition led by this
broker; a group lives in partition ``abs(java hashCode(group_id)) % partitions``.
The topic is created (compacted, offsets.topic.* settings) on the first
FindCoordinator. A partition is loaded by replaying its log when this broker
becomes its leader, and unloaded (NOT_COORDINATOR) when it stops being one
(:meth:`GroupRuntime.on_leadership`). A JoinGroup or SyncGroup waits on an
asyncio future keyed by the handle given to the shard; the shard completes it
through its results. Records are appended through
:class:`OffsetsPartitionWriter`, which completes when they are committed
(acks=all: the high watermark passed them), before the continuations that
answer clients run. ``run()`` drives the deadlines and offset expiry; the topic
is compacted by the log manager like every compacted topic.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final

from strom.common.config import BrokerConfig, ConfigError
from strom.common.hashing import coordinator_partition
from strom.common.names import OFFSETS_TOPIC
from strom.common.types import TopicPartition
from strom.coordinator.group.config import ASSIGNOR_CLASS_NAMES, GroupConfig
from strom.protocol.errors import DecodeError, ErrorCode, KafkaError

if TYPE_CHECKING:
    from strom.broker.broker import Broker
    from strom.coordinator.group.coordinator import GroupCoordinatorShard
    from strom.coordinator.group.records import CoordinatorRecord
    from strom.coordinator.group.result import CoordinatorResult
    from strom.protocol.records import BatchHeader

log = logging.getLogger(__name__)

TICK_S: Final = 0.05
LOAD_READ_BYTES: Final = 1 << 20


def sleep_until(now_ms: int, deadlines: list[int], most_s: float) -> float:
    """Seconds until the earliest deadline (none: ``most_s``), between 0 and ``most_s``."""
    if not deadlines:
        return most_s
    return min(most_s, max(0.0, (min(deadlines) - now_ms) / 1000))


def group_config(broker: Broker) -> GroupConfig:
    """The group.* settings; ConfigError when the consumer group bounds contradict each
    other (as Kafka refuses to start then)."""
    cfg = broker.config
    session = _within(
        cfg,
        "group.consumer.session.timeout.ms",
        "group.consumer.min.session.timeout.ms",
        "group.consumer.max.session.timeout.ms",
    )
    heartbeat = _within(
        cfg,
        "group.consumer.heartbeat.interval.ms",
        "group.consumer.min.heartbeat.interval.ms",
        "group.consumer.max.heartbeat.interval.ms",
    )
    if heartbeat >= session:
        raise ConfigError(
            "group.consumer.heartbeat.interval.ms",
            "must be less than group.consumer.session.timeout.ms",
        )
    assignors = [ASSIGNOR_CLASS_NAMES.get(a, a) for a in cfg.get_list("group.consumer.assignors")]
    return GroupConfig(
        min_session_timeout_ms=cfg.get_int("group.min.session.timeout.ms"),
        max_session_timeout_ms=cfg.get_int("group.max.session.timeout.ms"),
        initial_rebalance_delay_ms=cfg.get_int("group.initial.rebalance.delay.ms"),
        max_size=cfg.get_int("group.max.size"),
        offset_metadata_max_bytes=cfg.get_int("offset.metadata.max.bytes"),
        offsets_retention_ms=cfg.get_int("offsets.retention.minutes") * 60_000,
        rebalance_protocols=tuple(cfg.get_list("group.coordinator.rebalance.protocols")),
        consumer_session_timeout_ms=session,
        consumer_heartbeat_interval_ms=heartbeat,
        consumer_max_size=cfg.get_int("group.consumer.max.size"),
        consumer_assignors=tuple(dict.fromkeys(assignors)),
        consumer_migration_policy=(cfg.get_str("group.consumer.migration.policy") or "").lower(),
    )


def _within(cfg: BrokerConfig, key: str, low_key: str, high_key: str) -> int:
    """``key``'s value, checked against its bounds."""
    value, low, high = cfg.get_int(key), cfg.get_int(low_key), cfg.get_int(high_key)
    if not low <= value <= high:
        raise ConfigError(key, f"must be between {low} and {high}")
    return value


def replay_batch(
    shard: GroupCoordinatorShard, header: BatchHeader, raw: memoryview, max_record_bytes: int
) -> None:
    """Replay one batch at load; transactional ones wait for their marker (TxnOffsetCommit).

    Records are streamed: a key or value larger than ``max_record_bytes`` (the topic's
    max.message.bytes, which bounds what the coordinator writes) was never written by a
    coordinator; it is skipped without being read into memory."""
    from strom.protocol.record_stream import read_control_record, stream_records

    if header.is_control:
        if header.producer_id >= 0:
            marker = read_control_record(raw)
            if marker is not None:
                shard.complete_txn(header.producer_id, marker.commit)
        return
    limit = max_record_bytes
    for record in stream_records(raw, max_key_bytes=limit, max_value_bytes=limit):
        if record.partial:
            log.warning("skipping an oversized record at offset %d", record.offset)
            continue
        if record.key is None:
            continue
        if header.is_transactional:
            shard.replay_txn(header.producer_id, record.key, record.value)
        else:
            shard.replay(record.key, record.value)


class OffsetsPartitionWriter:
    """PartitionWriter over the broker's ReplicaManager: one uncompressed batch, acks=all;
    completes when the batch is committed (offsets.commit.timeout.ms at most)."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.timeout_s = broker.config.get_int("offsets.commit.timeout.ms") / 1000

    async def append(self, partition: int, records: Sequence[CoordinatorRecord]) -> int:
        from strom.protocol.append_origin import AppendOrigin
        from strom.protocol.records import build_batch

        now = self.broker.now_ms()
        batch = build_batch([(r.key, r.value, (), now) for r in records])
        tp = TopicPartition(OFFSETS_TOPIC, partition)
        try:
            info = await self.broker.replicas.append_committed(
                tp, batch, now, self.timeout_s, AppendOrigin.CLIENT
            )
        except OSError as e:
            raise KafkaError(ErrorCode.KAFKA_STORAGE_ERROR, str(e)) from e
        return info.last_offset


class GroupRuntime:
    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.config = group_config(broker)
        self.writer = OffsetsPartitionWriter(broker)
        self.shards: dict[int, GroupCoordinatorShard] = {}
        self.loading: set[int] = set()
        self._futures: dict[int, asyncio.Future[Any]] = {}
        self._partition_of: dict[int, int] = {}
        self._next_handle = 0
        self._last_expiry_ms = broker.now_ms()

    # -- placement ------------------------------------------------------------------

    @property
    def num_partitions(self) -> int:
        topic = self.broker.topic(OFFSETS_TOPIC)
        if topic is not None:
            return len(topic.partitions)
        return self.broker.config.get_int("offsets.topic.num.partitions")

    def partition_for(self, group_id: str) -> int:
        return coordinator_partition(group_id, self.num_partitions)

    async def find_coordinator(self, group_id: str) -> tuple[ErrorCode, int]:
        """(NONE, leader of the group's partition of ``__consumer_offsets``), or
        (COORDINATOR_NOT_AVAILABLE, -1) while the topic or its leader is missing."""
        topic = await self.broker.topics.ensure_internal(OFFSETS_TOPIC)
        if topic is None:
            return ErrorCode.COORDINATOR_NOT_AVAILABLE, -1
        info = topic.partition(coordinator_partition(group_id, len(topic.partitions)))
        if info is None or info.leader < 0:
            return ErrorCode.COORDINATOR_NOT_AVAILABLE, -1
        return ErrorCode.NONE, info.leader

    def shard(self, group_id: str) -> tuple[int, GroupCoordinatorShard]:
        """The shard owning ``group_id`` or KafkaError(NOT_COORDINATOR / LOAD_IN_PROGRESS)."""
        partition = self.partition_for(group_id)
        if partition in self.loading:
            raise KafkaError(ErrorCode.COORDINATOR_LOAD_IN_PROGRESS)
        shard = self.shards.get(partition)
        if shard is None:
            raise KafkaError(ErrorCode.NOT_COORDINATOR)
        return partition, shard

    # -- loading ----------------------------------------------------------------------

    def on_leadership(self, tp: TopicPartition, is_leader: bool, leader_epoch: int) -> None:
        """Load a partition of ``__consumer_offsets`` when this broker becomes its leader;
        unload it when it stops being one (its groups answer NOT_COORDINATOR)."""
        if tp.topic != OFFSETS_TOPIC:
            return
        if is_leader:
            self.unload_partition(tp.partition)
            self.load_partition(tp.partition)
        else:
            self.unload_partition(tp.partition)

    def unload_partition(self, partition: int) -> None:
        shard = self.shards.pop(partition, None)
        self.loading.discard(partition)
        for handle, owner in list(self._partition_of.items()):
            fut = self._futures.get(handle)
            if owner == partition and fut is not None and not fut.done():
                fut.set_exception(KafkaError(ErrorCode.NOT_COORDINATOR))
        if shard is not None and shard.groups:
            log.info("unloaded %d group(s) of %s-%d", len(shard.groups), OFFSETS_TOPIC, partition)

    def load_partition(self, partition: int) -> None:
        # The coordinator's code, and the record decoding of a load, are imported with the
        # first partition this broker leads: a broker that no consumer group uses never
        # loads them.
        from strom.coordinator.group.coordinator import GroupCoordinatorShard
        from strom.protocol.records import iter_batches

        self.loading.add(partition)
        shard = GroupCoordinatorShard(self.config, image=lambda: self.broker.image)
        tp = TopicPartition(OFFSETS_TOPIC, partition)
        try:
            plog = self.broker.replicas.get_partition(tp).log
            offset = plog.log_start_offset
            while offset < plog.log_end_offset:
                data = plog.read(offset, LOAD_READ_BYTES)
                if not data.slices:
                    break
                for header, raw in iter_batches(b"".join(s.read() for s in data.slices)):
                    offset = header.next_offset
                    replay_batch(shard, header, raw, plog.config.max_message_bytes)
        except (KafkaError, DecodeError, OSError) as e:
            log.error("failed to load %s: %s", tp, e)
            self.loading.discard(partition)
            return
        shard.on_loaded(self.broker.now_ms())
        self.shards[partition] = shard
        self.loading.discard(partition)
        if shard.groups:
            log.info("loaded %d group(s) from %s", len(shard.groups), tp)

    # -- calls -------------------------------------------------------------------------

    async def call(self, partition: int, op: Callable[[int], CoordinatorResult]) -> Any:
        """Run ``op(handle)`` on the shard and wait for the response to ``handle``."""
        self._next_handle += 1
        handle = self._next_handle
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._futures[handle] = fut
        self._partition_of[handle] = partition
        try:
            await self.execute(partition, op(handle))
            await self._run_due(partition)
            return await fut
        finally:
            self._futures.pop(handle, None)
            self._partition_of.pop(handle, None)

    async def execute(self, partition: int, result: CoordinatorResult) -> None:
        """Complete responses, append records, then run the continuations, until none is left."""
        queue = [result]
        while queue:
            current = queue.pop(0)
            for handle, response in current.responses:
                fut = self._futures.get(handle)
                if fut is not None and not fut.done():
                    fut.set_result(response)
            error = ErrorCode.NONE
            if current.records:
                error = await self._append(partition, current.records)
            queue += [then(error) for then in current.then]

    async def _append(self, partition: int, records: Sequence[CoordinatorRecord]) -> ErrorCode:
        try:
            await self.writer.append(partition, records)
        except KafkaError as e:
            log.warning("append to %s-%d failed: %s", OFFSETS_TOPIC, partition, e)
            return e.code
        return ErrorCode.NONE

    async def _run_due(self, partition: int) -> None:
        shard = self.shards.get(partition)
        now = self.broker.now_ms()
        if shard is not None:
            deadline = shard.next_deadline_ms()
            if deadline is not None and deadline <= now:
                await self.execute(partition, shard.tick(now))

    # -- periodic work ------------------------------------------------------------------

    async def tick(self) -> None:
        now = self.broker.now_ms()
        for partition, shard in list(self.shards.items()):
            deadline = shard.next_deadline_ms()
            if deadline is not None and deadline <= now:
                await self.execute(partition, shard.tick(now))
        interval = self.broker.config.get_int("offsets.retention.check.interval.ms")
        if now - self._last_expiry_ms >= interval:
            self._last_expiry_ms = now
            for partition, shard in list(self.shards.items()):
                await self.execute(partition, shard.expire(now))

    def _sleep_s(self) -> float:
        """Until the earliest timer of any shard, at most TICK_S (a timer set meanwhile
        waits for the next wake-up): a session expires when it is due, as in Kafka's
        purgatory, not up to a tick later."""
        deadlines = [d for s in self.shards.values() if (d := s.next_deadline_ms()) is not None]
        return sleep_until(self.broker.now_ms(), deadlines, TICK_S)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._sleep_s())
            try:
                await self.tick()
            except Exception:
                log.exception("group coordinator tick failed")

    def shutdown(self) -> None:
        for fut in self._futures.values():
            if not fut.done():
                fut.cancel()
        self._futures.clear()
        with contextlib.suppress(Exception):
            self.shards.clear()
