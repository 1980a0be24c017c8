"""The checker of fault runs: what producers were told against what consumers read.

:func:`analyse` takes a :class:`~strom.testing.history.History` (every write with
its acknowledgement or failure, every transaction's outcome, every record each
consumer read from the start of every partition to its end) and finds:

- lost: an acknowledged record (an acknowledged idempotent write, or a write of a
  committed transaction) that a consumer did not read;
- duplicated: a value one consumer read at two offsets;
- reordered: within a partition, a writer's values out of the order it wrote them;
- aborted reads (G1a): a read_committed consumer saw a value of an aborted
  transaction; never-committed reads: it saw a value of a transaction its producer
  never tried to commit; partial transactions: it saw some values of a transaction
  whose commit had an unknown result, not all;
- garbage: a value that no writer wrote (a torn or corrupted record served);
- inconsistent offsets: two values at one offset (across acknowledgements and
  reads), or a value read at another offset than the one acknowledged;
- unavailability windows: each stretch longer than ``gap_s`` in which a partition
  acknowledged no write (from the acknowledgement times), with the failures in it.

It also lists, per partition and leader epoch (of the batches as read back), the
acknowledged writes: how many, their offsets and the times of their
acknowledgements, which shows which leader acknowledged what.
"""

from __future__ import annotations

import itertools
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from strom.testing.history import History, Read, TxnOutcome, Write, parse_value

__all__ = ["EpochAcks", "Report", "Window", "analyse"]

DEFAULT_GAP_S = 1.0
COMMITTED = "read_committed"


@dataclass(frozen=True, slots=True)
class Window:
    """A stretch in which ``partition`` acknowledged no write."""

    partition: int
    start_s: float
    end_s: float
    failures: int = 0

    @property
    def length_s(self) -> float:
        return self.end_s - self.start_s


@dataclass(frozen=True, slots=True)
class EpochAcks:
    """The acknowledged writes of one partition that a leader epoch appended."""

    partition: int
    leader_epoch: int
    count: int
    first_offset: int
    last_offset: int
    first_ack_s: float
    last_ack_s: float


@dataclass
class Report:
    written: int = 0
    acknowledged: int = 0
    failed: int = 0
    reads: dict[str, int] = field(default_factory=dict)
    transactions: Counter[str] = field(default_factory=Counter)
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    reordered: list[str] = field(default_factory=list)
    aborted_reads: list[str] = field(default_factory=list)
    never_committed_reads: list[str] = field(default_factory=list)
    partial_transactions: list[str] = field(default_factory=list)
    garbage: list[str] = field(default_factory=list)
    inconsistent_offsets: list[str] = field(default_factory=list)
    windows: list[Window] = field(default_factory=list)
    epochs: list[EpochAcks] = field(default_factory=list)

    PROBLEMS = (
        "lost",
        "duplicated",
        "reordered",
        "aborted_reads",
        "never_committed_reads",
        "partial_transactions",
        "garbage",
        "inconsistent_offsets",
    )

    @property
    def ok(self) -> bool:
        return not any(getattr(self, name) for name in self.PROBLEMS)

    def problems(self, limit: int = 10) -> list[str]:
        """The first ``limit`` problems of each kind, as one line each."""
        out: list[str] = []
        for name in self.PROBLEMS:
            found: list[str] = getattr(self, name)
            out += [f"{name}: {p}" for p in found[:limit]]
            if len(found) > limit:
                out.append(f"{name}: ... and {len(found) - limit} more")
        return out

    def unavailability(self) -> tuple[float, float, float]:
        """(min, median, max) length of the windows in seconds (zeros when none)."""
        lengths = [w.length_s for w in self.windows]
        if not lengths:
            return (0.0, 0.0, 0.0)
        return (min(lengths), statistics.median(lengths), max(lengths))

    def counts(self) -> dict[str, int]:
        figures = {
            "written": self.written,
            "acknowledged": self.acknowledged,
            "failed": self.failed,
        }
        figures.update({f"read ({name})": n for name, n in sorted(self.reads.items())})
        figures.update({f"transactions {k}": v for k, v in sorted(self.transactions.items())})
        figures.update({name.replace("_", " "): len(getattr(self, name)) for name in self.PROBLEMS})
        figures["unavailability windows"] = len(self.windows)
        return figures

    def table(self) -> str:
        """The report as a plain-text table, then the windows and the problems."""
        rows = list(self.counts().items())
        lo, med, hi = self.unavailability()
        width = max(len(k) for k, _ in rows)
        lines = [f"{k:<{width}}  {v:>9}" for k, v in rows]
        lines.append(f"{'unavailable s (min/med/max)':<{width}}  {lo:.2f}/{med:.2f}/{hi:.2f}")
        for w in self.windows:
            lines.append(
                f"  p{w.partition}: no write acknowledged from {w.start_s:.2f} s to "
                f"{w.end_s:.2f} s ({w.length_s:.2f} s, {w.failures} failed)"
            )
        lines += self.problems()
        lines.append("OK" if self.ok else "FAILED")
        return "\n".join(lines)


