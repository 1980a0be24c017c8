"""The server-side assignors (uniform, range): balance, stickiness as members come and go,
heterogeneous subscriptions, racks; and a seeded random schedule of joins, leaves and
heartbeats in which no partition is ever owned by two members."""

from __future__ import annotations

import random

from strom.coordinator.group.consumer.assignors import MemberSpec, TopicSpec, range_, uniform
from strom.coordinator.group.consumer.member import EMPTY_ASSIGNMENT, Assignment
from tests.unit.coordinator.consumer_harness import (
    ConsumerHarness,
    SimMember,
    assert_disjoint,
    settle,
)

T, U = b"T" * 16, b"U" * 16


def count(a: Assignment) -> int:
    return sum(len(ps) for ps in a.values())


def specs(
    members: dict[str, frozenset[bytes]],
    current: dict[str, Assignment] | None = None,
    racks: dict[str, str] | None = None,
) -> dict[str, MemberSpec]:
    current, racks = current or {}, racks or {}
    return {
        m: MemberSpec(m, topics, current.get(m, EMPTY_ASSIGNMENT), racks.get(m))
        for m, topics in members.items()
    }


def every(result: dict[str, Assignment]) -> list[tuple[bytes, int]]:
    return sorted((t, p) for a in result.values() for t, ps in a.items() for p in ps)


def test_uniform_balances_and_covers_every_partition() -> None:
    topics = {T: TopicSpec(T, 7), U: TopicSpec(U, 3)}
    result = uniform(specs({f"m{i}": frozenset({T, U}) for i in range(4)}), topics)
    assert every(result) == [(T, p) for p in range(7)] + [(U, p) for p in range(3)]
    assert sorted(count(a) for a in result.values()) == [2, 2, 3, 3]


def test_uniform_is_sticky_when_a_member_leaves_or_joins() -> None:
    topics = {T: TopicSpec(T, 12)}
    first = uniform(specs({m: frozenset({T}) for m in "abcd"}), topics)
    after_leave = uniform(specs({m: frozenset({T}) for m in "abc"}, first), topics)
    for m in "abc":
        assert set(first[m][T]) <= set(after_leave[m][T])
        assert count(after_leave[m]) == 4
    after_join = uniform(specs({m: frozenset({T}) for m in "abcde"}, after_leave), topics)
    moved = sum(len(set(after_leave[m][T]) - set(after_join[m].get(T, ()))) for m in "abc")
    assert moved == count(after_join["d"]) + count(after_join["e"])  # only what they took
    assert sorted(count(a) for a in after_join.values()) == [2, 2, 2, 3, 3]


def test_uniform_with_heterogeneous_subscriptions() -> None:
    topics = {T: TopicSpec(T, 6), U: TopicSpec(U, 2)}
    result = uniform(
        specs({"a": frozenset({T}), "b": frozenset({T, U}), "c": frozenset({U})}), topics
    )
    assert every(result) == [(T, p) for p in range(6)] + [(U, p) for p in range(2)]
    assert T not in result["c"] and U not in result["a"]
    assert count(result["a"]) >= 3


def test_uniform_prefers_members_in_the_partitions_rack() -> None:
    racks = {p: frozenset({f"r{p % 3}"}) for p in range(6)}
    topics = {T: TopicSpec(T, 6, racks)}
    result = uniform(
        specs({m: frozenset({T}) for m in "abc"}, racks={"a": "r0", "b": "r1", "c": "r2"}),
        topics,
    )
    assert result["a"][T] == {0, 3} and result["b"][T] == {1, 4} and result["c"][T] == {2, 5}


def test_range_gives_contiguous_ranges_and_keeps_them() -> None:
    topics = {T: TopicSpec(T, 7), U: TopicSpec(U, 7)}
    result = range_(specs({m: frozenset({T, U}) for m in "abc"}), topics)
    assert result["a"][T] == {0, 1, 2} and result["b"][T] == {3, 4} and result["c"][T] == {5, 6}
    assert result["a"][U] == {0, 1, 2}  # co-partitioned
    after = range_(specs({m: frozenset({T, U}) for m in "ac"}, result), topics)
    assert set(result["a"][T]) <= set(after["a"][T]) and set(result["c"][T]) <= set(after["c"][T])
    assert every(after) == [(t, p) for t in (T, U) for p in range(7)]


def test_the_range_assignor_is_chosen_by_the_members() -> None:
    h = ConsumerHarness({"t": 4})
    ms = [SimMember(h, f"m{i}", topics=["t"], assignor="range") for i in range(2)]
    for m in ms:
        m.join()
    settle(ms)
    assert ms[0].owned == {("t", 0), ("t", 1)} and ms[1].owned == {("t", 2), ("t", 3)}


def test_random_schedules_never_give_a_partition_to_two_members() -> None:
    for seed in range(20):
        rng = random.Random(seed)
        h = ConsumerHarness({"t": rng.randint(1, 10), "u": rng.randint(1, 5)})
        live: list[SimMember] = []
        next_id = 0
        for _ in range(60):
            action = rng.random()
            if action < 0.25 or not live:
                topics = rng.choice([["t"], ["u"], ["t", "u"]])
                m = SimMember(h, f"m{next_id}", topics=topics, assignor=rng.choice([None, "range"]))
                next_id += 1
                m.join()
                live.append(m)
            elif action < 0.35:
                live.pop(rng.randrange(len(live))).leave()
            else:
                m = rng.choice(live)
                assert m.heartbeat().error_code == 0
            assert_disjoint(live)
            h.advance(rng.randint(0, 1000))
        settle(live, rounds=20)
        owned = sorted(tp for m in live for tp in m.owned)
        wanted = {t for m in live for t in m.topics or ()}
        assert owned == sorted(
            (t, p) for t in sorted(wanted) for p in range(h.image.topics[t].partitions.__len__())
        ), seed
