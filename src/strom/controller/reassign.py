"""Partition reassignment (KIP-455) and leader elections on request.

A reassignment first adds the target replicas (the assignment holds the old and the
new ones, with ``adding``/``removing``), bumps the leader epoch so that the new
replicas start fetching, and waits until every target replica is in the ISR; then
it moves leadership into the target if needed, drops the removed replicas (they
get StopReplica with delete) and writes the target as the assignment. The legacy
``/admin/reassign_partitions`` znode starts the same steps and is emptied as the
partitions complete. ElectLeaders and the legacy preferred election znode move
leadership to the preferred replica, or elect an unclean leader on request.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from strom.common.types import TopicPartition
from strom.controller.context import ReplicaAssignment
from strom.controller.controller import StateChange
from strom.controller.election import offline_partition_leader, reassignment_leader
from strom.controller.topics import TopicEvents
from strom.metadata.image import LeaderAndIsr
from strom.protocol.errors import ErrorCode

log = logging.getLogger(__name__)

PREFERRED = 0
UNCLEAN = 1
Outcome = tuple[int, str | None]
ELECTION_NOT_NEEDED = (
    ErrorCode.ELECTION_NOT_NEEDED,
    "Leader election not needed for topic partition.",
)


class Controller(TopicEvents):
    """The whole controller: brokers, topics, deletion, ISR changes, reassignment,
    elections."""

    # -- reassignment -------------------------------------------------------------------
    def alter_reassignments(
        self, targets: Mapping[TopicPartition, tuple[int, ...] | None]
    ) -> dict[TopicPartition, Outcome]:
        out: dict[TopicPartition, Outcome] = {}
        for tp, target in targets.items():
            out[tp] = self._reassign(tp, target)
        return out

    def _reassign(self, tp: TopicPartition, target: tuple[int, ...] | None) -> Outcome:
        ctx = self.ctx
        if tp.topic not in ctx.topic_ids or tp.topic in ctx.topics_to_delete:
            return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"Unable to find a topic named {tp.topic}."
        current = ctx.assignments.get(tp)
        if current is None or tp not in ctx.states:
            return (
                ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                f"Unable to find partition {tp.topic}:{tp.partition}.",
            )
        if target is None:
            if not current.is_reassigning:
                return ErrorCode.NO_REASSIGNMENT_IN_PROGRESS, None
            self._cancel(tp, current)
            return ErrorCode.NONE, None
        problem = self._target_problem(target)
        if problem is not None:
            return ErrorCode.INVALID_REPLICA_ASSIGNMENT, problem
        if not current.is_reassigning and tuple(target) == current.replicas:
            return ErrorCode.NONE, None
        self._start(tp, tuple(target), current.original)
        return ErrorCode.NONE, None

    def _target_problem(self, target: tuple[int, ...]) -> str | None:
        if not target:
            return "The manual partition assignment includes an empty replica list."
        if len(set(target)) != len(target):
            return "The manual partition assignment includes duplicate broker ids."
        dead = [b for b in target if not self.ctx.is_live(b)]
        if dead:
            return (
                f"Replica assignment has brokers that are not alive. Replica list: "
                f"{list(target)}, live broker list: {sorted(self.ctx.live_brokers)}"
            )
        return None

    def _start(
        self, tp: TopicPartition, target: tuple[int, ...], original: tuple[int, ...]
    ) -> None:
        ctx = self.ctx
        replicas = target + tuple(r for r in original if r not in target)
        adding = tuple(r for r in target if r not in original)
        removing = tuple(r for r in original if r not in target)
        # replicas a reassignment in progress was adding that the new target drops
        # (Kafka's unneededReplicas): out of the ISR and stopped, as a cancel does
        unneeded = tuple(r for r in ctx.assignments[tp].replicas if r not in replicas)
        ctx.assignments[tp] = ReplicaAssignment(replicas, adding, removing)
        self.write_assignment(tp.topic)
        log.info(
            "reassigning %s to %s (adding %s, removing %s)",
            tp,
            list(target),
            list(adding),
            list(removing),
        )
        batch = self.new_batch()
        for w in self.change_states([tp], self._without(replicas, unneeded)):
            batch.add_leader_and_isr(self.live_replicas(w), w)
        for r in unneeded:
            if ctx.is_live(r):
                batch.add_stop_replica(r, tp, delete=True)
        self.send(batch)
        self.maybe_complete_reassignments([tp])

    def _without(self, replicas: tuple[int, ...], unneeded: tuple[int, ...]) -> StateChange:
        """A new leader epoch (the added replicas start fetching) with ``unneeded`` out
        of the ISR, and a leader among ``replicas`` if it was one of them."""
        live = self.ctx.live_not_shutting_down()

        def change(_tp: TopicPartition, cur: LeaderAndIsr) -> LeaderAndIsr | None:
            isr = tuple(r for r in cur.isr if r not in unneeded) or cur.isr
            if cur.leader not in unneeded:
                return self.new_state(cur, cur.leader, isr)
            election = reassignment_leader(replicas, isr, live)
            return self.new_state(cur, election[0] if election else -1, isr)

        return change

    def _cancel(self, tp: TopicPartition, current: ReplicaAssignment) -> None:
        ctx = self.ctx
        original = current.original
        ctx.assignments[tp] = ReplicaAssignment(original)
        self.write_assignment(tp.topic)
        batch = self.new_batch()
        live = ctx.live_not_shutting_down()

        def change(_tp: TopicPartition, cur: LeaderAndIsr) -> LeaderAndIsr | None:
            isr = tuple(r for r in cur.isr if r in original) or cur.isr
            if cur.leader in original and ctx.is_live(cur.leader):
                return self.new_state(cur, cur.leader, isr)
            election = reassignment_leader(original, cur.isr, live)
            leader = election[0] if election is not None else -1
            return self.new_state(cur, leader, isr)

        for w in self.change_states([tp], change):
            batch.add_leader_and_isr(self.live_replicas(w), w)
        for r in current.adding:
            if ctx.is_live(r):
                batch.add_stop_replica(r, tp, delete=True)
        self.send(batch)
        self._forget_znode_reassignment([tp])

    def maybe_complete_reassignments(self, tps: Iterable[TopicPartition]) -> None:
        """Finish the reassignments whose target replicas are all in the ISR."""
        ctx = self.ctx
        done = []
        batch = self.new_batch()
        for tp in tps:
            a = ctx.assignments.get(tp)
            state = ctx.states.get(tp)
            if a is None or state is None or not a.is_reassigning:
                continue
            target = a.target
            if not set(target) <= set(state.isr):
                continue
            removing = a.removing
            ctx.assignments[tp] = ReplicaAssignment(target)
            for w in self.change_states([tp], self._into_target(target)):
                batch.add_leader_and_isr(self.live_replicas(w), w)
            self.write_assignment(tp.topic)
            for r in removing:
                if ctx.is_live(r):
                    batch.add_stop_replica(r, tp, delete=True)
            batch.add_update_metadata([tp])
            done.append(tp)
            log.info("reassignment of %s to %s completed", tp, list(target))
        self.send(batch)
        self._forget_znode_reassignment(done)

    def _into_target(self, target: tuple[int, ...]) -> StateChange:
        """The state once a reassignment is done: the ISR within the target, and a
        leader from the target (the current one when it stays)."""
        ctx = self.ctx
        live = ctx.live_not_shutting_down()

        def change(_tp: TopicPartition, cur: LeaderAndIsr) -> LeaderAndIsr | None:
            isr = tuple(r for r in cur.isr if r in target)
            if cur.leader in target and ctx.is_live(cur.leader):
                return self.new_state(cur, cur.leader, isr)
            election = reassignment_leader(target, isr, live)
            return self.new_state(cur, election[0] if election else -1, isr)

        return change

    def _forget_znode_reassignment(self, tps: Iterable[TopicPartition]) -> None:
        finished = set(tps) & self.ctx.znode_reassignments
        if not finished:
            return
        self.ctx.znode_reassignments -= finished
        remaining = {
            tp: self.ctx.assignments[tp].target
            for tp in self.ctx.znode_reassignments
            if tp in self.ctx.assignments
        }
        self.store.set_reassignment_request(remaining)

    def list_reassignments(
        self, tps: Iterable[TopicPartition] | None
    ) -> dict[TopicPartition, ReplicaAssignment]:
        wanted = self.ctx.assignments if tps is None else {tp: None for tp in tps}
        return {
            tp: self.ctx.assignments[tp]
            for tp in wanted
            if tp in self.ctx.assignments and self.ctx.assignments[tp].is_reassigning
        }

    def on_reassignment_znode(self) -> None:
        request = self.store.reassignment_request()
        if not request:
            return
        fresh = {tp: t for tp, t in request.items() if tp not in self.ctx.znode_reassignments}
        results = self.alter_reassignments(fresh)
        for tp, (code, message) in results.items():
            if (
                code == ErrorCode.NONE
                and tp in self.ctx.assignments
                and self.ctx.assignments[tp].is_reassigning
            ):
                self.ctx.znode_reassignments.add(tp)
            elif code != ErrorCode.NONE:
                log.warning("reassignment of %s from the znode refused: %s", tp, message)
        done = [tp for tp in fresh if tp not in self.ctx.znode_reassignments]
        self.ctx.znode_reassignments |= set(done)
        self._forget_znode_reassignment(done)

    # -- hooks -----------------------------------------------------------------------------
    def on_isr_changed(self, tps: list[TopicPartition]) -> None:
        super().on_isr_changed(tps)
        self.maybe_complete_reassignments(tps)

    def on_replicas_online(self, new: set[int]) -> None:
        super().on_replicas_online(new)
        self.maybe_complete_reassignments(list(self.ctx.assignments))

    def after_failover(self) -> None:
        super().after_failover()
        ongoing = [tp for tp, a in self.ctx.assignments.items() if a.is_reassigning]
        request = self.store.reassignment_request() or {}
        self.ctx.znode_reassignments = {tp for tp in request if tp in ongoing}
        self.maybe_complete_reassignments(ongoing)
        self.on_reassignment_znode()

    # -- elections on request -----------------------------------------------------------------
    def elect_leaders(
        self, tps: Iterable[TopicPartition] | None, election_type: int
    ) -> dict[TopicPartition, Outcome]:
        ctx = self.ctx
        wanted = sorted(ctx.states) if tps is None else list(tps)
        out: dict[TopicPartition, Outcome] = {}
        batch = self.new_batch()
        live = ctx.live_not_shutting_down()
        for tp in wanted:
            cur = ctx.states.get(tp)
            if cur is None or tp.topic in ctx.topics_to_delete:
                out[tp] = (ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"No such partition as {tp}")
                continue
            replicas = ctx.replicas(tp)
            if election_type == PREFERRED:
                if replicas and cur.leader == replicas[0]:
                    out[tp] = ELECTION_NOT_NEEDED
                elif self.preferred_election([tp], batch):
                    out[tp] = (ErrorCode.NONE, None)
                else:
                    out[tp] = (
                        ErrorCode.PREFERRED_LEADER_NOT_AVAILABLE,
                        f"Failed to elect leader for partition {tp} under strategy "
                        "PreferredReplicaPartitionLeaderElectionStrategy",
                    )
                continue
            if ctx.is_live(cur.leader):
                out[tp] = ELECTION_NOT_NEEDED
                continue
            election, _ = offline_partition_leader(replicas, cur.isr, live, True)
            if election is None:
                out[tp] = (
                    ErrorCode.ELIGIBLE_LEADERS_NOT_AVAILABLE,
                    f"Failed to elect leader for partition {tp} under strategy "
                    "UncleanPartitionLeaderElectionStrategy",
                )
                continue
            for w in self.change_states([tp], self._to(election)):
                batch.add_leader_and_isr(self.live_replicas(w), w)
            out[tp] = (ErrorCode.NONE, None)
        self.send(batch)
        return out

    def _to(self, election: tuple[int, tuple[int, ...]]) -> StateChange:
        return lambda _tp, cur: self.new_state(cur, *election)

    def on_preferred_election_znode(self) -> None:
        request = self.store.preferred_election_request()
        if request is None:
            return
        self.elect_leaders([tp for tp in request if tp in self.ctx.states], PREFERRED)
        self.store.delete_preferred_election_request()
