"""strom.replication.partition on real logs: high watermark, ISR changes, acks=all,
leader epoch fencing, leadership changes."""

from __future__ import annotations

import pytest

from strom.protocol.errors import ErrorCode, KafkaError
from strom.replication.partition import IsrChange
from tests.unit.replication.helpers import NOW, TP, batch, fetch, partition, state, truncate_against


def leader_of(tmp_path, isr=(1, 2, 3), min_isr=1, epoch=0):
    p = partition(tmp_path, 1, min_isr=min_isr)
    assert p.make_leader(state(1, epoch, isr), NOW)
    return p


def produce(p, *values, acks=-1, now=NOW):
    info = None
    for v in values:
        info = p.append_records_to_leader(batch(v), acks, now)
    return info


# -- high watermark --------------------------------------------------------------------
def test_high_watermark_is_the_lowest_log_end_of_the_isr(tmp_path):
    p = leader_of(tmp_path)
    produce(p, "a", "b", "c")
    assert p.high_watermark == 0
    p.update_follower_fetch_state(2, 3, 0, NOW)
    assert p.high_watermark == 0  # 3 has not fetched
    assert p.update_follower_fetch_state(3, 2, 0, NOW)
    assert p.high_watermark == 2
    p.update_follower_fetch_state(3, 3, 0, NOW)
    assert p.high_watermark == 3


def test_high_watermark_alone_in_the_isr(tmp_path):
    p = leader_of(tmp_path, isr=(1,))
    produce(p, "a", "b")
    assert p.high_watermark == 2


def test_a_caught_up_replica_about_to_join_holds_the_high_watermark(tmp_path):
    """Kafka's maximal ISR: a replica out of the ISR but caught up (within the lag)
    counts, so that a record is not acknowledged without it just before it joins."""
    p = leader_of(tmp_path, isr=(1, 2))
    produce(p, "a")
    p.update_follower_fetch_state(2, 1, 0, NOW)
    p.update_follower_fetch_state(3, 1, 0, NOW)  # 3 reached the log end: caught up
    assert p.high_watermark == 1
    produce(p, "b", "c")
    p.update_follower_fetch_state(2, 3, 0, NOW + 1)
    assert p.high_watermark == 1  # 3 (caught up a moment ago) is still at 1
    p.update_follower_fetch_state(3, 3, 0, NOW + 2)
    assert p.high_watermark == 3


def test_pending_expansion_widens_the_isr_and_a_pending_shrink_keeps_it(tmp_path):
    p = leader_of(tmp_path, isr=(1, 2))
    produce(p, "a", "b")
    p.update_follower_fetch_state(2, 2, 0, NOW)
    p.update_follower_fetch_state(3, 2, 0, NOW)
    change = p.maybe_expand_isr()
    assert change == IsrChange(TP, 0, 0, (1, 2, 3))
    assert p.maximal_isr == (1, 2, 3) and p.isr == (1, 2)
    assert p.maybe_expand_isr() is None  # one change at a time
    p.on_isr_change_committed(0, 1, (1, 2, 3), NOW)
    assert p.isr == (1, 2, 3) and p.partition_epoch == 1 and p.pending_isr is None
    # a pending shrink still waits for the member leaving
    produce(p, "c")
    p.update_follower_fetch_state(2, 3, 0, NOW + 20_000)
    shrink = p.maybe_shrink_isr(NOW + 20_000)
    assert shrink is not None and shrink.new_isr == (1, 2)
    assert p.maximal_isr == (1, 2, 3)
    assert p.high_watermark == 2
    assert p.on_isr_change_committed(0, 2, (1, 2), NOW + 20_000)  # HW moves on commit
    assert p.high_watermark == 3


def test_high_watermark_never_moves_back(tmp_path):
    p = leader_of(tmp_path, isr=(1, 2))
    produce(p, "a", "b")
    p.update_follower_fetch_state(2, 2, 0, NOW)
    assert p.high_watermark == 2
    p.update_follower_fetch_state(2, 1, 0, NOW)  # an old fetch position
    assert p.high_watermark == 2
    # a new leader epoch: followers are unknown, the high watermark stays
    assert p.make_leader(state(1, 1, (1, 2)), NOW)
    assert p.high_watermark == 2


# -- ISR shrink and expand -------------------------------------------------------------
def test_isr_shrinks_after_replica_lag_time_max(tmp_path):
    p = leader_of(tmp_path)  # lag 10 s
    produce(p, "a")
    p.update_follower_fetch_state(2, 1, 0, NOW)
    p.update_follower_fetch_state(3, 0, 0, NOW)
    assert p.maybe_shrink_isr(NOW + 9_000) is None  # in the ISR since the election
    change = p.maybe_shrink_isr(NOW + 10_001)
    assert change == IsrChange(TP, 0, 0, (1, 2))


