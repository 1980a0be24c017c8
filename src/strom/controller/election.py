"""Leader election rules, as Kafka's controller has them (Election.scala).

Each rule takes the partition's replica assignment (in preference order), its
ISR and the live replicas, and returns the new (leader, ISR) or None when no
replica may lead. Pure functions: the controller applies the result, bumping
the leader epoch.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

Election = tuple[int, tuple[int, ...]]  # (leader, isr)


def offline_partition_leader(
    assignment: Sequence[int],
    isr: Sequence[int],
    live: Collection[int],
    unclean: bool,
) -> tuple[Election | None, bool]:
    """The leader of a partition whose leader is gone: the first live replica of the ISR
    in assignment order; with ``unclean`` (unclean.leader.election.enable), else the first
    live replica at all, which then forms the ISR alone. Returns (election, was_unclean)."""
    leader = next((r for r in assignment if r in live and r in isr), None)
    if leader is not None:
        return (leader, tuple(r for r in isr if r in live)), False
    if unclean:
        leader = next((r for r in assignment if r in live), None)
        if leader is not None:
            return (leader, (leader,)), True
    return None, False


def reassignment_leader(
    target: Sequence[int], isr: Sequence[int], live: Collection[int]
) -> Election | None:
    """A reassigned partition's leader: the first target replica that is live and in sync."""
    leader = next((r for r in target if r in live and r in isr), None)
    return (leader, tuple(isr)) if leader is not None else None


def preferred_replica_leader(
    assignment: Sequence[int], isr: Sequence[int], live: Collection[int]
) -> Election | None:
    """The preferred replica (the first of the assignment) when it is live and in sync."""
    if assignment and assignment[0] in live and assignment[0] in isr:
        return assignment[0], tuple(isr)
    return None


def controlled_shutdown_leader(
    assignment: Sequence[int],
    isr: Sequence[int],
    live: Collection[int],
    shutting_down: Collection[int],
) -> Election | None:
    """A new leader for a partition whose leader shuts down: the first live, in-sync
    replica not shutting down; the ISR loses the brokers shutting down."""
    leader = next(
        (r for r in assignment if r in live and r in isr and r not in shutting_down), None
    )
    if leader is None:
        return None
    return leader, tuple(r for r in isr if r not in shutting_down)
