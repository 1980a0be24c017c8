"""The end of a run: every fault healed, producers stopped, the cluster settled.
Checks that it converged: each partition led by a live broker that knows it, its ISR
all its replicas (no reassignment left), every replica's log equal to the leader's,
the high watermark at the log end, and every acknowledged record in place."""

from __future__ import annotations

from collections.abc import Sequence

from strom.common.types import TopicPartition
from strom.metadata.zk import data as zd
from strom.testing.sim.invariants import Violation
from strom.testing.sim.memlog import MemoryLog
from strom.testing.sim.world import World
from strom.testing.sim.zk import NONE_SESSION


def check_converged(world: World, tps: Sequence[TopicPartition]) -> None:
    zk = world.zk
    assignment = zd.decode_topic(zk.get(NONE_SESSION, zd.topic_path(world.config.topic))[0])
    for tp in tps:
        replicas = assignment.replicas[tp.partition]
        if assignment.adding.get(tp.partition) or assignment.removing.get(tp.partition):
            raise Violation(f"{tp}: a reassignment never completed ({assignment})")
        data, stat = zk.get(NONE_SESSION, zd.partition_state_path(tp))
        state = zd.decode_partition_state(data, stat.version)
        leader = world.nodes.get(state.leader)
        if leader is None or not leader.up:
            raise Violation(f"{tp}: no live leader at the end ({state})")
        part = leader.partitions.get(tp)
        if part is None or not part.is_leader or part.leader_epoch != state.leader_epoch:
            raise Violation(f"{tp}: broker {state.leader} does not lead epoch {state.leader_epoch}")
        if set(state.isr) != set(replicas):
            raise Violation(f"{tp}: ISR {state.isr} never grew back to {replicas}")
        _check_logs(world, tp, replicas, state.leader, part.log)


def _check_logs(
    world: World, tp: TopicPartition, replicas: Sequence[int], leader: int, log: MemoryLog
) -> None:
    if log.high_watermark != log.log_end_offset:
        raise Violation(
            f"{tp}: high watermark {log.high_watermark} below the log end {log.log_end_offset}"
        )
    expected = log.entries()
    for r in replicas:
        other = world.nodes[r].disk.get(tp)
        if other is None or other.entries() != expected:
            raise Violation(f"{tp}: the log of broker {r} differs from the leader's ({leader})")
    world.checker.check_committed(tp, log, 1 << 30, f"broker {leader}")
    for offset, (value, _) in sorted(world.checker.acked.get(tp, {}).items()):
        if offset >= log.log_end_offset or log.values[offset] != value:
            raise Violation(f"{tp}: acknowledged record {value} at offset {offset} was lost")
