"""What a broker of a ZooKeeper cluster adds to the single node: its place in the
cluster (controller and broker epochs), the controller runtime it may run, the
link to the current controller (AlterPartition, ControlledShutdown), the ISR
checks of the partitions it leads, and its replica fetchers.

ISR changes: a leader's partition proposes a change (a follower caught up, or
one fell behind for replica.lag.time.max.ms); :class:`AlterPartitionManager`
sends the pending changes to the controller in one AlterPartition and applies
the committed state it answers. A change the controller refuses (fenced leader
epoch, stale partition epoch) is dropped: a LeaderAndIsr with the truth follows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from strom.broker.controller_runtime import ControllerRuntime
from strom.common.types import TopicPartition
from strom.metadata.zk.store import ZkMetadataStore
from strom.net.connection import BrokerConnection
from strom.protocol.api_versions import INTER_BROKER_API_VERSIONS
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.generated.alter_partition import AlterPartitionRequest, AlterPartitionResponse
from strom.protocol.generated.controlled_shutdown import ControlledShutdownRequest
from strom.replication.partition import IsrChange

if TYPE_CHECKING:
    from strom.broker.broker import Broker

log = logging.getLogger(__name__)
APReq = AlterPartitionRequest
RETRY_S = 0.1


class ControllerLink:
    """A connection to whichever broker the image names as controller."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self._conn: BrokerConnection | None = None
        self._to = -1

    async def send(self, request: Any, timeout_ms: int = 30_000) -> Any:
        controller = self.broker.image.controller_id
        if controller < 0:
            raise KafkaError(ErrorCode.NOT_CONTROLLER, "no controller is known yet")
        if self._conn is None or self._conn.closed or self._to != controller:
            await self.close()
            info = self.broker.image.brokers.get(controller)
            ep = info.endpoint(self.broker.inter_broker_listener_name) if info else None
            if ep is None:
                raise KafkaError(ErrorCode.NOT_CONTROLLER, f"controller {controller} unknown")
            self._conn = await BrokerConnection.open(
                ep.host,
                ep.port,
                client_id=f"broker-{self.broker.node_id}",
                request_timeout_ms=timeout_ms,
                api_versions=INTER_BROKER_API_VERSIONS,
            )
            self._to = controller
        return await self._conn.send(request, timeout_ms=timeout_ms)

    async def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
        self._conn = None


class AlterPartitionManager:
    def __init__(self, broker: Broker, link: ControllerLink) -> None:
        self.broker = broker
        self.link = link
        self.pending: dict[TopicPartition, IsrChange] = {}
        self._wake = asyncio.Event()
        self._isr_before: dict[TopicPartition, tuple[int, ...]] = {}  # the ISR proposed from

    def submit(self, change: IsrChange | None) -> None:
        if change is not None:
            self.pending[change.tp] = change
            part = self.broker.replicas.partitions.get(change.tp)
            if part is not None:
                self._isr_before.setdefault(change.tp, part.isr)
            self._wake.set()

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self.pending = self.pending, {}
            try:
                response = await self.link.send(self._request(batch))
            except (KafkaError, OSError) as exc:
                log.debug("AlterPartition failed (%s); retrying", exc)
                self._requeue(batch)
                await asyncio.sleep(RETRY_S)
                continue
            if response.error_code != ErrorCode.NONE:
                log.info("AlterPartition answered %s", ErrorCode(response.error_code).name)
                if response.error_code in (ErrorCode.NOT_CONTROLLER, ErrorCode.STALE_BROKER_EPOCH):
                    self._requeue(batch)
                    await self.link.close()
                    await asyncio.sleep(RETRY_S)
                else:
                    self._fail(batch)
                continue
            self._apply(batch, response)

    def _requeue(self, batch: dict[TopicPartition, IsrChange]) -> None:
        for tp, change in batch.items():
            self.pending.setdefault(tp, change)
        if self.pending:
            self._wake.set()

    def _fail(self, batch: dict[TopicPartition, IsrChange]) -> None:
        for tp in batch:
            self._isr_before.pop(tp, None)
            part = self.broker.replicas.partitions.get(tp)
            if part is not None:
                part.on_isr_change_failed()

    def _request(self, batch: dict[TopicPartition, IsrChange]) -> APReq:
        by_topic: dict[str, list[APReq.PartitionData]] = {}
        brokers = self.broker.image.brokers
        for tp, change in batch.items():
            by_topic.setdefault(tp.topic, []).append(
                APReq.PartitionData(
                    partition_index=tp.partition,
                    leader_epoch=change.leader_epoch,
                    new_isr=list(change.new_isr),
                    new_isr_with_epochs=[
                        APReq.BrokerState(r, brokers[r].epoch if r in brokers else -1)
                        for r in change.new_isr
                    ],
                    partition_epoch=change.partition_epoch,
                )
            )
        topics = []
        for name, parts in by_topic.items():
            topic = self.broker.image.topic(name)
            topic_id = topic.topic_id if topic is not None else bytes(16)
            topics.append(APReq.TopicData(topic_name=name, topic_id=topic_id, partitions=parts))
        cluster = self.broker.cluster
        return APReq(
            broker_id=self.broker.node_id,
            broker_epoch=cluster.broker_epoch if cluster is not None else -1,
            topics=topics,
        )

    def _apply(self, batch: dict[TopicPartition, IsrChange], resp: AlterPartitionResponse) -> None:
        now = self.broker.now_ms()
        for t in resp.topics:
            name = t.topic_name
            if any(t.topic_id):
                found = self.broker.image.topic_by_id(t.topic_id)
                name = found.name if found is not None else name
            for p in t.partitions:
                tp = TopicPartition(name, p.partition_index)
                part = self.broker.replicas.partitions.get(tp)
                if part is None or tp not in batch:
                    continue
                if p.error_code != ErrorCode.NONE:
                    self._isr_before.pop(tp, None)
                    log.info("ISR change of %s refused: %s", tp, ErrorCode(p.error_code).name)
                    part.on_isr_change_failed()
                    continue
                moved = part.on_isr_change_committed(
                    p.leader_epoch, p.partition_epoch, tuple(p.isr), now
                )
                # Kafka's IsrShrinksPerSec / IsrExpandsPerSec: a proposal the controller took
                before = self._isr_before.pop(tp, None)
                if before is not None:
                    self.broker.metrics.on_isr_change(before, p.isr)
                if moved:
                    self.broker.replicas.on_high_watermark(tp)


