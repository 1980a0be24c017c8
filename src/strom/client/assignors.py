"""Partition assignors of the classic consumer protocol, as pure functions (sans-IO).

Each takes the partition count per topic and every member's subscription and
returns member id -> assigned partitions, like the Java client's:

- ``range`` (RangeAssignor, Kafka's default): per topic, members in order get
  consecutive ranges; the first ``n % m`` members get one extra partition.
- ``roundrobin`` (RoundRobinAssignor): all partitions sorted, dealt one by one
  to the members subscribed to their topic.
- ``sticky`` (StickyAssignor): balanced (counts differ by at most one where
  subscriptions allow) while keeping as many owned partitions as possible.
- ``cooperative-sticky`` (CooperativeStickyAssignor): the sticky assignment
  minus every partition that changes owner; the owner gives it up first, and
  the next rebalance hands it over (incremental cooperative rebalancing).

Members sort by ``group.instance.id`` (static members first) then member id,
as Kafka's ``MemberInfo`` does. Ownership claims come from
ConsumerProtocolSubscription's owned_partitions and generation_id: when two
members claim a partition, the higher generation wins.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from strom.common.types import TopicPartition

Assignment = dict[str, list[TopicPartition]]


@dataclass(frozen=True, slots=True)
class Subscription:
    """One member's ConsumerProtocolSubscription: topics, owned partitions and their
    generation, group.instance.id, user data and rack."""

    topics: tuple[str, ...]
    owned_partitions: tuple[TopicPartition, ...] = ()
    generation_id: int = -1
    group_instance_id: str | None = None
    user_data: bytes | None = None
    rack_id: str | None = None


@dataclass(slots=True)
class _Ctx:
    partitions: Mapping[str, int]
    subs: Mapping[str, Subscription]
    order: list[str] = field(default_factory=list)


def member_order(subs: Mapping[str, Subscription]) -> list[str]:
    """Static members (by group.instance.id) first, then dynamic ones by member id."""
    return sorted(
        subs,
        key=lambda m: (
            subs[m].group_instance_id is None,
            subs[m].group_instance_id or "",
            m,
        ),
    )


def _all_partitions(partitions: Mapping[str, int], topics: set[str]) -> list[TopicPartition]:
    return [
        TopicPartition(t, p)
        for t in sorted(topics)
        if t in partitions
        for p in range(partitions[t])
    ]


def range_assign(partitions: Mapping[str, int], subs: Mapping[str, Subscription]) -> Assignment:
    """Kafka's RangeAssignor: per topic, consecutive ranges to the subscribed members
    in order; the first ``count % members`` get one partition more."""
    out: Assignment = {m: [] for m in subs}
    by_topic: dict[str, list[str]] = defaultdict(list)
    for m in member_order(subs):
        for t in subs[m].topics:
            by_topic[t].append(m)
    for topic in sorted(by_topic):
        count = partitions.get(topic, 0)
        members = by_topic[topic]
        per, extra = divmod(count, len(members))
        for i, m in enumerate(members):
            start = per * i + min(i, extra)
            length = per + (1 if i < extra else 0)
            out[m].extend(TopicPartition(topic, p) for p in range(start, start + length))
    return out


def roundrobin_assign(
    partitions: Mapping[str, int], subs: Mapping[str, Subscription]
) -> Assignment:
    """Kafka's RoundRobinAssignor: every partition in topic order dealt to the next
    member (in turn) subscribed to its topic."""
    out: Assignment = {m: [] for m in subs}
    members = member_order(subs)
    if not members:
        return out
    topics = {t for s in subs.values() for t in s.topics}
    i = 0
    for tp in _all_partitions(partitions, topics):
        for _ in range(len(members)):
            m = members[i % len(members)]
            i += 1
            if tp.topic in subs[m].topics:
                out[m].append(tp)
                break
    return out


def _valid_owned(
    partitions: Mapping[str, int], subs: Mapping[str, Subscription]
) -> dict[TopicPartition, str]:
    """Partition -> current owner; conflicting claims go to the highest generation."""
    owner: dict[TopicPartition, tuple[int, str]] = {}
    for m in member_order(subs):
        s = subs[m]
        for tp in s.owned_partitions:
            if tp.topic not in s.topics or not 0 <= tp.partition < partitions.get(tp.topic, 0):
                continue
            previous = owner.get(tp)
            if previous is None or s.generation_id > previous[0]:
                owner[tp] = (s.generation_id, m)
    return {tp: m for tp, (_, m) in owner.items()}


def sticky_assign(partitions: Mapping[str, int], subs: Mapping[str, Subscription]) -> Assignment:
    """Balanced and sticky: keep owned partitions up to each member's quota, deal the rest."""
    out: Assignment = {m: [] for m in subs}
    if not subs:
        return out
    order = member_order(subs)
    topics = {t for s in subs.values() for t in s.topics}
    everything = _all_partitions(partitions, topics)
    eligible: dict[TopicPartition, list[str]] = {
        tp: [m for m in order if tp.topic in subs[m].topics] for tp in everything
    }
    total = sum(1 for tp in everything if eligible[tp])
    # Quotas as in Kafka's constrained algorithm (exact when subscriptions are equal).
    base, extra = divmod(total, len(order))
    owned = _valid_owned(partitions, subs)
    by_member: dict[str, list[TopicPartition]] = defaultdict(list)
    for tp in everything:
        m = owned.get(tp)
        if m is not None:
            by_member[m].append(tp)
    unassigned: list[TopicPartition] = [tp for tp in everything if tp not in owned]
    # Keep up to base (+1 for the first `extra` members with more owned) partitions.
    with_more = sorted(order, key=lambda m: -len(by_member[m]))
    caps: dict[str, int] = {}
    for m in with_more:
        cap = base + (1 if extra > 0 and len(by_member[m]) > base else 0)
        if cap > base:
            extra -= 1
        caps[m] = cap
    for m in order:
        keep = by_member[m][: caps[m]]
        unassigned.extend(by_member[m][caps[m] :])
        out[m] = list(keep)
    unassigned.sort()
    for tp in unassigned:
        candidates = eligible[tp]
        if not candidates:
            continue
        target = min(candidates, key=lambda m: (len(out[m]), order.index(m)))
        out[target].append(tp)
    _rebalance(out, eligible, order)
    for m in out:
        out[m].sort()
    return out


