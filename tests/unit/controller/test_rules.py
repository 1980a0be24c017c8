"""Replica assignment (Kafka's AdminUtils, examples of AdminTest and AdminRackAwareTest)
and the election rules (Kafka's Election.scala)."""

from __future__ import annotations

from collections import Counter

import pytest

from strom.common.assignment import AssignmentError, assign_replicas, rack_alternated
from strom.controller.election import (
    controlled_shutdown_leader,
    offline_partition_leader,
    preferred_replica_leader,
    reassignment_leader,
)


def test_rack_unaware_assignment_of_kafkas_admin_test():
    brokers = {b: None for b in range(5)}
    expected = [
        (0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 0), (4, 0, 1),
        (0, 2, 3), (1, 3, 4), (2, 4, 0), (3, 0, 1), (4, 1, 2),
    ]  # fmt: skip
    assert assign_replicas(10, 3, brokers, start_index=0, shift=0) == expected


def test_rack_unaware_expansion_numbers_from_the_first_new_partition():
    # Kafka's startPartitionId: the shift grows only at multiples of the broker count
    # met from there (the caller draws a fresh shift), the first replica rotates on
    brokers = {b: None for b in range(5)}
    out = assign_replicas(5, 3, brokers, start_index=0, shift=0, first_partition=6)
    assert out == [(1, 2, 3), (2, 3, 4), (3, 4, 0), (4, 0, 1), (0, 2, 3)]


def test_replication_factor_checks():
    brokers = {b: None for b in range(5)}
    with pytest.raises(AssignmentError):
        assign_replicas(10, 0, brokers, start_index=0, shift=0)
    with pytest.raises(AssignmentError, match="larger than available brokers: 5"):
        assign_replicas(10, 6, brokers, start_index=0, shift=0)
    with pytest.raises(AssignmentError, match="rack information"):
        assign_replicas(2, 2, {0: "a", 1: None}, start_index=0, shift=0)


def test_rack_alternated_broker_list_of_kafkas_test():
    racks = {0: "rack1", 1: "rack3", 2: "rack3", 3: "rack2", 4: "rack2", 5: "rack1"}
    assert rack_alternated(racks) == [0, 3, 1, 5, 4, 2]
    del racks[5]
    assert rack_alternated(racks) == [0, 3, 1, 4, 2]


def test_rack_aware_assignment_of_kafkas_test():
    racks = {0: "rack1", 1: "rack3", 2: "rack3", 3: "rack2", 4: "rack2", 5: "rack1"}
    expected = [(0, 3, 1), (3, 1, 5), (1, 5, 4), (5, 4, 2), (4, 2, 0), (2, 0, 3), (0, 4, 2)]
    assert assign_replicas(7, 3, racks, start_index=0, shift=0) == expected


def _check_distribution(assignment, racks, partitions, rf, leaders=True, replicas=True):
    """Kafka's RackAwareTest.checkReplicaDistribution."""
    num_racks = len(set(racks.values()))
    for replica_list in assignment:
        assert len(replica_list) == rf and len(set(replica_list)) == rf
        assert len({racks[b] for b in replica_list}) == min(rf, num_racks)
    if leaders:
        counts = Counter(r[0] for r in assignment)
        assert set(counts.values()) == {partitions // len(racks)}
    if replicas:
        counts = Counter(b for r in assignment for b in r)
        assert set(counts.values()) == {partitions * rf // len(racks)}


SIX = {0: "rack1", 1: "rack2", 2: "rack2", 3: "rack3", 4: "rack3", 5: "rack1"}


@pytest.mark.parametrize(
    ("racks", "partitions", "rf", "leaders", "replicas"),
    [
        (SIX, 6, 3, True, True),
        (SIX, 13, 3, False, False),
        (
            {0: "rack1", 1: "rack1", 2: "rack2", 3: "rack3", 4: "rack3", 5: "rack1"},
            12,
            3,
            True,
            False,
        ),
        (SIX, 12, 2, True, True),
        (SIX, 6, 2, True, True),
        ({0: "rack1", 1: "rack2", 4: "rack3"}, 3, 2, True, True),
        (
            SIX | {6: "rack1", 7: "rack2", 8: "rack2", 9: "rack3", 10: "rack1", 11: "rack3"},
            96,
            3,
            True,
            True,
        ),
    ],
)
def test_rack_aware_distribution_for_every_start(racks, partitions, rf, leaders, replicas):
    for start in range(len(racks)):
        for shift in range(len(racks)):
            out = assign_replicas(partitions, rf, racks, start_index=start, shift=shift)
            _check_distribution(out, racks, partitions, rf, leaders, replicas)


def test_more_replicas_than_racks_and_single_rack():
    racks = {0: "rack1", 1: "rack2", 2: "rack2", 3: "rack3", 4: "rack3", 5: "rack2"}
    for start in range(6):
        out = assign_replicas(6, 5, racks, start_index=start, shift=start)
        assert all(len({racks[b] for b in r}) == 3 and len(set(r)) == 5 for r in out)
        out = assign_replicas(6, 2, racks, start_index=start, shift=start)
        assert all(len({racks[b] for b in r}) == 2 for r in out)
    single = {b: "rack1" for b in range(6)}
    out = assign_replicas(6, 3, single, start_index=1, shift=2)
    assert Counter(r[0] for r in out) == Counter(range(6))


def test_skip_broker_with_replica_already_assigned():
    racks = {0: "a", 1: "b", 2: "c", 3: "a", 4: "a"}
    out = assign_replicas(6, 4, racks, start_index=2, shift=2)
    assert all(len(set(r)) == 4 for r in out)


# -- election rules --------------------------------------------------------------------
def test_offline_partition_leader():
    # the first live ISR member in assignment order; the ISR keeps its live members
    assert offline_partition_leader((1, 2, 3), (3, 2), {2, 3}, False) == ((2, (3, 2)), False)
    assert offline_partition_leader((1, 2, 3), (1, 3), {2, 3}, False) == ((3, (3,)), False)
    # no live ISR member: none, or the first live replica when unclean is allowed
    assert offline_partition_leader((1, 2, 3), (1,), {2, 3}, False) == (None, False)
    assert offline_partition_leader((1, 2, 3), (1,), {3, 2}, True) == ((2, (2,)), True)
    assert offline_partition_leader((1, 2), (1,), set(), True) == (None, False)


def test_reassignment_and_preferred_and_shutdown_leaders():
    assert reassignment_leader((4, 2), (1, 2, 4), {1, 2, 4}) == (4, (1, 2, 4))
    assert reassignment_leader((4, 2), (1, 2), {1, 2, 4}) == (2, (1, 2))
    assert reassignment_leader((4,), (1, 2), {1, 2, 4}) is None
    assert preferred_replica_leader((1, 2), (2, 1), {1, 2}) == (1, (2, 1))
    assert preferred_replica_leader((1, 2), (2,), {1, 2}) is None
    assert preferred_replica_leader((1, 2), (2, 1), {2}) is None
    assert controlled_shutdown_leader((1, 2, 3), (1, 2, 3), {1, 2, 3}, {1}) == (2, (2, 3))
    assert controlled_shutdown_leader((1, 2), (1,), {1, 2}, {1}) is None
    assert controlled_shutdown_leader((1, 2, 3), (1, 2, 3), {1, 3}, {1}) == (3, (2, 3))
