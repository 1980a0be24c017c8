"""The fault checker's analysis on hand-made histories: each kind of anomaly alone."""

from __future__ import annotations

from strom.testing.checker import analyse, windows
from strom.testing.history import History, Read, TxnOutcome, Write, writer_value

RC, RU = "read_committed", "read_uncommitted"


def write(
    h: History, writer: str, n: int, partition: int, offset: int, at: float, txn: str | None = None
) -> Write:
    w = Write(writer, partition, writer_value(writer, n), sent_s=at - 0.01, txn=txn)
    w.acked_s, w.offset = at, offset
    h.writes.append(w)
    if txn is not None:
        h.txn_writes.setdefault(txn, []).append(w)
    return w


def read(
    h: History, consumer: str, isolation: str, rows: list[tuple[int, int, bytes]], epoch: int = -1
) -> None:
    h.read(consumer, isolation, [Read(consumer, isolation, p, o, v, epoch) for p, o, v in rows])


def clean_history() -> History:
    h = History(started=0.0)
    for i in range(10):
        write(h, "a", i, i % 2, i // 2, at=i * 0.1)
    rows = [(w.partition, w.offset, w.value) for w in h.writes]
    read(h, "c1", RU, rows)
    read(h, "c2", RC, rows)
    h.produce_ended_s = 1.0
    return h


def test_a_clean_history_has_no_problem() -> None:
    report = analyse(clean_history())
    assert report.ok, report.table()
    assert report.acknowledged == 10 and report.written == 10
    assert report.reads == {"c1": 10, "c2": 10}
    assert report.windows == []
    assert report.table().endswith("OK")


def test_an_acknowledged_record_not_read_is_lost() -> None:
    h = clean_history()
    h.reads = [
        r for r in h.reads if not (r.consumer == "c2" and r.offset == 3 and r.partition == 0)
    ]
    report = analyse(h)
    assert not report.ok
    assert report.lost == ["a:00000006 p0@3 not read by c2"]
    assert report.counts()["lost"] == 1


def test_a_consumer_that_read_nothing_loses_everything() -> None:
    h = clean_history()
    h.read("empty", RU, [])
    assert len(analyse(h).lost) == 10


def test_an_unacknowledged_write_may_be_missing_or_present() -> None:
    h = clean_history()
    failed = Write("a", 0, writer_value("a", 10), sent_s=0.95)
    failed.error, failed.failed_s = "timed out", 1.0
    h.writes.append(failed)
    assert analyse(h).ok
    read(h, "c1", RU, [(0, 5, failed.value)])
    read(h, "c2", RC, [(0, 5, failed.value)])
    report = analyse(h)
    assert report.ok and report.failed == 1


def test_a_value_read_at_two_offsets_is_duplicated() -> None:
    h = clean_history()
    read(h, "c1", RU, [(0, 5, writer_value("a", 8))])
    report = analyse(h)
    assert report.duplicated == ["c1 read a:00000008 at p0@4, p0@5"]
    # the acknowledgement said p0@4: the read at p0@5 is an inconsistent offset too
    assert report.inconsistent_offsets == ["a:00000008 acknowledged at p0@4, read at p0@5"]


def test_one_offset_read_twice_with_the_same_value_is_not_a_duplicate() -> None:
    h = clean_history()
    read(h, "c1", RU, [(0, 0, writer_value("a", 0))])
    assert analyse(h).ok


def test_a_writer_s_values_out_of_order_are_reordered() -> None:
    h = History(started=0.0)
    a = write(h, "a", 0, 0, 0, at=0.1)
    b = write(h, "a", 1, 0, 1, at=0.2)
    read(h, "c", RU, [(0, 0, b.value), (0, 1, a.value)])
    report = analyse(h)
    assert report.reordered == ["c read a:00000000 at p0@1 after a:00000001 at @0"]
    assert len(report.inconsistent_offsets) == 4  # each offset holds both values


def test_order_is_per_writer_and_per_partition() -> None:
    h = History(started=0.0)
    rows = [
        (0, 0, write(h, "b", 5, 0, 0, 0.1).value),
        (0, 1, write(h, "a", 0, 0, 1, 0.2).value),
        (1, 0, write(h, "a", 1, 1, 0, 0.3).value),
        (0, 2, write(h, "b", 6, 0, 2, 0.4).value),
    ]
    read(h, "c", RU, rows)
    assert analyse(h).ok


def transactional_history(outcome: TxnOutcome) -> tuple[History, list[Write]]:
    h = History(started=0.0)
    h.begin("t-1")
    ws = [write(h, "t", i, 0, i, at=0.1 * i, txn="t-1") for i in range(3)]
    h.ended("t-1", outcome)
    return h, ws


def test_a_committed_transaction_read_whole_is_clean() -> None:
    h, ws = transactional_history(TxnOutcome.COMMITTED)
    rows = [(0, w.offset, w.value) for w in ws]
    read(h, "rc", RC, rows)
    read(h, "ru", RU, rows)
    report = analyse(h)
    assert report.ok and report.acknowledged == 3
    assert report.transactions == {"committed": 1}


def test_a_committed_transaction_not_read_is_lost() -> None:
    h, _ = transactional_history(TxnOutcome.COMMITTED)
    read(h, "rc", RC, [])
    assert len(analyse(h).lost) == 3


def test_aborted_values_seen_read_committed_are_g1a() -> None:
    h, ws = transactional_history(TxnOutcome.ABORTED)
    rows = [(0, w.offset, w.value) for w in ws]
    read(h, "ru", RU, rows)  # read_uncommitted may see them
    assert analyse(h).ok
    read(h, "rc", RC, rows[:1])
    report = analyse(h)
    assert report.aborted_reads == ["rc read t:00000000 of aborted t-1"]
    assert report.acknowledged == 0 and report.lost == []


def test_values_of_a_transaction_never_committed_seen_read_committed() -> None:
    h, ws = transactional_history(TxnOutcome.OPEN)
    read(h, "rc", RC, [(0, ws[2].offset, ws[2].value)])
    report = analyse(h)
    assert report.never_committed_reads == ["rc read t:00000002 of t-1, never committed"]


def test_a_transaction_of_unknown_outcome_is_all_or_nothing() -> None:
    h, ws = transactional_history(TxnOutcome.UNKNOWN)
    read(h, "rc", RC, [(0, w.offset, w.value) for w in ws])
    assert analyse(h).ok
    h2, _ = transactional_history(TxnOutcome.UNKNOWN)
    read(h2, "rc", RC, [])
    assert analyse(h2).ok
    h3, ws3 = transactional_history(TxnOutcome.UNKNOWN)
    read(h3, "rc", RC, [(0, ws3[0].offset, ws3[0].value)])
    assert analyse(h3).partial_transactions == ["rc read 1 of the 3 values of t-1"]


def test_a_value_nobody_wrote_is_garbage() -> None:
    h = clean_history()
    read(h, "c1", RU, [(1, 5, b"\x00\xff torn")])
    report = analyse(h)
    assert report.garbage == ["c1 read b'\\x00\\xff torn' at p1@5"]


def test_two_acknowledgements_at_one_offset_are_inconsistent() -> None:
    """Two leaders acknowledging one offset (a split brain) shows in the acks alone."""
    h = History(started=0.0)
    write(h, "a", 0, 0, 7, at=0.1)
    b = write(h, "b", 0, 0, 7, at=0.2)
    read(h, "c", RU, [(0, 7, b.value)])
    report = analyse(h)
    assert "p0@7 holds a:00000000, b:00000000" in report.inconsistent_offsets
    assert report.lost == ["a:00000000 p0@7 not read by c"]


def test_consumers_disagreeing_on_an_offset_are_inconsistent() -> None:
    h = clean_history()
    h.reads = [r for r in h.reads if not (r.consumer == "c2" and r.partition == 1)]
    other = [(1, o, writer_value("a", 2 * o + 1)) for o in range(5)]
    other[2] = (1, 2, writer_value("a", 7))
    other[3] = (1, 3, writer_value("a", 5))
    read(h, "c2", RC, other)
    report = analyse(h)
    assert "p1@2 holds a:00000005, a:00000007" in report.inconsistent_offsets
    assert report.reordered == ["c2 read a:00000005 at p1@3 after a:00000007 at @2"]


def test_a_value_read_in_another_partition_is_inconsistent() -> None:
    h = History(started=0.0)
    w = write(h, "a", 0, 0, 0, at=0.1)
    read(h, "c", RU, [(1, 0, w.value)])
    report = analyse(h)
    assert "c read a:00000000 in p1, written to p0" in report.inconsistent_offsets


def test_windows_are_gaps_between_acknowledgements_per_partition() -> None:
    h = History(started=0.0)
    for i, t in enumerate([0.5, 0.9, 4.0, 4.2]):
        write(h, "a", i, 0, i, at=t)
    for i, t in enumerate([0.6, 1.0, 1.4, 1.8, 2.2, 2.6, 3.0, 3.4, 3.8]):
        write(h, "b", i, 1, i, at=t)
    failed = Write("a", 0, writer_value("a", 99), sent_s=1.0)
    failed.error, failed.failed_s = "NOT_LEADER", 2.0
    h.writes.append(failed)
    h.produce_ended_s = 6.0
    found = windows(h, gap_s=1.0)
    assert [(w.partition, w.start_s, w.end_s, w.failures) for w in found] == [
        (0, 0.9, 4.0, 1),
        (0, 4.2, 6.0, 0),
        (1, 3.8, 6.0, 0),
    ]
    report = analyse(h, gap_s=1.0)
    lo, med, hi = report.unavailability()
    assert (round(lo, 2), round(med, 2), round(hi, 2)) == (1.8, 2.2, 3.1)


def test_no_acknowledgement_at_all_means_no_window_to_measure() -> None:
    h = History(started=0.0)
    failed = Write("a", 0, writer_value("a", 0), sent_s=0.0)
    failed.error, failed.failed_s = "x", 1.0
    h.writes.append(failed)
    assert windows(h) == []
    assert analyse(h).unavailability() == (0.0, 0.0, 0.0)


def test_acknowledgements_are_grouped_by_the_leader_epoch_read_back() -> None:
    h = History(started=0.0)
    ws = [write(h, "a", i, 0, i, at=float(i)) for i in range(5)]
    h.read("c", RU, [Read("c", RU, 0, w.offset, w.value, 3 if w.offset < 2 else 4) for w in ws])
    epochs = analyse(h).epochs
    assert [(e.leader_epoch, e.count, e.first_offset, e.last_offset) for e in epochs] == [
        (3, 2, 0, 1),
        (4, 3, 2, 4),
    ]
    assert (epochs[1].first_ack_s, epochs[1].last_ack_s) == (2.0, 4.0)


def test_the_table_lists_figures_windows_and_problems() -> None:
    h = clean_history()
    h.reads.pop()
    text = analyse(h).table()
    assert "acknowledged" in text and "lost" in text
    assert "lost: a:00000009 p1@4 not read by c2" in text
    assert text.endswith("FAILED")
