"""Truncation by leader epoch: the scenarios of KIP-101 and KIP-279 on real logs, and the
leader's diverging-epoch check."""

from __future__ import annotations

from strom.replication.truncation import Truncation, diverging, truncation_for
from tests.unit.replication.helpers import entries, fetch, open_log, truncate_against, write


def test_kip101_scenario1_no_loss_by_high_watermark_truncation(tmp_path):
    """A leads and has m1, m2 (both acknowledged); B fetched both but learned only the
    high watermark 1 before restarting. Truncating to the high watermark would lose m2
    when B then becomes leader; by leader epoch B keeps it."""
    a = open_log(tmp_path, "a")
    write(a, 0, "m1", "m2")
    a.update_high_watermark(2)
    b = open_log(tmp_path, "b")
    fetch(b, a)
    b.update_high_watermark(1)
    b.close()
    b = open_log(tmp_path, "b", high_watermark=1)  # restarted
    assert truncate_against(b, a) == 2
    assert [e[2] for e in entries(b)] == [b"m1", b"m2"]


def test_kip101_scenario2_divergence_after_both_crash(tmp_path):
    """A leads (epoch 0) with m1, m2; B has m1. Both crash; B comes back first and
    leads epoch 1, writing m3 at offset 1. A comes back as follower: it must drop m2 and
    take m3, not keep a log that differs at offset 1."""
    a, b = open_log(tmp_path, "a"), open_log(tmp_path, "b")
    write(a, 0, "m1", "m2")
    fetch(b, a)
    b.truncate_to(1)  # B had only m1
    write(b, 1, "m3")
    assert b.end_offset_for_epoch(0) == (0, 1)
    assert truncate_against(a, b) == 1
    fetch(a, b)
    assert entries(a) == entries(b) == [(0, 0, b"m1"), (1, 1, b"m3")]


def test_kip279_leader_without_the_followers_epoch(tmp_path):
    """Fast failovers: the follower F led epoch 1 and wrote offsets 1-2 nobody has; the
    leader L went from epoch 0 to 2. F asks about epoch 1; L answers its largest epoch
    not above it, 0, ending at 2. F must cut where *its* epoch 0 ends (1), not at 2."""
    leader, follower = open_log(tmp_path, "l"), open_log(tmp_path, "f")
    write(leader, 0, "a", "b")
    fetch(follower, leader)
    follower.truncate_to(1)
    write(follower, 1, "x", "y")
    write(leader, 2, "c", "d", "e")
    assert leader.end_offset_for_epoch(1) == (0, 2)
    assert truncate_against(follower, leader) == 1
    fetch(follower, leader)
    assert entries(follower) == entries(leader)


def test_kip279_several_rounds_when_the_follower_lacks_the_leaders_epoch(tmp_path):
    """The follower has epochs 0, 1, 3; the leader 0, 2, 4 (diverging from offset 2).
    Asked about 3, the leader answers epoch 2; the follower never had 2, cuts to the
    end of its epoch 1 and asks again about 1; the leader answers epoch 0 ending at 2."""
    leader, follower = open_log(tmp_path, "l"), open_log(tmp_path, "f")
    write(leader, 0, "a", "b")
    fetch(follower, leader)
    write(follower, 1, "f1", "f2")
    write(follower, 3, "f3")
    write(leader, 2, "l2")
    write(leader, 4, "l4", "l5")
    epoch, end = leader.end_offset_for_epoch(3)
    assert (epoch, end) == (2, 3)
    first = truncation_for(epoch, end, 5, 0, follower.end_offset_for_epoch)
    assert first == Truncation(4, False)  # its epoch 1 ends at 4 (where 3 started)
    assert truncate_against(follower, leader) == 2
    fetch(follower, leader)
    assert entries(follower) == entries(leader)


def test_truncation_edge_cases():
    unknown = lambda epoch: (-1, -1)  # noqa: E731
    # the leader knows no epochs at all (old format): truncate to the high watermark
    assert truncation_for(-1, -1, 10, 4, unknown) == Truncation(4, True)
    # the leader answered no epoch but an offset: truncate there
    assert truncation_for(-1, 6, 10, 4, unknown) == Truncation(6, True)
    # the follower knows nothing of that epoch: the leader's end offset
    assert truncation_for(3, 7, 10, 4, unknown) == Truncation(7, True)
    # never above the follower's own log end
    assert truncation_for(3, 70, 10, 4, lambda e: (3, 12)) == Truncation(10, True)


def test_diverging_epoch_check():
    # leader: epoch 0 [0, 5), epoch 2 [5, ...)
    def leader_end(epoch):  # LeaderEpochCache.end_offset_for with a log end of 9
        if epoch < 0 or epoch > 2:
            return (-1, -1)
        return (0, 5) if epoch < 2 else (2, 9)

    assert diverging(-1, 3, leader_end) is None  # no epoch to check
    assert diverging(0, 4, leader_end) is None  # within epoch 0
    assert diverging(0, 5, leader_end) is None  # at its end
    assert diverging(0, 6, leader_end) == (0, 5)  # past where the leader's epoch 0 ended
    assert diverging(1, 5, leader_end) == (0, 5)  # an epoch the leader never had
    assert diverging(2, 9, leader_end) is None
    assert diverging(3, 4, leader_end) is None  # unknown to the leader: fenced elsewhere


def test_follower_with_a_longer_divergent_tail_is_told_by_the_fetch(tmp_path):
    leader, follower = open_log(tmp_path, "l"), open_log(tmp_path, "f")
    write(leader, 0, "a", "b", "c")
    fetch(follower, leader)
    write(follower, 1, "x", "y", "z")  # follower led epoch 1 alone
    write(leader, 2, "d")
    div = diverging(1, follower.log_end_offset, leader.end_offset_for_epoch)
    assert div == (0, 3)
    d = truncation_for(*div, follower.log_end_offset, 0, follower.end_offset_for_epoch)
    assert d == Truncation(3, True)
    follower.truncate_to(d.offset)
    fetch(follower, leader)
    assert entries(follower) == entries(leader)
