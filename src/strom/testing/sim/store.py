"""The controller's store over the ZooKeeper model: Kafka's znodes and JSON (the
formats of strom.metadata.zk.data), the controller election multi and every write
fenced by a check of the ``/controller_epoch`` version, as
strom.metadata.zk.controller_store does it through kazoo. Also the few writes that
brokers and admin tools make (registration, topics, deletion and reassignment
requests), for the tests and the simulation.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Protocol

from strom.common.errors import ControllerMovedError, MetadataUnavailableError
from strom.common.types import TopicPartition
from strom.metadata.image import BrokerInfo, Endpoint, LeaderAndIsr, TopicAssignment
from strom.metadata.store import BROKERS, TOPICS
from strom.metadata.zk import data as zd
from strom.testing.sim import zk
from strom.testing.sim.zk import Check, Create, Delete, NodeExists, NoNode, Op, SetData, ZkModel

LISTENER = "PLAINTEXT"


def setup_paths(model: ZkModel) -> None:
    """What every broker creates at start (Kafka's persistent paths)."""
    for path in zd.PERSISTENT_PATHS:
        model.ensure_path(zk.NONE_SESSION, path)
    model.ensure_path(zk.NONE_SESSION, "/admin")


def broker_info(broker_id: int, rack: str | None = None) -> BrokerInfo:
    ep = Endpoint(LISTENER, f"broker{broker_id}", 9092, "PLAINTEXT")
    return BrokerInfo(broker_id, (ep,), rack)


def register_broker(model: ZkModel, session: int, broker_id: int, rack: str | None = None) -> int:
    """The ephemeral /brokers/ids/<id>; the broker epoch (its czxid). NodeExists while
    an earlier session still holds it."""
    info = broker_info(broker_id, rack)
    path = f"{zd.BROKER_IDS}/{broker_id}"
    model.create(session, path, zd.encode_broker(info.endpoints, rack), ephemeral=True)
    return model.get(session, path)[1].czxid


def controller_id(model: ZkModel) -> int:
    node = model.nodes.get(zd.CONTROLLER)
    return zd.decode_controller(node.data) if node is not None else -1


def elect(model: ZkModel, session: int, broker_id: int) -> tuple[int, int] | None:
    """Kafka's registerControllerAndIncrementControllerEpoch: (epoch, epoch znode
    version) when this broker became controller, None when another one is."""
    while True:
        if model.exists(session, zd.CONTROLLER) is not None:
            return None
        try:
            raw, stat = model.get(session, zd.CONTROLLER_EPOCH)
        except NoNode:
            with contextlib.suppress(NodeExists):
                model.create(session, zd.CONTROLLER_EPOCH, zd.encode_controller_epoch(0))
            continue
        epoch = zd.decode_controller_epoch(raw) + 1
        results = model.multi(
            session,
            [
                Create(zd.CONTROLLER, zd.encode_controller(broker_id), ephemeral=True),
                SetData(zd.CONTROLLER_EPOCH, zd.encode_controller_epoch(epoch), stat.version),
            ],
        )
        if isinstance(results[0], NodeExists):
            return None
        second = results[1]
        if isinstance(second, zk.Stat):
            return epoch, second.version
        # the epoch moved meanwhile: read again


def create_topic(
    model: ZkModel,
    topic: str,
    replicas: Mapping[int, Sequence[int]],
    topic_id: bytes,
    configs: Mapping[str, str] | None = None,
) -> None:
    """What CreateTopics writes: the topic's configs, then its assignment."""
    model.create(zk.NONE_SESSION, zd.config_path(TOPICS, topic), zd.encode_config(configs or {}))
    assignment = TopicAssignment(topic_id, {p: tuple(r) for p, r in replicas.items()})
    model.create(zk.NONE_SESSION, zd.topic_path(topic), zd.encode_topic(assignment))


def add_partitions(model: ZkModel, topic: str, replicas: Mapping[int, Sequence[int]]) -> None:
    """CreatePartitions: the assignment znode with more partitions."""
    current = zd.decode_topic(model.get(zk.NONE_SESSION, zd.topic_path(topic))[0])
    merged = dict(current.replicas) | {p: tuple(r) for p, r in replicas.items()}
    znode = TopicAssignment(current.topic_id, merged, current.adding, current.removing)
    model.set(zk.NONE_SESSION, zd.topic_path(topic), zd.encode_topic(znode))


def request_deletion(model: ZkModel, topic: str) -> None:
    model.create(zk.NONE_SESSION, f"{zd.DELETE_TOPICS}/{topic}")


def set_config(model: ZkModel, entity_type: str, name: str, configs: Mapping[str, str]) -> None:
    path = zd.config_path(entity_type, name)
    if path in model.nodes:
        model.set(zk.NONE_SESSION, path, zd.encode_config(configs))
    else:
        model.create(zk.NONE_SESSION, path, zd.encode_config(configs), makepath=True)


class StoreObserver(Protocol):
    """Sees every committed write of a controller (the simulation's invariants)."""

    def on_controller_write(self, epoch: int) -> None: ...

    def on_partition_state(self, tp: TopicPartition, state: LeaderAndIsr) -> None: ...


class SimControllerStore:
    """strom.controller.ports.ControllerStore over the model. ``reachable()`` False
    (the broker is cut off from ZooKeeper) and an expired session make every call
    raise MetadataUnavailableError, as a timed-out kazoo call does."""

    def __init__(
        self,
        model: ZkModel,
        session: int,
        epoch: int,
        epoch_zk_version: int,
        reachable: Callable[[], bool] = lambda: True,
        observer: StoreObserver | None = None,
    ) -> None:
        self.model = model
        self.observer = observer
        self.session = session
        self.epoch = epoch
        self.epoch_zk_version = epoch_zk_version
        self.reachable = reachable
        self.writes = 0  # multi operations committed (for the tests)

    def _check(self) -> None:
        if not self.reachable() or not self.model.is_alive(self.session):
            raise MetadataUnavailableError("ZooKeeper is not reachable")

    def _get(self, path: str) -> tuple[bytes, zk.Stat] | None:
        self._check()
        try:
            return self.model.get(self.session, path)
        except NoNode:
            return None

    def _children(self, path: str) -> list[str]:
        self._check()
        try:
            return self.model.children(self.session, path)
        except NoNode:
            return []

    def _fenced(self, ops: Sequence[Op]) -> list[zk.OpResult]:
        self._check()
        results = self.model.multi(
            self.session, [Check(zd.CONTROLLER_EPOCH, self.epoch_zk_version), *ops]
        )
        first = results[0]
        if isinstance(first, zk.ZkError) and not isinstance(first, zk.RolledBack):
            raise ControllerMovedError(
                f"the controller epoch znode is no longer at version {self.epoch_zk_version}"
            )
        if not isinstance(first, zk.ZkError):
            self.writes += 1
            if self.observer is not None:
                self.observer.on_controller_write(self.epoch)
        return results[1:]

    # -- reads -------------------------------------------------------------------------
    def live_brokers(self) -> dict[int, BrokerInfo]:
        out = {}
        for name in self._children(zd.BROKER_IDS):
            found = self._get(f"{zd.BROKER_IDS}/{name}")
            if found is not None:
                endpoints, rack = zd.decode_broker(found[0])
                out[int(name)] = BrokerInfo(int(name), endpoints, rack, found[1].czxid)
        return out

    def topic_names(self) -> set[str]:
        return set(self._children(zd.TOPICS))

    def topic_assignment(self, topic: str) -> TopicAssignment | None:
        found = self._get(zd.topic_path(topic))
        return zd.decode_topic(found[0]) if found is not None else None

    def partition_states(self, tps: Iterable[TopicPartition]) -> dict[TopicPartition, LeaderAndIsr]:
        out = {}
        for tp in tps:
            found = self._get(zd.partition_state_path(tp))
            if found is not None:
                out[tp] = zd.decode_partition_state(found[0], found[1].version)
        return out

    def topics_to_delete(self) -> set[str]:
        return set(self._children(zd.DELETE_TOPICS))

    def _config(self, entity_type: str, name: str) -> dict[str, str]:
        found = self._get(zd.config_path(entity_type, name))
        return zd.decode_config(found[0]) if found is not None else {}

    def topic_configs(self, topic: str) -> Mapping[str, str]:
        return self._config(TOPICS, topic)

    def default_broker_configs(self) -> Mapping[str, str]:
        return self._config(BROKERS, "")

    def reassignment_request(self) -> dict[TopicPartition, tuple[int, ...]] | None:
        found = self._get(zd.REASSIGN_PARTITIONS)
        return zd.decode_reassignment(found[0]) if found is not None else None

    def preferred_election_request(self) -> set[TopicPartition] | None:
        found = self._get(zd.PREFERRED_ELECTION)
        return zd.decode_partitions(found[0]) if found is not None else None

    def isr_change_notifications(self) -> list[tuple[str, set[TopicPartition]]]:
        out = []
        for name in self._children(zd.ISR_CHANGES):
            found = self._get(f"{zd.ISR_CHANGES}/{name}")
            if found is not None:
                out.append((name, zd.decode_partitions(found[0])))
        return out

    # -- fenced writes -----------------------------------------------------------------
    def create_partition_states(
        self, states: Mapping[TopicPartition, LeaderAndIsr]
    ) -> dict[TopicPartition, LeaderAndIsr]:
        created = {}
        for tp, state in states.items():
            self._check()
            self.model.ensure_path(
                self.session, f"{zd.TOPICS}/{tp.topic}/partitions/{tp.partition}"
            )
            path = zd.partition_state_path(tp)
            result = self._fenced([Create(path, zd.encode_partition_state(state))])[0]
            if not isinstance(result, zk.ZkError):
                created[tp] = LeaderAndIsr(
                    state.leader, state.leader_epoch, state.isr, state.controller_epoch, 0
                )
                if self.observer is not None:
                    self.observer.on_partition_state(tp, created[tp])
        return created

    def update_partition_states(
        self, states: Mapping[TopicPartition, LeaderAndIsr]
    ) -> dict[TopicPartition, LeaderAndIsr | None]:
        out: dict[TopicPartition, LeaderAndIsr | None] = {}
        for tp, s in states.items():
            op = SetData(zd.partition_state_path(tp), zd.encode_partition_state(s), s.zk_version)
            result = self._fenced([op])[0]
            if isinstance(result, zk.Stat):
                out[tp] = written = LeaderAndIsr(
                    s.leader, s.leader_epoch, s.isr, s.controller_epoch, result.version
                )
                if self.observer is not None:
                    self.observer.on_partition_state(tp, written)
            else:
                out[tp] = None
        return out

    def set_topic_assignment(self, topic: str, assignment: TopicAssignment) -> None:
        self._fenced([SetData(zd.topic_path(topic), zd.encode_topic(assignment))])

    def _subtree(self, path: str) -> list[str]:
        out: list[str] = []
        if path not in self.model.nodes:
            return out
        for child in self._children(path):
            out += self._subtree(f"{path}/{child}")
        return [*out, path]

    def delete_topic(self, topic: str) -> None:
        paths = self._subtree(zd.topic_path(topic))
        for extra in (zd.config_path(TOPICS, topic), f"{zd.DELETE_TOPICS}/{topic}"):
            if extra in self.model.nodes:
                paths.append(extra)
        if paths and any(
            isinstance(r, zk.ZkError) for r in self._fenced([Delete(p) for p in paths])
        ):
            self.delete_topic(topic)

    def set_reassignment_request(self, remaining: Mapping[TopicPartition, tuple[int, ...]]) -> None:
        if remaining:
            self._fenced([SetData(zd.REASSIGN_PARTITIONS, zd.encode_reassignment(remaining))])
        elif zd.REASSIGN_PARTITIONS in self.model.nodes:
            self._fenced([Delete(zd.REASSIGN_PARTITIONS)])

    def delete_preferred_election_request(self) -> None:
        if zd.PREFERRED_ELECTION in self.model.nodes:
            self._fenced([Delete(zd.PREFERRED_ELECTION)])

    def delete_isr_change_notifications(self, names: Iterable[str]) -> None:
        for name in names:
            self._check()
            with contextlib.suppress(NoNode):
                self.model.delete(self.session, f"{zd.ISR_CHANGES}/{name}")