def analyse(history: History, gap_s: float = DEFAULT_GAP_S) -> Report:
    """Check ``history``; see the module docstring for what is found."""
    report = Report(written=len(history.writes))
    report.failed = sum(1 for w in history.writes if not w.acked and w.error is not None)
    report.transactions = Counter(str(o) for o in history.txns.values())
    acknowledged = [w for w in history.writes if _acknowledged(w, history)]
    report.acknowledged = len(acknowledged)
    by_value = {w.value: w for w in history.writes}
    reads_by_consumer: dict[str, list[Read]] = {name: [] for name in history.consumers}
    for r in history.reads:
        reads_by_consumer.setdefault(r.consumer, []).append(r)
    seen: dict[str, set[bytes]] = {}
    for name, reads in reads_by_consumer.items():
        unique = _check_consumer(report, name, reads, by_value, history)
        seen[name] = {r.value for r in unique}
        report.reads[name] = len(unique)
    for w in acknowledged:
        missed = sorted(name for name, values in seen.items() if w.value not in values)
        if missed:
            report.lost.append(f"{_describe(w)} not read by {', '.join(missed)}")
    _check_offsets(report, history)
    report.windows = windows(history, gap_s)
    report.epochs = epoch_acks(history)
    return report


def _acknowledged(w: Write, history: History) -> bool:
    if w.txn is None:
        return w.acked
    return history.txns.get(w.txn) == TxnOutcome.COMMITTED


def _describe(w: Write) -> str:
    at = f"p{w.partition}@{w.offset}" if w.offset >= 0 else f"p{w.partition}"
    txn = f" in {w.txn}" if w.txn else ""
    return f"{w.value.decode(errors='replace')} {at}{txn}"


def _check_consumer(
    report: Report,
    name: str,
    reads: list[Read],
    by_value: dict[bytes, Write],
    history: History,
) -> list[Read]:
    """The consumer's reads without repeats of one offset; problems into ``report``."""
    unique = _unique(report, name, reads)
    last_n: dict[tuple[int, str], tuple[int, int]] = {}
    for r in unique:
        w = by_value.get(r.value)
        parsed = parse_value(r.value)
        if w is None or parsed is None:
            report.garbage.append(f"{name} read {r.value[:60]!r} at p{r.partition}@{r.offset}")
            continue
        _check_order(report, name, r, parsed, last_n)
        if r.partition != w.partition:
            report.inconsistent_offsets.append(
                f"{name} read {r.value.decode()} in p{r.partition}, written to p{w.partition}"
            )
        if r.isolation == COMMITTED and w.txn is not None:
            _check_isolation(report, name, r, w, history)
    _check_duplicates(report, name, unique)
    isolation = history.consumers.get(name) or (reads[0].isolation if reads else "")
    if isolation == COMMITTED:
        _check_atomic(report, name, {r.value for r in unique}, history)
    return unique


def _unique(report: Report, name: str, reads: list[Read]) -> list[Read]:
    """One read per offset, in offset order; an offset read with two values is reported."""
    at: dict[tuple[int, int], Read] = {}
    for r in reads:
        first = at.setdefault((r.partition, r.offset), r)
        if first.value != r.value:
            report.inconsistent_offsets.append(
                f"{name} read p{r.partition}@{r.offset} as {first.value!r} and {r.value!r}"
            )
    return sorted(at.values(), key=lambda r: (r.partition, r.offset))


def _check_order(
    report: Report,
    name: str,
    r: Read,
    parsed: tuple[str, int],
    last_n: dict[tuple[int, str], tuple[int, int]],
) -> None:
    writer, n = parsed
    previous = last_n.get((r.partition, writer))
    if previous is not None and n <= previous[0]:
        report.reordered.append(
            f"{name} read {r.value.decode()} at p{r.partition}@{r.offset} after "
            f"{writer}:{previous[0]:08d} at @{previous[1]}"
        )
    last_n[(r.partition, writer)] = (n, r.offset)


def _check_duplicates(report: Report, name: str, unique: list[Read]) -> None:
    offsets: dict[bytes, list[Read]] = defaultdict(list)
    for r in unique:
        offsets[r.value].append(r)
    for value, where in offsets.items():
        if len(where) > 1:
            places = ", ".join(f"p{r.partition}@{r.offset}" for r in where)
            report.duplicated.append(f"{name} read {value.decode(errors='replace')} at {places}")