def test_a_follower_fetching_at_the_log_end_is_never_out_of_sync(tmp_path):
    p = leader_of(tmp_path)
    produce(p, "a")
    for t in range(0, 60_000, 5_000):
        p.update_follower_fetch_state(2, 1, 0, NOW + t)
        p.update_follower_fetch_state(3, 1, 0, NOW + t)
    assert p.maybe_shrink_isr(NOW + 60_000) is None


def test_a_follower_catching_up_to_an_earlier_log_end_stays(tmp_path):
    """Kafka's lastCaughtUpTime: fetching up to where the leader's log ended at the
    previous fetch counts as caught up at that previous fetch's time."""
    p = leader_of(tmp_path, isr=(1, 2))
    produce(p, "a")
    p.update_follower_fetch_state(2, 0, 0, NOW + 1_000)  # leader end 1 at this fetch
    produce(p, "b")
    p.update_follower_fetch_state(2, 1, 0, NOW + 8_000)
    assert p.followers[2].last_caught_up_time_ms == NOW + 1_000
    assert p.maybe_shrink_isr(NOW + 10_500) is None
    assert p.maybe_shrink_isr(NOW + 11_001) is not None


def test_isr_expands_once_caught_up_to_the_high_watermark_and_the_epoch_start(tmp_path):
    p = leader_of(tmp_path, isr=(1,))
    produce(p, "a", "b")
    assert p.high_watermark == 2
    p.update_follower_fetch_state(2, 1, 0, NOW)
    assert p.maybe_expand_isr() is None
    p.update_follower_fetch_state(2, 2, 0, NOW)
    assert p.maybe_expand_isr() == IsrChange(TP, 0, 0, (1, 2))
    p.on_isr_change_failed()
    assert p.pending_isr is None and p.isr == (1,)


def test_isr_expansion_waits_for_the_leader_epoch_start(tmp_path):
    p = leader_of(tmp_path, isr=(1,))
    produce(p, "a", "b", "c")
    p.make_leader(state(1, 1, (1,)), NOW)  # a new epoch starts at 3
    p.log.update_high_watermark(1)
    p.update_follower_fetch_state(2, 2, 0, NOW)
    assert p.leader_epoch_start_offset == 3
    assert p.maybe_expand_isr() is None
    p.update_follower_fetch_state(2, 3, 0, NOW)
    assert p.maybe_expand_isr() is not None


def test_stale_isr_answers_are_ignored(tmp_path):
    p = leader_of(tmp_path)
    p.maybe_shrink_isr(NOW + 60_000)
    p.make_leader(state(1, 1, (1, 2, 3), partition_epoch=3), NOW)
    assert not p.on_isr_change_committed(0, 4, (1,), NOW)  # for the previous epoch
    assert p.isr == (1, 2, 3)
    assert not p.on_isr_change_committed(1, 2, (1,), NOW)  # older partition epoch
    assert p.isr == (1, 2, 3)


# -- acks=all --------------------------------------------------------------------------
def test_produce_refused_when_the_isr_is_below_min_insync_replicas(tmp_path):
    p = leader_of(tmp_path, isr=(1,), min_isr=2)
    with pytest.raises(KafkaError) as e:
        produce(p, "a")
    assert e.value.code == ErrorCode.NOT_ENOUGH_REPLICAS
    assert p.log.log_end_offset == 0
    produce(p, "a", acks=1)  # acks=1 is not checked
    assert p.log.log_end_offset == 1


def test_delayed_produce_completes_when_the_high_watermark_passes(tmp_path):
    p = leader_of(tmp_path, isr=(1, 2), min_isr=2)
    info = produce(p, "a")
    required = info.last_offset + 1
    assert p.check_enough_replicas_reach(required) is None  # waits
    p.update_follower_fetch_state(2, 1, 0, NOW)
    assert p.check_enough_replicas_reach(required) == ErrorCode.NONE


def test_delayed_produce_after_the_isr_shrank_below_min(tmp_path):
    p = leader_of(tmp_path, isr=(1, 2), min_isr=2)
    info = produce(p, "a")
    p.maybe_shrink_isr(NOW + 60_000)
    p.on_isr_change_committed(0, 1, (1,), NOW + 60_000)
    assert p.high_watermark == 1
    code = p.check_enough_replicas_reach(info.last_offset + 1)
    assert code == ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND


def test_delayed_produce_fails_when_leadership_moves(tmp_path):
    p = leader_of(tmp_path, isr=(1, 2))
    info = produce(p, "a")
    p.make_follower(state(2, 1, (1, 2)))
    assert p.check_enough_replicas_reach(info.last_offset + 1) == ErrorCode.NOT_LEADER_OR_FOLLOWER
    with pytest.raises(KafkaError) as e:
        produce(p, "b")
    assert e.value.code == ErrorCode.NOT_LEADER_OR_FOLLOWER


