"""Records as tests see them, and the checks that compare what was sent with what was read.

Every client library has its own message type; tests convert them to
:class:`Rec` so that one set of assertions serves all clients.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "Header",
    "Rec",
    "assert_acknowledged_read_back",
    "assert_same_partitions",
    "by_partition",
    "check_acknowledged_read_back",
]

Header = tuple[str, bytes | None]

MAX_PROBLEMS_SHOWN = 20


@dataclass(frozen=True, slots=True)
class Rec:
    """One record at a known partition and offset (offset -1 when not known yet)."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[Header, ...] = ()
    timestamp_ms: int | None = None

    def content(self) -> tuple[bytes | None, bytes | None, tuple[Header, ...]]:
        return (self.key, self.value, self.headers)


def by_partition(records: Iterable[Rec]) -> dict[int, list[Rec]]:
    """Records grouped by partition, each list sorted by offset."""
    out: dict[int, list[Rec]] = defaultdict(list)
    for rec in records:
        out[rec.partition].append(rec)
    for recs in out.values():
        recs.sort(key=lambda r: r.offset)
    return dict(out)


def _describe(rec: Rec) -> str:
    return (
        f"p{rec.partition}@{rec.offset} key={rec.key!r} value={_short(rec.value)} "
        f"headers={rec.headers!r} ts={rec.timestamp_ms}"
    )


def _short(value: bytes | None) -> str:
    if value is None or len(value) <= 40:
        return repr(value)
    return f"{value[:32]!r}...({len(value)} bytes)"


def _fail(problems: Sequence[str], what: str) -> None:
    if problems:
        shown = "\n  ".join(problems[:MAX_PROBLEMS_SHOWN])
        more = len(problems) - MAX_PROBLEMS_SHOWN
        tail = f"\n  ... and {more} more" if more > 0 else ""
        raise AssertionError(f"{what}: {len(problems)} problem(s)\n  {shown}{tail}")


def assert_same_partitions(
    expected: Mapping[int, Sequence[Rec]],
    actual: Mapping[int, Sequence[Rec]],
    *,
    check_offsets: bool = True,
    check_timestamps: bool = False,
) -> None:
    """Each partition holds exactly the expected records, in order (offsets too if asked)."""
    problems: list[str] = []
    for partition in sorted(set(expected) | set(actual)):
        want = list(expected.get(partition, ()))
        got = list(actual.get(partition, ()))
        if len(want) != len(got):
            problems.append(f"partition {partition}: expected {len(want)} records, read {len(got)}")
        for w, g in zip(want, got, strict=False):
            same = w.content() == g.content()
            if check_offsets:
                same = same and w.offset == g.offset
            if check_timestamps:
                same = same and w.timestamp_ms == g.timestamp_ms
            if not same:
                problems.append(f"expected {_describe(w)}\n    read     {_describe(g)}")
    _fail(problems, "records read back differ from records produced")


def check_acknowledged_read_back(acked: Iterable[Rec], read: Iterable[Rec]) -> list[str]:
    """Problems found when every acknowledged record must be read back exactly once.

    ``acked`` carry the partition and offset the broker acknowledged; ``read``
    is everything read back. Records that were never acknowledged may appear
    in ``read`` (they may have reached the log before a crash), but no offset
    may appear twice, offsets must increase within a partition, and every
    acknowledged record must be at its acknowledged offset with its content.
    """
    problems: list[str] = []
    at: dict[tuple[int, int], Rec] = {}
    last_offset: dict[int, int] = {}
    for rec in read:
        if (rec.partition, rec.offset) in at:
            problems.append(f"offset read twice: {_describe(rec)}")
        if rec.offset <= last_offset.get(rec.partition, -1):
            problems.append(f"offset out of order: {_describe(rec)}")
        last_offset[rec.partition] = rec.offset
        at[(rec.partition, rec.offset)] = rec
    seen_values: dict[bytes | None, int] = defaultdict(int)
    for rec in at.values():
        seen_values[rec.value] += 1
    for want in acked:
        got = at.get((want.partition, want.offset))
        if got is None:
            problems.append(f"acknowledged record lost: {_describe(want)}")
        elif got.content() != want.content():
            problems.append(f"acknowledged {_describe(want)}\n    but read {_describe(got)}")
        elif want.value is not None and seen_values[want.value] > 1:
            problems.append(f"acknowledged record read {seen_values[want.value]} times: {want}")
    return problems


def assert_acknowledged_read_back(acked: Iterable[Rec], read: Iterable[Rec]) -> None:
    """Raise AssertionError listing problems from :func:`check_acknowledged_read_back`."""
    _fail(check_acknowledged_read_back(acked, read), "acknowledged records not read back")
