"""The simulation's scheduler, network and in-memory log."""

from __future__ import annotations

import random

import pytest

from strom.common.types import TopicPartition
from strom.protocol.errors import ErrorCode
from strom.storage.log_append import UnexpectedAppendOffsetError
from strom.testing.sim.invariants import Checker, Violation
from strom.testing.sim.memlog import LogGapError, MemoryLog, encode_entries, encode_values
from strom.testing.sim.network import Network
from strom.testing.sim.schedule import Fault, Scheduler, fault_from_list, generate_faults

TP = TopicPartition("t", 0)


def test_scheduler_runs_in_time_then_insertion_order() -> None:
    s, out = Scheduler(), []
    s.at(5, "b", lambda: out.append("b"))
    s.at(5, "c", lambda: out.append("c"))
    s.at(1, "a", lambda: out.append("a"))
    t = s.at(3, "x", lambda: out.append("x"))
    t.cancel()
    while s.step():
        pass
    assert out == ["a", "b", "c"] and s.now_ms == 5 and s.steps == 3


def test_network_cuts_delays_and_duplicates() -> None:
    s = Scheduler()
    net = Network(s, random.Random(1))
    got: list[str] = []
    net.set_cut(1, 2, True)
    assert not net.send(1, 2, "m", lambda: got.append("cut"))
    assert net.send(2, 1, "m", lambda: got.append("other way"))  # one way only
    net.send(1, 3, "m", lambda: got.append("dropped in flight"))
    net.set_cut(1, 3, True)
    while s.step():
        pass
    assert got == ["other way"]
    net.heal()
    net.set_slow(1, 2, 500)
    for i in range(20):
        net.send(1, 2, "m", lambda i=i: got.append(str(i)))
    while s.step():
        pass
    order = [int(g) for g in got[1:]]
    assert sorted(order) == list(range(20)) and order != list(range(20))  # reordered
    net.duplicate_p = 1.0
    got.clear()
    net.send(1, 2, "m", lambda: got.append("d"))
    while s.step():
        pass
    assert got == ["d", "d"]


def test_faults_are_drawn_from_the_seed_and_round_trip() -> None:
    a = generate_faults(random.Random(3), [1, 2, 3], 1000, 20000, 6)
    assert a == generate_faults(random.Random(3), [1, 2, 3], 1000, 20000, 6)
    assert [f.at_ms for f in a] == sorted(f.at_ms for f in a)
    assert all(fault_from_list(f.as_list()) == f for f in a)
    assert "crash 2/1" in str(Fault(10, "crash", 2, 1, 300))


def test_memory_log_appends_truncates_and_keeps_epochs() -> None:
    log = MemoryLog("l", TP)
    log.leader_epoch_cache.assign(0, 0)
    log.append_as_leader(encode_values([10, 11]), 0, 0)
    log.append_as_leader(encode_values([12]), 2, 0)
    assert log.entries() == [(0, 0, 10), (1, 0, 11), (2, 2, 12)]
    assert log.end_offset_for_epoch(1) == (0, 2)
    follower = MemoryLog("f", TP)
    follower.append_as_follower(encode_entries(log.entries(0, 2)), 0)
    with pytest.raises(UnexpectedAppendOffsetError):
        follower.append_as_follower(encode_entries(log.entries(1, 3)), 0)
    with pytest.raises(LogGapError):
        follower.append_as_follower(encode_entries([(5, 2, 1)]), 0)
    assert follower.truncate_to(1) and follower.log_end_offset == 1
    assert not follower.truncate_to(4)
    log.fail_appends = 1
    with pytest.raises(OSError):
        log.append_as_leader(encode_values([13]), 2, 0)
    log.append_as_leader(encode_values([13]), 2, 0)
    assert log.log_end_offset == 4
    assert follower.collect_aborted_transactions(0, 1) == [] and ErrorCode.NONE == 0


def test_log_matching_is_checked_on_every_append() -> None:
    checker = Checker()
    a, b = MemoryLog("a", TP, checker.on_append), MemoryLog("b", TP, checker.on_append)
    a.append_as_leader(encode_values([1, 2]), 0, 0)
    b.append_as_follower(encode_entries(a.entries()), 0)
    c = MemoryLog("c", TP, checker.on_append)
    c.append_as_follower(encode_entries([(0, 0, 1)]), 0)
    with pytest.raises(Violation, match="log matching"):
        c.append_as_follower(encode_entries([(1, 0, 99)]), 0)  # same offset and epoch, other record