def _check_isolation(report: Report, name: str, r: Read, w: Write, history: History) -> None:
    outcome = history.txns.get(w.txn or "")
    if outcome == TxnOutcome.ABORTED:
        report.aborted_reads.append(f"{name} read {r.value.decode()} of aborted {w.txn}")
    elif outcome == TxnOutcome.OPEN:
        report.never_committed_reads.append(
            f"{name} read {r.value.decode()} of {w.txn}, never committed"
        )


def _check_atomic(report: Report, name: str, values: set[bytes], history: History) -> None:
    for txn, outcome in history.txns.items():
        if outcome != TxnOutcome.UNKNOWN:
            continue
        writes = history.txn_writes.get(txn, [])
        visible = sum(1 for w in writes if w.value in values)
        if 0 < visible < len(writes):
            report.partial_transactions.append(
                f"{name} read {visible} of the {len(writes)} values of {txn}"
            )


def _check_offsets(report: Report, history: History) -> None:
    """Two values at one offset, or a value read elsewhere than it was acknowledged."""
    values_at: dict[tuple[int, int], set[bytes]] = defaultdict(set)
    acked_at: dict[bytes, tuple[int, int]] = {}
    for w in history.writes:
        if w.acked and w.offset >= 0:
            values_at[(w.partition, w.offset)].add(w.value)
            acked_at[w.value] = (w.partition, w.offset)
    for r in history.reads:
        values_at[(r.partition, r.offset)].add(r.value)
    for (partition, offset), values in sorted(values_at.items()):
        if len(values) > 1:
            shown = ", ".join(sorted(v.decode(errors="replace") for v in values))
            report.inconsistent_offsets.append(f"p{partition}@{offset} holds {shown}")
    misplaced: set[tuple[bytes, int, int]] = set()
    for r in history.reads:
        want = acked_at.get(r.value)
        if want is not None and want[0] == r.partition and want[1] != r.offset:
            misplaced.add((r.value, r.partition, r.offset))
    for value, partition, offset in sorted(misplaced):
        report.inconsistent_offsets.append(
            f"{value.decode()} acknowledged at p{partition}@{acked_at[value][1]}, "
            f"read at p{partition}@{offset}"
        )


def windows(history: History, gap_s: float = DEFAULT_GAP_S) -> list[Window]:
    """Each stretch longer than ``gap_s`` without an acknowledgement, per partition,
    between the first acknowledgement of the run and the end of production."""
    acks: dict[int, list[float]] = defaultdict(list)
    failures: dict[int, list[float]] = defaultdict(list)
    partitions: set[int] = set()
    for w in history.writes:
        partitions.add(w.partition)
        if w.acked_s is not None:
            acks[w.partition].append(w.acked_s)
        elif w.failed_s is not None:
            failures[w.partition].append(w.failed_s)
    everything = [t for times in acks.values() for t in times]
    if not everything:
        return []
    start = min(everything)
    end = history.produce_ended_s
    if end is None:
        end = max(max(everything), max((w.sent_s for w in history.writes), default=0.0))
    out: list[Window] = []
    for partition in sorted(partitions):
        times = [start, *sorted(t for t in acks[partition] if start <= t <= end), end]
        for a, b in itertools.pairwise(times):
            if b - a > gap_s:
                failed = sum(1 for t in failures[partition] if a <= t <= b)
                out.append(Window(partition, a, b, failed))
    return out


def epoch_acks(history: History) -> list[EpochAcks]:
    """Acknowledged writes per partition and leader epoch of the batch read back."""
    epoch_at: dict[tuple[int, int], int] = {}
    for r in history.reads:
        if r.leader_epoch >= 0:
            epoch_at[(r.partition, r.offset)] = r.leader_epoch
    groups: dict[tuple[int, int], list[Write]] = defaultdict(list)
    for w in history.writes:
        epoch = epoch_at.get((w.partition, w.offset))
        if w.acked_s is not None and epoch is not None:
            groups[(w.partition, epoch)].append(w)
    return [_epoch_summary(p, e, ws) for (p, e), ws in sorted(groups.items())]


def _epoch_summary(partition: int, epoch: int, writes: Iterable[Write]) -> EpochAcks:
    ws = list(writes)
    offsets = [w.offset for w in ws]
    times = [w.acked_s for w in ws if w.acked_s is not None]
    return EpochAcks(partition, epoch, len(ws), min(offsets), max(offsets), min(times), max(times))
