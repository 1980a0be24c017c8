"""Server-side assignors of consumer groups: ``uniform`` (the default) and ``range``.

Both are sticky: a member keeps the partitions of its previous target assignment
that it is still subscribed to, as far as balance allows, so members coming and
going move only the partitions they must.

- uniform: every member gets as many partitions as its subscriptions allow, the
  counts differing by at most one between members that could trade partitions.
  New or moved partitions prefer a member in one of the partition's racks (its
  replicas' ``broker.rack``) when members set ``client.rack``.
- range: per topic, the subscribed members in member id order get contiguous
  ranges (the first ``partitions % members`` one partition more), keeping what
  they had within their quota.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from strom.coordinator.group.consumer.member import Assignment, assignment


@dataclass(frozen=True, slots=True)
class MemberSpec:
    member_id: str
    topic_ids: frozenset[bytes]  # the subscribed topics that exist
    current: Assignment  # the previous target assignment
    rack_id: str | None = None
    instance_id: str | None = None


@dataclass(frozen=True, slots=True)
class TopicSpec:
    topic_id: bytes
    num_partitions: int
    partition_racks: Mapping[int, frozenset[str]] = field(default_factory=dict)


Assignor = Callable[[Mapping[str, MemberSpec], Mapping[bytes, TopicSpec]], dict[str, Assignment]]
TP = tuple[bytes, int]


class _Balancer:
    """The uniform assignor's working state: owner of each partition, partitions per member."""

    def __init__(self, members: Mapping[str, MemberSpec], topics: Mapping[bytes, TopicSpec]):
        self.members = members
        self.topics = topics
        self.order = sorted(members)
        self.position = {m: i for i, m in enumerate(self.order)}
        self.owned: dict[str, set[TP]] = {m: set() for m in members}
        self.owner: dict[TP, str] = {}
        self.rack_aware = any(s.rack_id for s in members.values()) and any(
            t.partition_racks for t in topics.values()
        )

    def eligible(self, tp: TP) -> list[str]:
        return [m for m in self.order if tp[0] in self.members[m].topic_ids]

    def rack_match(self, member_id: str, tp: TP) -> bool:
        rack = self.members[member_id].rack_id
        racks = self.topics[tp[0]].partition_racks.get(tp[1], frozenset())
        return rack is not None and rack in racks

    def give(self, tp: TP, member_id: str) -> None:
        previous = self.owner.get(tp)
        if previous is not None:
            self.owned[previous].discard(tp)
        self.owner[tp] = member_id
        self.owned[member_id].add(tp)

    def rank(self, member_id: str, tp: TP) -> tuple[int, int, int]:
        """Who should take ``tp``: the least loaded, then one in its rack, then by id."""
        mismatch = 0 if not self.rack_aware or self.rack_match(member_id, tp) else 1
        return len(self.owned[member_id]), mismatch, self.position[member_id]


def _partitions(topics: Mapping[bytes, TopicSpec]) -> list[TP]:
    return [(t, p) for t in sorted(topics) for p in range(topics[t].num_partitions)]


def uniform(
    members: Mapping[str, MemberSpec], topics: Mapping[bytes, TopicSpec]
) -> dict[str, Assignment]:
    b = _Balancer(members, topics)
    everything = _partitions(topics)
    for m in b.order:  # stickiness: keep what is still valid
        for topic_id, ps in members[m].current.items():
            if topic_id in members[m].topic_ids and topic_id in topics:
                for p in sorted(ps):
                    tp = (topic_id, p)
                    if p < topics[topic_id].num_partitions and tp not in b.owner:
                        b.give(tp, m)
    _shed_excess(b, everything)
    for tp in everything:
        if tp not in b.owner:
            candidates = b.eligible(tp)
            if candidates:
                b.give(tp, min(candidates, key=lambda m: b.rank(m, tp)))
    _rebalance(b)
    return _result(members, b.owned)


def _shed_excess(b: _Balancer, everything: list[TP]) -> None:
    """Homogeneous fast path: members above the fair ceiling give back their extra."""
    subscribed = [tp for tp in everything if b.eligible(tp)]
    if not b.order or not subscribed:
        return
    ceiling = -(-len(subscribed) // len(b.order))
    for m in b.order:
        extra = sorted(b.owned[m])[ceiling:]
        for tp in extra:
            b.owned[m].discard(tp)
            del b.owner[tp]


def _rebalance(b: _Balancer) -> None:
    """Move partitions from a member to one holding two or more fewer that may take them,
    until no such move is left (each move lowers the spread, so this ends)."""
    moved = True
    while moved:
        moved = False
        for giver in sorted(b.order, key=lambda m: -len(b.owned[m])):
            tp_to = _find_move(b, giver)
            if tp_to is not None:
                b.give(*tp_to)
                moved = True
                break


def _find_move(b: _Balancer, giver: str) -> tuple[TP, str] | None:
    best: tuple[tuple[int, int, int], TP, str] | None = None
    have = len(b.owned[giver])
    for tp in sorted(b.owned[giver]):
        for taker in b.eligible(tp):
            if len(b.owned[taker]) + 1 < have:
                key = b.rank(taker, tp)
                if best is None or key < best[0]:
                    best = (key, tp, taker)
    return None if best is None else (best[1], best[2])


def _result(
    members: Mapping[str, MemberSpec], owned: Mapping[str, set[TP]]
) -> dict[str, Assignment]:
    out = {}
    for m in members:
        by_topic: dict[bytes, list[int]] = {}
        for topic_id, p in owned.get(m, ()):
            by_topic.setdefault(topic_id, []).append(p)
        out[m] = assignment(by_topic.items())
    return out


def range_(
    members: Mapping[str, MemberSpec], topics: Mapping[bytes, TopicSpec]
) -> dict[str, Assignment]:
    owned: dict[str, set[TP]] = {m: set() for m in members}
    for topic_id in sorted(topics):
        subscribers = sorted(m for m, s in members.items() if topic_id in s.topic_ids)
        if not subscribers:
            continue
        n = topics[topic_id].num_partitions
        base, extra = divmod(n, len(subscribers))
        quota = {m: base + (1 if i < extra else 0) for i, m in enumerate(subscribers)}
        taken: set[int] = set()
        for m in subscribers:  # stickiness within the quota
            mine = sorted(p for p in members[m].current.get(topic_id, ()) if p < n)
            for p in mine[: quota[m]]:
                owned[m].add((topic_id, p))
                taken.add(p)
        free = iter(p for p in range(n) if p not in taken)
        for m in subscribers:
            have = sum(1 for t, _ in owned[m] if t == topic_id)
            owned[m].update((topic_id, next(free)) for _ in range(quota[m] - have))
    return _result(members, owned)


ASSIGNORS: dict[str, Assignor] = {"uniform": uniform, "range": range_}
