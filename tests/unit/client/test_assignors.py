"""Assignors as pure functions, checked against the Java client's documented results."""

from __future__ import annotations

import itertools
import random

import pytest

from strom.client.assignors import (
    Subscription,
    assignor_name,
    cooperative_sticky_assign,
    range_assign,
    roundrobin_assign,
    sticky_assign,
)
from strom.common.types import TopicPartition as TP


def _subs(**members: tuple[str, ...]) -> dict[str, Subscription]:
    return {m: Subscription(topics) for m, topics in members.items()}


def _names(result: dict[str, list[TP]]) -> dict[str, list[str]]:
    return {m: [f"{tp.topic}{tp.partition}" for tp in sorted(tps)] for m, tps in result.items()}


def test_range_matches_kafka_javadoc() -> None:
    # RangeAssignor javadoc: C0, C1; t0, t1 with 3 partitions each.
    result = range_assign({"t0": 3, "t1": 3}, _subs(C0=("t0", "t1"), C1=("t0", "t1")))
    assert _names(result) == {"C0": ["t00", "t01", "t10", "t11"], "C1": ["t02", "t12"]}


def test_roundrobin_matches_kafka_javadoc() -> None:
    result = roundrobin_assign({"t0": 3, "t1": 3}, _subs(C0=("t0", "t1"), C1=("t0", "t1")))
    assert _names(result) == {"C0": ["t00", "t02", "t11"], "C1": ["t01", "t10", "t12"]}


def test_roundrobin_with_unequal_subscriptions() -> None:
    # Javadoc: C0 [t0], C1 [t0, t1], C2 [t0, t1, t2]; t0:1, t1:2, t2:3.
    result = roundrobin_assign(
        {"t0": 1, "t1": 2, "t2": 3}, _subs(C0=("t0",), C1=("t0", "t1"), C2=("t0", "t1", "t2"))
    )
    assert _names(result) == {"C0": ["t00"], "C1": ["t10"], "C2": ["t11", "t20", "t21", "t22"]}


def test_static_members_sort_first_by_instance_id() -> None:
    subs = {
        "a-dynamic": Subscription(("t",)),
        "z-static": Subscription(("t",), group_instance_id="i0"),
    }
    result = range_assign({"t": 3}, subs)
    assert _names(result) == {"z-static": ["t0", "t1"], "a-dynamic": ["t2"]}


def _balanced(result: dict[str, list[TP]]) -> bool:
    sizes = [len(v) for v in result.values()]
    return max(sizes) - min(sizes) <= 1


def test_sticky_is_balanced_and_keeps_owned_partitions() -> None:
    counts = {"t0": 3, "t1": 3}
    first = sticky_assign(counts, _subs(C0=("t0", "t1"), C1=("t0", "t1"), C2=("t0", "t1")))
    assert _balanced(first) and sum(map(len, first.values())) == 6
    # C1 leaves: C0 and C2 keep what they had and share C1's partitions.
    subs = {m: Subscription(("t0", "t1"), tuple(first[m]), generation_id=1) for m in ("C0", "C2")}
    second = sticky_assign(counts, subs)
    assert _balanced(second)
    for m in ("C0", "C2"):
        assert set(first[m]) <= set(second[m])


def test_sticky_random_subscriptions_assign_everything_once() -> None:
    rng = random.Random(7)
    for _ in range(50):
        topics = {f"t{i}": rng.randint(1, 6) for i in range(rng.randint(1, 4))}
        members = {
            f"m{j}": Subscription(
                tuple(sorted(rng.sample(sorted(topics), rng.randint(1, len(topics)))))
            )
            for j in range(rng.randint(1, 5))
        }
        result = sticky_assign(topics, members)
        wanted = {
            TP(t, p)
            for t, n in topics.items()
            for p in range(n)
            if any(t in s.topics for s in members.values())
        }
        got = list(itertools.chain.from_iterable(result.values()))
        assert sorted(got) == sorted(wanted)
        for m, tps in result.items():
            assert all(tp.topic in members[m].topics for tp in tps)


def test_cooperative_sticky_withholds_partitions_that_change_owner() -> None:
    counts = {"t": 4}
    owned_all = tuple(TP("t", p) for p in range(4))
    subs = {
        "C0": Subscription(("t",), owned_all, generation_id=1),
        "C1": Subscription(("t",)),  # the newcomer
    }
    first = cooperative_sticky_assign(counts, subs)
    assert first["C1"] == []  # C0 must revoke first
    assert len(first["C0"]) == 2
    # Second round: C0 owns its two, C1 none: the two freed partitions go to C1.
    subs2 = {
        "C0": Subscription(("t",), tuple(first["C0"]), generation_id=2),
        "C1": Subscription(("t",), (), generation_id=2),
    }
    second = cooperative_sticky_assign(counts, subs2)
    assert sorted(second["C0"]) == sorted(first["C0"]) and len(second["C1"]) == 2


def test_conflicting_claims_go_to_the_highest_generation() -> None:
    subs = {
        "old": Subscription(("t",), (TP("t", 0),), generation_id=1),
        "new": Subscription(("t",), (TP("t", 0),), generation_id=2),
    }
    result = cooperative_sticky_assign({"t": 2}, subs)
    assert TP("t", 0) in result["new"]


@pytest.mark.parametrize(
    ("spec", "name"),
    [
        ("range", "range"),
        ("org.apache.kafka.clients.consumer.CooperativeStickyAssignor", "cooperative-sticky"),
        ("RoundRobin", "roundrobin"),
        ("bogus", None),
    ],
)
def test_assignor_names(spec: str, name: str | None) -> None:
    assert assignor_name(spec) == name
