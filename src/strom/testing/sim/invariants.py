"""The invariants the simulation checks after every step, and at the end of a run.

Safety, all the time:
- one leader per leader epoch: a partition's epoch is led, and written to, by one
  broker only;
- leader epochs only grow: in ZooKeeper (with the partition epoch) and on every
  broker's replica; the ISR is a non-empty subset of the replicas, with the leader
  in it;
- an election is clean unless unclean.leader.election.enable allows it (after an
  unclean election, the records acknowledged before it may be lost);
- log matching: two logs holding a record with the same offset and leader epoch
  hold the same records up to it (so a follower that truncated is a prefix of the
  log of the leader it follows);
- the high watermark of a leader never moves back within its leader epoch;
- no record below a high watermark a client saw (acknowledged acks=all, or below a
  leader's high watermark) is lost by a clean election: the leader of an epoch holds
  every record acknowledged in an earlier epoch at its offset, and the log prefix
  below every high watermark an earlier epoch's leader reached (a leader that learns
  of its epoch late, after later epochs committed records, is already deposed); no
  offset is acknowledged with two different records;
- one controller per controller epoch writes to ZooKeeper.

At the end (:meth:`Checker.check_final`, everything healed and quiet): every
partition has a live leader whose ISR is all its replicas, every replica's log
equals the leader's, the high watermark is the log end, and every acknowledged
record is there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from strom.common.types import TopicPartition
from strom.metadata.image import LeaderAndIsr
from strom.metadata.zk import data as zd
from strom.replication.partition import Partition
from strom.testing.sim.memlog import MemoryLog
from strom.testing.sim.zk import NONE_SESSION

if TYPE_CHECKING:
    from strom.testing.sim.node import SimNode
    from strom.testing.sim.world import World


class Violation(AssertionError):
    """An invariant does not hold."""


class _Observer:
    def __init__(self, checker: Checker, node_id: int) -> None:
        self.checker = checker
        self.node_id = node_id

    def on_controller_write(self, epoch: int) -> None:
        self.checker.on_controller_write(self.node_id, epoch)

    def on_partition_state(self, tp: TopicPartition, state: LeaderAndIsr) -> None:
        self.checker.on_partition_state(self.node_id, tp, state)


class Checker:
    def __init__(self, unclean_allowed: bool = False) -> None:
        self.unclean_allowed = unclean_allowed
        self.world: World | None = None
        self.chain: dict[tuple[TopicPartition, int, int], int] = {}
        self.epoch_leader: dict[tuple[TopicPartition, int], int] = {}
        # tp -> offset -> (record, the leader epoch in which it was acknowledged)
        self.acked: dict[TopicPartition, dict[int, tuple[int, int]]] = {}
        self.acks = 0
        # tp -> the leader epoch of its last unclean election: records acknowledged
        # before it may be lost (and their offsets acknowledged again)
        self.unclean: dict[TopicPartition, int] = {}
        self.states: dict[TopicPartition, LeaderAndIsr] = {}
        self.controller_of_epoch: dict[int, int] = {}
        self.replica_epoch: dict[tuple[int, int, TopicPartition], int] = {}
        self.leader_hw: dict[tuple[int, int, TopicPartition, int], int] = {}
        # tp -> leader epoch -> (the highest high watermark its leader showed, the chain
        # hash of the log up to it): what later leaders must hold
        self.committed: dict[TopicPartition, dict[int, tuple[int, int]]] = {}
        self.elections = 0
        self._zxid = -1

    def store_observer(self, node_id: int) -> _Observer:
        return _Observer(self, node_id)

    # -- hooks -------------------------------------------------------------------------
    def on_append(self, log: MemoryLog, first: int) -> None:
        tp = log.key
        for o in range(first, log.log_end_offset):
            key = (tp, o, log.epochs[o])
            h = self.chain.setdefault(key, log.chain[o])
            if h != log.chain[o]:
                raise Violation(
                    f"log matching: {log.name} holds offset {o} of leader epoch {log.epochs[o]} "
                    f"after records that differ from another replica's"
                )

    def on_leader(self, node: SimNode, tp: TopicPartition, part: Partition[MemoryLog]) -> None:
        """``node`` became leader of ``tp`` with a new leader epoch."""
        epoch = part.leader_epoch
        first = self.epoch_leader.setdefault((tp, epoch), node.id)
        if first != node.id:
            raise Violation(f"two leaders of {tp} in leader epoch {epoch}: {first} and {node.id}")
        self.elections += 1
        log = part.log
        self.check_committed(tp, log, epoch, f"broker {node.id}")
        for offset, (value, acked_in) in sorted(self.acked.get(tp, {}).items()):
            if acked_in >= epoch:
                continue  # acknowledged by a later leader: this one is already deposed
            if offset >= log.log_end_offset or log.values[offset] != value:
                raise Violation(
                    f"record {value} acknowledged at {tp} offset {offset} in leader epoch "
                    f"{acked_in} is not on broker {node.id}, the leader of epoch {epoch} "
                    f"(log end {log.log_end_offset})"
                )

    def on_leader_append(
        self, node: SimNode, tp: TopicPartition, part: Partition[MemoryLog]
    ) -> None:
        leader = self.epoch_leader.get((tp, part.leader_epoch))
        if leader != node.id:
            epoch = part.leader_epoch
            raise Violation(
                f"broker {node.id} wrote to {tp} in leader epoch {epoch} led by {leader}"
            )

    def on_high_watermark(
        self, node: SimNode, tp: TopicPartition, part: Partition[MemoryLog]
    ) -> None:
        self._check_hw(node, tp, part)

    def _check_hw(self, node: SimNode, tp: TopicPartition, part: Partition[MemoryLog]) -> None:
        if not part.is_leader:
            return
        key = (node.id, node.incarnation, tp, part.leader_epoch)
        last = self.leader_hw.get(key, -1)
        hw = part.high_watermark
        if hw < last:
            raise Violation(
                f"high watermark of {tp} on broker {node.id} (leader epoch {part.leader_epoch}) "
                f"went back from {last} to {hw}"
            )
        self.leader_hw[key] = hw
        if hw > last and hw > 0:
            self._committed(tp, part.leader_epoch, hw, part.log)

    def _committed(self, tp: TopicPartition, epoch: int, hw: int, log: MemoryLog) -> None:
        """The leader of ``epoch`` showed the high watermark ``hw``: its first ``hw``
        records are committed (clients may have read them)."""
        if epoch < self.unclean.get(tp, -1):
            return
        by_epoch = self.committed.setdefault(tp, {})
        if by_epoch.get(epoch, (0, 0))[0] < hw:
            by_epoch[epoch] = (hw, log.chain[hw - 1])

    def check_committed(self, tp: TopicPartition, log: MemoryLog, epoch: int, who: str) -> None:
        """``log`` (of ``who``, leading ``epoch``) holds what earlier epochs committed."""
        for committed_in, (hw, chain) in sorted(self.committed.get(tp, {}).items()):
            if committed_in >= epoch:
                continue
            if log.log_end_offset < hw or log.chain[hw - 1] != chain:
                raise Violation(
                    f"{who}, the leader of {tp} epoch {epoch}, lacks records below the high "
                    f"watermark {hw} of epoch {committed_in} (its log end {log.log_end_offset})"
                )

    def on_stop(self, node: SimNode, tp: TopicPartition) -> None:
        self.replica_epoch.pop((node.id, node.incarnation, tp), None)

    def on_ack(self, tp: TopicPartition, offset: int, value: int, leader_epoch: int) -> None:
        """A producer got NONE for ``value`` at ``offset`` from the leader of
        ``leader_epoch`` (its epoch when the high watermark passed the record)."""
        if leader_epoch < self.unclean.get(tp, -1):
            return  # acknowledged before an unclean election: may be lost
        acked = self.acked.setdefault(tp, {})
        before, _ = acked.setdefault(offset, (value, leader_epoch))
        if before != value:
            raise Violation(
                f"{tp} offset {offset} acknowledged twice: records {before} and {value}"
            )
        self.acks += 1

    def on_controller_write(self, node_id: int, epoch: int) -> None:
        first = self.controller_of_epoch.setdefault(epoch, node_id)
        if first != node_id:
            raise Violation(
                f"controllers {first} and {node_id} both wrote in controller epoch {epoch}"
            )
        assert self.world is not None
        latest = zd.decode_controller_epoch(self.world.zk.nodes[zd.CONTROLLER_EPOCH].data)
        if epoch != latest:
            raise Violation(
                f"controller {node_id} of epoch {epoch} wrote after epoch {latest} began"
            )

    def on_partition_state(self, node_id: int, tp: TopicPartition, state: LeaderAndIsr) -> None:
        last = self.states.get(tp)
        self.states[tp] = state
        if last is None:
            return
        if state.leader_epoch < last.leader_epoch or state.zk_version <= last.zk_version:
            raise Violation(f"{tp}: state {state} written after {last}")
        if state.leader >= 0 and state.leader != last.leader and state.leader not in last.isr:
            if not self.unclean_allowed:
                raise Violation(f"{tp}: unclean election of {state.leader} (ISR was {last.isr})")
            self.unclean[tp] = state.leader_epoch
            self.committed.pop(tp, None)
            acked = self.acked.get(tp, {})
            self.acked[tp] = {o: a for o, a in acked.items() if a[1] >= state.leader_epoch}

    # -- after every step --------------------------------------------------------------
    def check_step(self) -> None:
        world = self.world
        assert world is not None
        if world.zk.zxid != self._zxid:
            self._zxid = world.zk.zxid
            self._check_zk(world)
        for node in world.nodes.values():
            if not node.up:
                continue
            for tp, part in node.partitions.items():
                key = (node.id, node.incarnation, tp)
                last = self.replica_epoch.get(key, -1)
                if part.leader_epoch < last:
                    raise Violation(
                        f"broker {node.id}: leader epoch of {tp} went back from {last} to "
                        f"{part.leader_epoch}"
                    )
                self.replica_epoch[key] = part.leader_epoch
                if part.is_leader:
                    self._check_hw(node, tp, part)
                    if not set(part.isr) <= set(part.replicas):
                        raise Violation(
                            f"broker {node.id}: ISR {part.isr} of {tp} not in {part.replicas}"
                        )

    def _check_zk(self, world: World) -> None:
        zk, topic = world.zk, world.config.topic
        raw = zk.nodes.get(zd.topic_path(topic))
        if raw is None:
            return
        assignment = zd.decode_topic(raw.data)
        for p, replicas in assignment.replicas.items():
            tp = TopicPartition(topic, p)
            path = zd.partition_state_path(tp)
            if path not in zk.nodes:
                continue
            data, stat = zk.get(NONE_SESSION, path)
            state = zd.decode_partition_state(data, stat.version)
            if not state.isr or not set(state.isr) <= set(replicas):
                raise Violation(f"{tp}: ISR {state.isr} is not a subset of replicas {replicas}")
            if state.leader >= 0 and state.leader not in state.isr:
                raise Violation(f"{tp}: leader {state.leader} not in ISR {state.isr}")
