"""The cluster controller (Kafka's ZooKeeper-mode KafkaController), without its IO.

One broker at a time is the controller. It keeps a ControllerContext built from
its store, reacts to events (brokers coming and going, new topics and
partitions, deletions, ISR changes reported with AlterPartition, controlled
shutdown, elections, reassignments), writes partition states through its store
(fenced by the controller epoch) and tells brokers what changed with
LeaderAndIsr, UpdateMetadata and StopReplica through its channel. Methods run
one at a time on the controller's own thread; none reads a clock or a socket.

State changes follow Kafka's partition state machine: a partition is *new*
(no state yet), *online* (a live leader), *offline* (no live leader) or being
deleted; every leader change bumps the leader epoch, and every write bumps
the state znode's version, which is the partition epoch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from strom.common.types import TopicPartition
from strom.controller.batch import RequestBatch
from strom.controller.context import NO_LEADER, ControllerContext, ReplicaAssignment
from strom.controller.election import (
    controlled_shutdown_leader,
    offline_partition_leader,
    preferred_replica_leader,
)
from strom.controller.ports import ControllerChannel, ControllerStore
from strom.metadata.image import LeaderAndIsr, TopicAssignment

log = logging.getLogger(__name__)

StateChange = Callable[[TopicPartition, LeaderAndIsr], LeaderAndIsr | None]
WRITE_RETRIES = 3


@dataclass(frozen=True, slots=True)
class ControllerConfig:
    unclean_leader_election: bool = False
    delete_topic_enable: bool = True
    auto_leader_rebalance: bool = True
    leader_imbalance_percentage: int = 10


class ControllerCore:
    """State, store, channel and the partition state machine shared by the features."""

    def __init__(
        self,
        broker_id: int,
        epoch: int,
        store: ControllerStore,
        channel: ControllerChannel,
        config: ControllerConfig,
        inter_broker_listener: str,
    ) -> None:
        self.broker_id = broker_id
        self.ctx = ControllerContext(epoch=epoch)
        self.store = store
        self.channel = channel
        self.config = config
        self.listener = inter_broker_listener

    def new_batch(self) -> RequestBatch:
        return RequestBatch(self.broker_id, self.listener)

    def send(self, batch: RequestBatch) -> None:
        if not batch.is_empty():
            batch.send(self.ctx, self.channel)

    # -- reading the store ------------------------------------------------------------
    def load_topic(self, topic: str) -> list[TopicPartition]:
        """Read a topic's assignment into the context; the partitions it has."""
        znode = self.store.topic_assignment(topic)
        if znode is None:
            return []
        if znode.topic_id is not None:
            self.ctx.topic_ids[topic] = znode.topic_id
        tps = []
        for p, replicas in sorted(znode.replicas.items()):
            tp = TopicPartition(topic, p)
            self.ctx.assignments[tp] = ReplicaAssignment(
                replicas, znode.adding.get(p, ()), znode.removing.get(p, ())
            )
            tps.append(tp)
        return tps

    def write_assignment(self, topic: str) -> None:
        replicas, adding, removing = {}, {}, {}
        for tp in self.ctx.partitions_of(topic):
            a = self.ctx.assignments[tp]
            replicas[tp.partition] = a.replicas
            adding[tp.partition] = a.adding
            removing[tp.partition] = a.removing
        znode = TopicAssignment(self.ctx.topic_ids.get(topic), replicas, adding, removing)
        self.store.set_topic_assignment(topic, znode)

    def unclean_allowed(self, topic: str) -> bool:
        value = self.store.topic_configs(topic).get("unclean.leader.election.enable")
        if value is None:
            value = self.store.default_broker_configs().get("unclean.leader.election.enable")
        if value is None:
            return self.config.unclean_leader_election
        return value.strip().lower() == "true"

    # -- writing partition states ------------------------------------------------------
    def new_state(self, current: LeaderAndIsr, leader: int, isr: Iterable[int]) -> LeaderAndIsr:
        """The next state: a new leader epoch, this controller's epoch, the same version
        expected (the write bumps it)."""
        return LeaderAndIsr(
            leader, current.leader_epoch + 1, tuple(isr), self.ctx.epoch, current.zk_version
        )

    def change_states(
        self, tps: Iterable[TopicPartition], change: StateChange
    ) -> set[TopicPartition]:
        """Apply ``change(tp, current)`` (None: no change) with conditional writes,
        re-reading a partition whose version moved; the partitions written."""
        pending = [tp for tp in tps if tp in self.ctx.states]
        written: set[TopicPartition] = set()
        for _ in range(WRITE_RETRIES):
            wanted = {}
            for tp in pending:
                new = change(tp, self.ctx.states[tp])
                if new is not None:
                    wanted[tp] = new
            if not wanted:
                break
            results = self.store.update_partition_states(wanted)
            stale = []
            for tp, result in results.items():
                if result is None:
                    stale.append(tp)
                else:
                    self.ctx.states[tp] = result
                    written.add(tp)
            if not stale:
                break
            self.ctx.states.update(self.store.partition_states(stale))
            pending = stale
        return written

    def elect_offline(self, tps: Iterable[TopicPartition], batch: RequestBatch) -> None:
        """Offline partitions (no live leader) get the first live in-sync replica; an
        unclean election only where allowed; the others stay offline (leader -1)."""
        live = self.ctx.live_not_shutting_down()

        def change(tp: TopicPartition, cur: LeaderAndIsr) -> LeaderAndIsr | None:
            if self.ctx.is_live(cur.leader) and cur.leader not in self.ctx.shutting_down:
                return None
            assignment = self.ctx.replicas(tp)
            election, unclean = offline_partition_leader(
                assignment, cur.isr, live, self.unclean_allowed(tp.topic)
            )
            if election is None:
                if cur.leader == NO_LEADER:
                    return None
                return self.new_state(cur, NO_LEADER, cur.isr)  # offline: keep the ISR
            if unclean:
                log.warning("unclean leader election for %s: broker %d", tp, election[0])
            return self.new_state(cur, *election)

        for tp in self.change_states(tps, change):
            batch.add_leader_and_isr(self.live_replicas(tp), tp)

    def live_replicas(self, tp: TopicPartition) -> list[int]:
        return [r for r in self.ctx.replicas(tp) if self.ctx.is_live(r)]

    def remove_replica_from_isr(
        self, broker_id: int, tps: Iterable[TopicPartition], batch: RequestBatch
    ) -> None:
        """A replica going offline leaves the ISR (never the last member); if it led,
        the partition is left leaderless for :meth:`elect_offline`."""

        def change(tp: TopicPartition, cur: LeaderAndIsr) -> LeaderAndIsr | None:
            if broker_id not in cur.isr and cur.leader != broker_id:
                return None
            isr = cur.isr if len(cur.isr) == 1 else tuple(r for r in cur.isr if r != broker_id)
            leader = NO_LEADER if cur.leader == broker_id else cur.leader
            return self.new_state(cur, leader, isr)

        for tp in self.change_states(tps, change):
            batch.add_leader_and_isr([r for r in self.live_replicas(tp) if r != broker_id], tp)

    def init_new_partitions(self, tps: Iterable[TopicPartition], batch: RequestBatch) -> None:
        """New partitions: the first live replica leads, the live replicas form the ISR
        (a partition with no live replica waits for one)."""
        states = {}
        for tp in tps:
            live = self.live_replicas(tp)
            live = [r for r in live if r not in self.ctx.shutting_down] or live
            if live:
                states[tp] = LeaderAndIsr(live[0], 0, tuple(live), self.ctx.epoch, 0)
        if not states:
            return
        created = self.store.create_partition_states(states)
        missing = [tp for tp in states if tp not in created]
        self.ctx.states.update(created)
        if missing:  # created meanwhile by a previous controller: read them
            self.ctx.states.update(self.store.partition_states(missing))
        for tp in created:
            batch.add_leader_and_isr(self.live_replicas(tp), tp, is_new=True)
        batch.add_update_metadata(states)

    def preferred_election(
        self, tps: Iterable[TopicPartition], batch: RequestBatch
    ) -> set[TopicPartition]:
        """Move leadership to the preferred replica where it is live and in sync."""
        live = self.ctx.live_not_shutting_down()

        def change(tp: TopicPartition, cur: LeaderAndIsr) -> LeaderAndIsr | None:
            election = preferred_replica_leader(self.ctx.replicas(tp), cur.isr, live)
            if election is None or election[0] == cur.leader:
                return None
            return self.new_state(cur, *election)

        written = self.change_states(tps, change)
        for tp in written:
            batch.add_leader_and_isr(self.live_replicas(tp), tp)
        return written

    def shutdown_election(self, tps: Iterable[TopicPartition], batch: RequestBatch) -> None:
        live = self.ctx.live_or_shutting_down()
        down = self.ctx.shutting_down

        def change(tp: TopicPartition, cur: LeaderAndIsr) -> LeaderAndIsr | None:
            if cur.leader not in down:
                return None
            election = controlled_shutdown_leader(self.ctx.replicas(tp), cur.isr, live, down)
            return self.new_state(cur, *election) if election is not None else None

        for tp in self.change_states(tps, change):
            batch.add_leader_and_isr(self.live_replicas(tp), tp)

    def register_topic_states(self, tps: Mapping[TopicPartition, LeaderAndIsr]) -> None:
        self.ctx.states.update(tps)