class ClusterMember:
    def __init__(self, broker: Broker, zk: ZkMetadataStore) -> None:
        self.broker = broker
        self.zk = zk
        self.controller_epoch = -1
        self.broker_epoch = -1
        self.runtime = ControllerRuntime(broker, zk)
        self.link = ControllerLink(broker)
        self.alter_partition = AlterPartitionManager(broker, self.link)

    def start(self) -> None:
        """On the loop, once registered: the controller election, AlterPartition sender,
        and what the ZooKeeper session tells."""
        self.zk.on_session_lost = self.runtime.on_session_lost
        self.zk.on_suspended = self.runtime.on_suspended
        self.zk.on_connected = self.runtime.on_connected
        self.zk.on_registered = self._registered_again
        self.runtime.start()
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self.alter_partition.run(), name="alter-partition")]

    def _registered_again(self, info: Any) -> None:
        """ZooKeeper's thread: a new session, a new registration, a new broker epoch."""
        self.broker_epoch = info.epoch
        self.runtime.on_registered()

    async def shutdown(self) -> None:
        for task in getattr(self, "_tasks", []):
            task.cancel()
        await self.broker.fetchers.shutdown()
        self.runtime.shutdown()
        await self.link.close()

    def check_isr(self) -> None:
        """replica.lag.time.max.ms / 2: propose ISR shrinks of lagging followers."""
        now = self.broker.now_ms()
        for part in self.broker.replicas.partitions.values():
            if part.is_leader:
                self.alter_partition.submit(part.maybe_shrink_isr(now))

    async def controlled_shutdown(self) -> bool:
        """Ask the controller to move this broker's leaderships away (ControlledShutdown),
        retrying as Kafka does; True when nothing movable is left."""
        cfg = self.broker.config
        retries = cfg.get_int("controlled.shutdown.max.retries")
        timeout_ms = cfg.get_int("controller.socket.timeout.ms")
        backoff_s = cfg.get_int("controlled.shutdown.retry.backoff.ms") / 1000
        for attempt in range(retries + 1):
            try:
                req = ControlledShutdownRequest(self.broker.node_id, self.broker_epoch)
                resp = await self.link.send(req, timeout_ms=timeout_ms)
                if resp.error_code == ErrorCode.NONE and not resp.remaining_partitions:
                    log.info("controlled shutdown succeeded")
                    return True
                log.info(
                    "controlled shutdown: %s, %d partition(s) still led here",
                    ErrorCode(resp.error_code).name,
                    len(resp.remaining_partitions),
                )
            except (KafkaError, OSError) as exc:
                log.warning("controlled shutdown attempt %d failed: %s", attempt + 1, exc)
            if attempt < retries:
                await asyncio.sleep(min(backoff_s, 1.0) if attempt == 0 else backoff_s)
        return False