# -- epochs and leadership -------------------------------------------------------------
def test_leader_epoch_fencing(tmp_path):
    p = leader_of(tmp_path, epoch=5)
    p.check_leader_epoch(-1)
    p.check_leader_epoch(5)
    with pytest.raises(KafkaError) as e:
        p.check_leader_epoch(4)
    assert e.value.code == ErrorCode.FENCED_LEADER_EPOCH
    with pytest.raises(KafkaError) as e:
        p.check_leader_epoch(6)
    assert e.value.code == ErrorCode.UNKNOWN_LEADER_EPOCH


def test_make_leader_records_the_epoch_start(tmp_path):
    p = leader_of(tmp_path)
    produce(p, "a", "b")
    assert not p.make_leader(state(1, 0, (1, 2)), NOW)  # same epoch: no change
    assert p.make_leader(state(1, 3, (1, 2)), NOW)
    assert p.log.leader_epoch_cache.entries == [(0, 0), (3, 2)]
    assert p.log.end_offset_for_epoch(0) == (0, 2)
    assert set(p.followers) == {2, 3}


def test_make_follower_reports_changes(tmp_path):
    p = partition(tmp_path, 2)
    assert p.make_follower(state(1, 0, (1, 2)))
    assert not p.make_follower(state(1, 0, (1, 2), partition_epoch=1))
    assert p.make_follower(state(3, 1, (1, 2, 3)))
    assert not p.is_leader


def test_unknown_follower_fetch_is_refused(tmp_path):
    p = leader_of(tmp_path)
    with pytest.raises(KafkaError) as e:
        p.update_follower_fetch_state(9, 0, 0, NOW)
    assert e.value.code == ErrorCode.NOT_LEADER_OR_FOLLOWER


def test_follower_high_watermark_is_bounded_by_its_log_end(tmp_path):
    leader = leader_of(tmp_path / "l", isr=(1, 2))
    produce(leader, "a", "b", "c")
    follower = partition(tmp_path / "f", 2)
    follower.make_follower(state(1, 0, (1, 2)))
    info = leader.log.read(0, 1 << 20, 2)  # the first two batches
    follower.append_records_to_follower(info.slices[0].read(), 3, NOW)
    assert follower.log.log_end_offset == 2 and follower.high_watermark == 2


def test_failover_keeps_every_acknowledged_record(tmp_path):
    """1 leads (epoch 0) with ISR {1,2}; records acknowledged once 2 has them; 1 dies;
    2 leads epoch 1 and writes more; 1 returns as follower, truncates, catches up."""
    one = leader_of(tmp_path / "1", isr=(1, 2))
    two = partition(tmp_path / "2", 2)
    two.make_follower(state(1, 0, (1, 2)))
    produce(one, "a", "b")
    fetch(two.log, one.log)
    one.update_follower_fetch_state(2, 2, 0, NOW)
    assert one.check_enough_replicas_reach(2) == ErrorCode.NONE
    produce(one, "c")  # not replicated, not acknowledged
    two.make_leader(state(2, 1, (2,)), NOW)
    produce(two, "d")
    one.make_follower(state(2, 1, (2,)))
    assert truncate_against(one.log, two.log) == 2
    fetch(one.log, two.log)
    from tests.unit.replication.helpers import entries

    assert [e[2] for e in entries(one.log)] == [b"a", b"b", b"d"]
    assert entries(one.log) == entries(two.log)


def test_a_leader_that_wrote_nothing_in_its_epoch_follows_without_diverging(tmp_path):
    """Found by the simulation (seed 0): broker 3 led epoch 1 for a moment without a
    record, then followed the leader of epoch 2. Its epoch cache still ended with epoch
    1 at its log end, so every Fetch said last fetched epoch 1; the leader (epochs 0 and
    2) answered a diverging epoch (0, log end), the truncation to the log end removed
    nothing, and the follower never fetched again (the ISR never grew back)."""
    from strom.replication.truncation import diverging

    leader = leader_of(tmp_path / "l", isr=(1, 3))
    produce(leader, "a", "b")
    three = partition(tmp_path / "f", 3)
    three.make_follower(state(1, 0, (1, 3)))
    fetch(three.log, leader.log)
    three.make_leader(state(3, 1, (3,)), NOW)  # leads epoch 1, writes nothing
    leader.make_leader(state(1, 2, (1, 3)), NOW)
    three.make_follower(state(1, 2, (1, 3)))
    assert three.log.leader_epoch_cache.latest_epoch == 0
    last = three.log.leader_epoch_cache.latest_epoch
    assert diverging(last, three.log.log_end_offset, leader.log.end_offset_for_epoch) is None