def _rebalance(
    out: Assignment, eligible: Mapping[TopicPartition, list[str]], order: list[str]
) -> None:
    """Move partitions from the most to the least loaded eligible member until balanced."""
    for _ in range(sum(len(v) for v in out.values()) + 1):
        moved = False
        for heavy in sorted(order, key=lambda m: -len(out[m])):
            for tp in sorted(out[heavy], reverse=True):
                light = min(eligible[tp], key=lambda m: (len(out[m]), order.index(m)))
                if len(out[light]) + 1 < len(out[heavy]):
                    out[heavy].remove(tp)
                    out[light].append(tp)
                    moved = True
                    break
            if moved:
                break
        if not moved:
            return


def cooperative_sticky_assign(
    partitions: Mapping[str, int], subs: Mapping[str, Subscription]
) -> Assignment:
    """Sticky, but a partition moving between members is left out this round."""
    out = sticky_assign(partitions, subs)
    owned = _valid_owned(partitions, subs)
    for m, tps in out.items():
        out[m] = [tp for tp in tps if owned.get(tp, m) == m]
    return out


ASSIGNORS: dict[str, Callable[[Mapping[str, int], Mapping[str, Subscription]], Assignment]] = {
    "range": range_assign,
    "roundrobin": roundrobin_assign,
    "sticky": sticky_assign,
    "cooperative-sticky": cooperative_sticky_assign,
}

_JAVA = "org.apache.kafka.clients.consumer."
ALIASES = {
    _JAVA + "RangeAssignor": "range",
    _JAVA + "RoundRobinAssignor": "roundrobin",
    _JAVA + "StickyAssignor": "sticky",
    _JAVA + "CooperativeStickyAssignor": "cooperative-sticky",
}

COOPERATIVE = frozenset({"cooperative-sticky"})


def assignor_name(spec: str) -> str | None:
    """The protocol name for a strategy spec (Java class name or short name), or None."""
    name = ALIASES.get(spec.strip(), spec.strip().lower())
    return name if name in ASSIGNORS else None


def assign(
    protocol: str, partitions: Mapping[str, int], subs: Mapping[str, Subscription]
) -> Assignment:
    """The assignment by the assignor named ``protocol`` (a key of ASSIGNORS)."""
    return ASSIGNORS[protocol](partitions, subs)
