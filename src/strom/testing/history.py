"""What a fault run did, as the checker sees it: every write with its acknowledgement
(or failure) and its time, every transaction's outcome, every record read back, and
the faults injected.

Producers write unique values ``<writer>:<n>`` (``n`` counts up per writer) with the
writer as the key, so a value names its writer and its place in that writer's
sequence. Times are seconds since the history started (``time.monotonic``).
:class:`History` is thread safe: producer threads and callbacks record into it.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path

__all__ = [
    "Event",
    "History",
    "Read",
    "TxnOutcome",
    "Write",
    "parse_value",
    "writer_value",
]


class TxnOutcome(StrEnum):
    """What the producer knows of a transaction's end."""

    COMMITTED = "committed"  # commit_transaction returned
    ABORTED = "aborted"  # abort_transaction returned
    UNKNOWN = "unknown"  # commit attempted, its result not known (an error, a fencing)
    OPEN = "open"  # never committed nor aborted by the producer (it died or was fenced)


@dataclass(slots=True)
class Write:
    """One record sent: its writer, partition and value; filled in when it settles."""

    writer: str
    partition: int
    value: bytes
    sent_s: float
    txn: str | None = None
    acked_s: float | None = None
    offset: int = -1
    error: str | None = None
    failed_s: float | None = None

    @property
    def acked(self) -> bool:
        return self.acked_s is not None


@dataclass(frozen=True, slots=True)
class Read:
    """One record as a consumer read it."""

    consumer: str
    isolation: str  # "read_committed" or "read_uncommitted"
    partition: int
    offset: int
    value: bytes
    leader_epoch: int = -1


@dataclass(frozen=True, slots=True)
class Event:
    """A fault (or its end) at a time: ``what`` is a short phrase ("kill broker 2")."""

    at_s: float
    what: str
    until_s: float | None = None


def writer_value(writer: str, n: int) -> bytes:
    return f"{writer}:{n:08d}".encode()


def parse_value(value: bytes) -> tuple[str, int] | None:
    """(writer, n) of a value written by :func:`writer_value`; None for another value."""
    writer, sep, n = value.rpartition(b":")
    if not sep or not n.isdigit():
        return None
    return writer.decode(errors="replace"), int(n)


@dataclass
class History:
    """Everything recorded during one run; ``started`` is the monotonic time of t=0."""

    started: float = field(default_factory=time.monotonic)
    writes: list[Write] = field(default_factory=list)
    txns: dict[str, TxnOutcome] = field(default_factory=dict)
    txn_writes: dict[str, list[Write]] = field(default_factory=dict)
    reads: list[Read] = field(default_factory=list)
    consumers: dict[str, str] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    produce_ended_s: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def now(self) -> float:
        return time.monotonic() - self.started

    def sent(self, writer: str, partition: int, value: bytes, txn: str | None = None) -> Write:
        w = Write(writer, partition, value, self.now(), txn)
        with self._lock:
            self.writes.append(w)
            if txn is not None:
                self.txn_writes.setdefault(txn, []).append(w)
        return w

    def acked(self, write: Write, offset: int) -> None:
        with self._lock:
            write.acked_s = self.now()
            write.offset = offset

    def failed(self, write: Write, error: str) -> None:
        with self._lock:
            write.error = error
            write.failed_s = self.now()

    def begin(self, txn: str) -> None:
        with self._lock:
            self.txns[txn] = TxnOutcome.OPEN
            self.txn_writes.setdefault(txn, [])

    def ended(self, txn: str, outcome: TxnOutcome) -> None:
        with self._lock:
            self.txns[txn] = outcome

    def read(self, consumer: str, isolation: str, records: list[Read]) -> None:
        """Everything ``consumer`` read (it is checked even when it read nothing)."""
        with self._lock:
            self.consumers[consumer] = isolation
            self.reads.extend(records)

    def event(self, what: str, until_s: float | None = None) -> Event:
        e = Event(self.now(), what, until_s)
        with self._lock:
            self.events.append(e)
        return e

    def span(self, what: str, started_s: float) -> None:
        """A fault that lasted from ``started_s`` until now."""
        with self._lock:
            self.events.append(Event(started_s, what, self.now()))

    def production_ended(self, at_s: float | None = None) -> None:
        self.produce_ended_s = self.now() if at_s is None else at_s

    def dump(self, path: Path) -> None:
        """Everything recorded, as JSON (for looking into a failed run)."""
        with self._lock:
            body = {
                "writes": [asdict(w) for w in self.writes],
                "txns": {k: str(v) for k, v in self.txns.items()},
                "reads": [asdict(r) for r in self.reads],
                "consumers": self.consumers,
                "events": [asdict(e) for e in self.events],
                "produce_ended_s": self.produce_ended_s,
            }
        text = json.dumps(body, default=lambda b: b.decode(errors="replace"))
        path.write_text(text)
