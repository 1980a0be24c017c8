"""Simulated time and the fault schedule.

:class:`Scheduler` is a discrete-event loop: callbacks at simulated milliseconds,
run one per step in (time, insertion) order, so that a seed replays identically.
:func:`generate_faults` draws the seeded list of faults a run injects: crashes and
restarts, pauses, network partitions (a node isolated, a link cut both ways or one
way, a node cut off from ZooKeeper), slow links that reorder, duplicated messages,
disk errors, controlled shutdowns and admin operations (reassignments, preferred
elections). Every fault with a duration heals itself; all are healed at the end.
Faults on a broker often strike the controller, faults on a link a partition
leader's (decided when they strike: strom.testing.sim.faults.target).
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

FAULT_KINDS = (
    "crash",
    "pause",
    "isolate",
    "cut",
    "cut_one_way",
    "leader_cut",
    "zk_cut",
    "slow",
    "duplicate",
    "disk",
    "shutdown",
    "reassign",
    "elect",
)


class Timer:
    __slots__ = ("cancelled", "fn", "label", "seq", "time")

    def __init__(self, time: int, seq: int, label: str, fn: Callable[[], None]) -> None:
        self.time = time
        self.seq = seq
        self.label = label
        self.fn = fn
        self.cancelled = False

    def __lt__(self, other: Timer) -> bool:
        return (self.time, self.seq) < (other.time, other.seq)

    def cancel(self) -> None:
        self.cancelled = True


class Scheduler:
    def __init__(self) -> None:
        self.now_ms = 0
        self.steps = 0
        self._heap: list[Timer] = []
        self._seq = 0

    def at(self, time_ms: int, label: str, fn: Callable[[], None]) -> Timer:
        self._seq += 1
        timer = Timer(max(time_ms, self.now_ms), self._seq, label, fn)
        heapq.heappush(self._heap, timer)
        return timer

    def after(self, delay_ms: int, label: str, fn: Callable[[], None]) -> Timer:
        return self.at(self.now_ms + delay_ms, label, fn)

    def next_time(self) -> int | None:
        while self._heap and self._heap[0].cancelled:
            heapq.heappop(self._heap)
        return self._heap[0].time if self._heap else None

    def step(self) -> Timer | None:
        """Run the next callback; None when nothing is scheduled."""
        while self._heap:
            timer = heapq.heappop(self._heap)
            if timer.cancelled:
                continue
            self.now_ms = timer.time
            self.steps += 1
            timer.fn()
            return timer
        return None


@dataclass(frozen=True, slots=True)
class Fault:
    """One injected fault: ``kind`` on ``node`` (and ``other``) at ``at_ms`` for
    ``duration_ms``; ``arg`` is kind-specific (disk: appends that fail; reassign and
    elect: which partition and target; slow: the extra delay)."""

    at_ms: int
    kind: str
    node: int
    other: int = -1
    duration_ms: int = 0
    arg: int = 0

    def __str__(self) -> str:
        other = f"/{self.other}" if self.other >= 0 else ""
        return (
            f"{self.at_ms}ms {self.kind} {self.node}{other} for {self.duration_ms}ms arg {self.arg}"
        )

    def as_list(self) -> list[int | str]:
        return [self.at_ms, self.kind, self.node, self.other, self.duration_ms, self.arg]


def fault_from_list(raw: Sequence[int | str]) -> Fault:
    at, kind, node, other, duration, arg = raw
    return Fault(int(at), str(kind), int(node), int(other), int(duration), int(arg))


def generate_faults(
    rng: random.Random,
    nodes: Sequence[int],
    start_ms: int,
    end_ms: int,
    count: int,
    kinds: Sequence[str] = FAULT_KINDS,
) -> list[Fault]:
    out = []
    for _ in range(count):
        at = rng.randrange(start_ms, end_ms)
        kind = rng.choice(list(kinds))
        node = rng.choice(list(nodes))
        other = rng.choice([n for n in nodes if n != node]) if len(nodes) > 1 else -1
        duration = rng.choice((300, 1_000, 2_500, 5_000, 9_000))
        arg = rng.randrange(1_000_000)
        out.append(Fault(at, kind, node, other, duration, arg))
    out.sort(key=lambda f: (f.at_ms, f.kind, f.node))
    return out
