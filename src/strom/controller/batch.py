"""Requests from the controller to brokers, collected per broker and sent in one go
(Kafka's ControllerBrokerRequestBatch): LeaderAndIsr to the replicas of changed
partitions, UpdateMetadata to every live broker, StopReplica to replicas being
stopped or deleted. Each carries the controller epoch and the target broker's epoch,
so a broker ignores a stale controller and a request meant for its previous life."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from strom.common.types import TopicPartition
from strom.controller.context import LEADER_DURING_DELETE, ControllerContext
from strom.controller.ports import ControllerChannel
from strom.metadata.image import SECURITY_PROTOCOL_IDS
from strom.protocol.generated.leader_and_isr import LeaderAndIsrRequest
from strom.protocol.generated.stop_replica import StopReplicaRequest
from strom.protocol.generated.update_metadata import UpdateMetadataRequest

LAI = LeaderAndIsrRequest
UMR = UpdateMetadataRequest
SRR = StopReplicaRequest


def _protocol_id(name: str) -> int:
    return SECURITY_PROTOCOL_IDS.get(name, 0)


@dataclass(slots=True)
class RequestBatch:
    controller_id: int
    inter_broker_listener: str
    leader_and_isr: dict[int, dict[TopicPartition, bool]] = field(default_factory=dict)
    update_metadata: set[TopicPartition] = field(default_factory=set)
    update_metadata_brokers: set[int] = field(default_factory=set)
    full_metadata_brokers: set[int] = field(default_factory=set)
    deleting: set[TopicPartition] = field(default_factory=set)
    stop_replica: dict[int, dict[TopicPartition, bool]] = field(default_factory=dict)
    stop_callbacks: dict[int, Callable[[Any], None]] = field(default_factory=dict)

    def add_leader_and_isr(
        self, brokers: Iterable[int], tp: TopicPartition, is_new: bool = False
    ) -> None:
        for b in brokers:
            self.leader_and_isr.setdefault(b, {})[tp] = is_new
        self.update_metadata.add(tp)

    def add_update_metadata(self, tps: Iterable[TopicPartition]) -> None:
        self.update_metadata.update(tps)

    def add_full_metadata(self, brokers: Iterable[int]) -> None:
        self.full_metadata_brokers.update(brokers)

    def add_deleting(self, tps: Iterable[TopicPartition]) -> None:
        """UpdateMetadata marks these partitions as being deleted (leader -2)."""
        self.deleting.update(tps)
        self.update_metadata.update(tps)

    def add_stop_replica(
        self,
        broker_id: int,
        tp: TopicPartition,
        delete: bool,
        on_response: Callable[[Any], None] | None = None,
    ) -> None:
        self.stop_replica.setdefault(broker_id, {})[tp] = delete
        if on_response is not None:
            self.stop_callbacks[broker_id] = on_response

    def is_empty(self) -> bool:
        return not (
            self.leader_and_isr
            or self.update_metadata
            or self.full_metadata_brokers
            or self.stop_replica
        )

    # -- building and sending -----------------------------------------------------------
    def send(self, ctx: ControllerContext, channel: ControllerChannel) -> None:
        for broker_id, tps in sorted(self.leader_and_isr.items()):
            if ctx.is_live(broker_id):
                channel.send(broker_id, self._leader_and_isr(ctx, broker_id, tps))
        if self.update_metadata or self.full_metadata_brokers:
            partial = self._update_metadata(ctx, sorted(self.update_metadata))
            full = self._update_metadata(ctx, list(ctx.all_partitions()))
            for broker_id in sorted(ctx.live_brokers):
                if broker_id in self.full_metadata_brokers:
                    channel.send(broker_id, self._for_broker(full, ctx, broker_id))
                elif self.update_metadata:
                    channel.send(broker_id, self._for_broker(partial, ctx, broker_id))
        for broker_id, stops in sorted(self.stop_replica.items()):
            if ctx.is_live(broker_id):
                channel.send(
                    broker_id,
                    self._stop_replica(ctx, broker_id, stops),
                    self.stop_callbacks.get(broker_id),
                )

    @staticmethod
    def _for_broker(req: UMR, ctx: ControllerContext, broker_id: int) -> UMR:
        return UMR(
            controller_id=req.controller_id,
            controller_epoch=req.controller_epoch,
            broker_epoch=ctx.broker_epoch(broker_id),
            topic_states=req.topic_states,
            live_brokers=req.live_brokers,
        )

    def _leader_and_isr(
        self, ctx: ControllerContext, broker_id: int, tps: dict[TopicPartition, bool]
    ) -> LAI:
        by_topic: dict[str, list[LAI.LeaderAndIsrPartitionState]] = {}
        leaders: set[int] = set()
        for tp, is_new in sorted(tps.items()):
            state = ctx.states.get(tp)
            assignment = ctx.assignments.get(tp)
            if state is None or assignment is None:
                continue
            leaders.add(state.leader)
            by_topic.setdefault(tp.topic, []).append(
                LAI.LeaderAndIsrPartitionState(
                    topic_name=tp.topic,
                    partition_index=tp.partition,
                    controller_epoch=state.controller_epoch,
                    leader=state.leader,
                    leader_epoch=state.leader_epoch,
                    isr=list(state.isr),
                    partition_epoch=state.zk_version,
                    replicas=list(assignment.replicas),
                    adding_replicas=list(assignment.adding),
                    removing_replicas=list(assignment.removing),
                    is_new=is_new,
                )
            )
        live_leaders = []
        for b in sorted(leaders):
            info = ctx.live_brokers.get(b)
            ep = info.endpoint(self.inter_broker_listener) if info is not None else None
            if ep is not None:
                live_leaders.append(LAI.LeaderAndIsrLiveLeader(b, ep.host, ep.port))
        return LAI(
            controller_id=self.controller_id,
            controller_epoch=ctx.epoch,
            broker_epoch=ctx.broker_epoch(broker_id),
            topic_states=[
                LAI.LeaderAndIsrTopicState(t, ctx.topic_ids.get(t, bytes(16)), ps)
                for t, ps in by_topic.items()
            ],
            live_leaders=live_leaders,
        )

    def _update_metadata(self, ctx: ControllerContext, tps: list[TopicPartition]) -> UMR:
        by_topic: dict[str, list[UMR.UpdateMetadataPartitionState]] = {}
        for tp in tps:
            state = ctx.states.get(tp)
            assignment = ctx.assignments.get(tp)
            if assignment is None:
                continue
            leader = state.leader if state is not None else -1
            if tp in self.deleting or tp.topic in ctx.topics_to_delete:
                leader = LEADER_DURING_DELETE
            by_topic.setdefault(tp.topic, []).append(
                UMR.UpdateMetadataPartitionState(
                    topic_name=tp.topic,
                    partition_index=tp.partition,
                    controller_epoch=state.controller_epoch if state else ctx.epoch,
                    leader=leader,
                    leader_epoch=state.leader_epoch if state else -1,
                    isr=list(state.isr) if state else [],
                    zk_version=state.zk_version if state else -1,
                    replicas=list(assignment.replicas),
                    offline_replicas=list(ctx.offline_replicas(tp)),
                )
            )
        brokers = [
            UMR.UpdateMetadataBroker(
                id=info.node_id,
                endpoints=[
                    UMR.UpdateMetadataEndpoint(
                        ep.port,
                        ep.host,
                        ep.listener,
                        SECURITY_PROTOCOL_IDS.get(ep.security_protocol, 0),
                    )
                    for ep in info.endpoints
                ],
                rack=info.rack,
            )
            for _, info in sorted(ctx.live_brokers.items())
        ]
        return UMR(
            controller_id=self.controller_id,
            controller_epoch=ctx.epoch,
            topic_states=[
                UMR.UpdateMetadataTopicState(t, ctx.topic_ids.get(t, bytes(16)), ps)
                for t, ps in by_topic.items()
            ],
            live_brokers=brokers,
        )

    def _stop_replica(
        self, ctx: ControllerContext, broker_id: int, stops: dict[TopicPartition, bool]
    ) -> SRR:
        by_topic: dict[str, list[SRR.StopReplicaPartitionState]] = {}
        for tp, delete in sorted(stops.items()):
            state = ctx.states.get(tp)
            epoch = state.leader_epoch if state is not None else -1
            by_topic.setdefault(tp.topic, []).append(
                SRR.StopReplicaPartitionState(tp.partition, epoch if not delete else -2, delete)
            )
        return SRR(
            controller_id=self.controller_id,
            controller_epoch=ctx.epoch,
            broker_epoch=ctx.broker_epoch(broker_id),
            topic_states=[SRR.StopReplicaTopicState(t, ps) for t, ps in by_topic.items()],
        )
