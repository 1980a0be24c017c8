"""The simulated network between brokers, ZooKeeper and the clients.

Messages are callbacks run at the receiver after a delay. A link (directed: from,
to) can be cut, which drops what is sent over it and what is in flight when it
arrives (a broken connection); a slow link adds a random delay per message, so
messages on it overtake each other (reordering); in a duplication window a message
may arrive twice (a request resent after a lost answer). The endpoints are broker
ids, :data:`ZK` and :data:`CLIENT`.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from strom.testing.sim.schedule import Scheduler

ZK = 0
CLIENT = -1
BASE_DELAY_MS = (1, 4)


class Network:
    def __init__(self, sched: Scheduler, rng: random.Random) -> None:
        self.sched = sched
        self.rng = rng
        self.cut: dict[tuple[int, int], int] = {}  # link -> how many faults cut it
        self.slow: dict[tuple[int, int], int] = {}  # link -> extra delay bound
        self.duplicate_p = 0.0
        self.sent = 0
        self.dropped = 0

    # -- faults ------------------------------------------------------------------------
    def set_cut(self, src: int, dst: int, on: bool) -> None:
        key = (src, dst)
        n = self.cut.get(key, 0) + (1 if on else -1)
        if n > 0:
            self.cut[key] = n
        else:
            self.cut.pop(key, None)

    def set_slow(self, src: int, dst: int, extra_ms: int) -> None:
        if extra_ms > 0:
            self.slow[(src, dst)] = extra_ms
        else:
            self.slow.pop((src, dst), None)

    def heal(self) -> None:
        self.cut.clear()
        self.slow.clear()
        self.duplicate_p = 0.0

    def up(self, src: int, dst: int) -> bool:
        return (src, dst) not in self.cut

    # -- sending -----------------------------------------------------------------------
    def _delay(self, src: int, dst: int) -> int:
        delay = self.rng.randint(*BASE_DELAY_MS)
        extra = self.slow.get((src, dst))
        if extra:
            delay += self.rng.randint(0, extra)
        return delay

    def send(self, src: int, dst: int, label: str, deliver: Callable[[], None]) -> bool:
        """Deliver later unless the link is cut now or then; False when dropped now."""
        self.sent += 1
        if not self.up(src, dst):
            self.dropped += 1
            return False

        def arrive() -> None:
            if self.up(src, dst):
                deliver()
            else:
                self.dropped += 1

        self.sched.after(self._delay(src, dst), label, arrive)
        if self.duplicate_p and self.rng.random() < self.duplicate_p:
            self.sched.after(self._delay(src, dst) + 5, label + "(dup)", arrive)
        return True
