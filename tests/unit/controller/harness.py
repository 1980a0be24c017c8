"""A controller over the ZooKeeper model with a channel that records what it sends."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from strom.common.types import TopicPartition
from strom.controller.controller import ControllerConfig
from strom.controller.reassign import Controller
from strom.metadata.image import BrokerInfo, LeaderAndIsr
from strom.metadata.store import BROKERS
from strom.metadata.zk import data as zd
from strom.protocol.generated.alter_partition import AlterPartitionRequest
from strom.protocol.generated.leader_and_isr import LeaderAndIsrRequest
from strom.protocol.generated.stop_replica import StopReplicaRequest, StopReplicaResponse
from strom.protocol.generated.update_metadata import UpdateMetadataRequest
from strom.testing.sim import store as zs
from strom.testing.sim.zk import NONE_SESSION, ZkModel

NOW = 1_000_000
LAIState = LeaderAndIsrRequest.LeaderAndIsrPartitionState
UMState = UpdateMetadataRequest.UpdateMetadataPartitionState


@dataclass
class Sent:
    broker_id: int
    request: Any
    on_response: Callable[[Any], None] | None


class RecordingChannel:
    def __init__(self) -> None:
        self.brokers: dict[int, BrokerInfo] = {}
        self.sent: list[Sent] = []

    def add_broker(self, info: BrokerInfo) -> None:
        self.brokers[info.node_id] = info

    def remove_broker(self, broker_id: int) -> None:
        self.brokers.pop(broker_id, None)

    def send(self, broker_id: int, request: Any, on_response: Any = None) -> None:
        self.sent.append(Sent(broker_id, request, on_response))

    def clear(self) -> None:
        self.sent.clear()

    def of(self, kind: type, broker_id: int | None = None) -> list[Sent]:
        return [
            s
            for s in self.sent
            if isinstance(s.request, kind) and (broker_id is None or s.broker_id == broker_id)
        ]

    def leader_and_isr(self, broker_id: int) -> dict[TopicPartition, LAIState]:
        """The partition states sent to ``broker_id`` in LeaderAndIsr (latest wins)."""
        out = {}
        for s in self.of(LeaderAndIsrRequest, broker_id):
            for ts in s.request.topic_states:
                for ps in ts.partition_states:
                    out[TopicPartition(ts.topic_name, ps.partition_index)] = ps
        return out

    def update_metadata(self, broker_id: int) -> dict[TopicPartition, UMState]:
        out = {}
        for s in self.of(UpdateMetadataRequest, broker_id):
            for ts in s.request.topic_states:
                for ps in ts.partition_states:
                    out[TopicPartition(ts.topic_name, ps.partition_index)] = ps
        return out

    def stop_replica(self, broker_id: int) -> dict[TopicPartition, bool]:
        out = {}
        for s in self.of(StopReplicaRequest, broker_id):
            for ts in s.request.topic_states:
                for ps in ts.partition_states:
                    out[TopicPartition(ts.topic_name, ps.partition_index)] = ps.delete_partition
        return out

    def answer_stop_replicas(self, broker_id: int, error_code: int = 0) -> None:
        """Answer every StopReplica sent to ``broker_id`` (once)."""
        for s in self.of(StopReplicaRequest, broker_id):
            if s.on_response is not None:
                cb, s.on_response = s.on_response, None
                cb(StopReplicaResponse(error_code=error_code))


def sim_store(model: ZkModel, session: int, broker_id: int) -> zs.SimControllerStore:
    elected = zs.elect(model, session, broker_id)
    assert elected is not None, "another controller is registered"
    return zs.SimControllerStore(model, session, *elected)


class Harness:
    """Brokers with ZooKeeper sessions, topics in the model, controllers on top."""

    def __init__(self, brokers: Sequence[int] = (1, 2, 3), racks: Mapping[int, str] | None = None):
        self.model = ZkModel()
        zs.setup_paths(self.model)
        self.sessions: dict[int, int] = {}
        self.racks = dict(racks or {})
        self.controller_sessions: dict[int, int] = {}
        self.store_factory: Callable[[ZkModel, int, int], Any] = sim_store
        for b in brokers:
            self.start_broker(b)

    def start_broker(self, broker_id: int) -> int:
        sid = self.model.open_session(6000, NOW)
        self.sessions[broker_id] = sid
        return zs.register_broker(self.model, sid, broker_id, self.racks.get(broker_id))

    def stop_broker(self, broker_id: int) -> None:
        self.model.close_session(self.sessions.pop(broker_id))

    def broker_epoch(self, broker_id: int) -> int:
        return self.model.nodes[f"{zd.BROKER_IDS}/{broker_id}"].czxid

    def create_topic(
        self,
        name: str,
        replicas: Mapping[int, Sequence[int]],
        configs: Mapping[str, str] | None = None,
    ) -> None:
        zs.create_topic(self.model, name, replicas, bytes(range(16)), configs)

    def set_cluster_default(self, configs: Mapping[str, str]) -> None:
        zs.set_config(self.model, BROKERS, "", configs)

    def elect(self, broker_id: int, config: ControllerConfig | None = None) -> Controller:
        """``broker_id`` wins the election and fails over."""
        sid = self.model.open_session(6000, NOW)  # its own: the broker may die in a test
        self.controller_sessions[broker_id] = sid
        store = self.store_factory(self.model, sid, broker_id)
        c = Controller(
            broker_id,
            store.epoch,
            store,
            RecordingChannel(),
            config or ControllerConfig(),
            "PLAINTEXT",
        )
        c.on_failover()
        return c

    def resign(self, broker_id: int) -> None:
        """The controller's session ends (its /controller znode goes)."""
        self.model.close_session(self.controller_sessions.pop(broker_id))

    def state(self, topic: str, partition: int) -> LeaderAndIsr:
        raw, stat = self.model.get(
            NONE_SESSION, zd.partition_state_path(TopicPartition(topic, partition))
        )
        return zd.decode_partition_state(raw, stat.version)

    def assignment(self, topic: str) -> Any:
        return zd.decode_topic(self.model.get(NONE_SESSION, zd.topic_path(topic))[0])


def channel(c: Controller) -> RecordingChannel:
    ch = c.channel
    assert isinstance(ch, RecordingChannel)
    return ch


def alter_partition(
    c: Controller,
    broker_id: int,
    tp: TopicPartition,
    new_isr: Sequence[int],
    leader_epoch: int,
    partition_epoch: int,
    broker_epoch: int,
    version: int = 2,
) -> Any:
    """An AlterPartition for one partition (by topic id from version 2)."""
    req = AlterPartitionRequest(
        broker_id=broker_id,
        broker_epoch=broker_epoch,
        topics=[
            AlterPartitionRequest.TopicData(
                topic_name=tp.topic,
                topic_id=c.ctx.topic_ids.get(tp.topic, bytes(16)),
                partitions=[
                    AlterPartitionRequest.PartitionData(
                        partition_index=tp.partition,
                        leader_epoch=leader_epoch,
                        new_isr=list(new_isr),
                        partition_epoch=partition_epoch,
                    )
                ],
            )
        ],
    )
    return c.alter_partition(req, version)
