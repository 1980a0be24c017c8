"""Producers of the simulation: one per partition, one acks=all record in flight at a
time, each record a unique value. The leader comes from the metadata of a broker
(its last UpdateMetadata); an error or no answer within the timeout means asking
again. A record counts as acknowledged only when the leader answered NONE: the
invariants then require it never to be lost."""

from __future__ import annotations

from strom.common.types import TopicPartition
from strom.protocol.errors import ErrorCode
from strom.testing.sim.network import CLIENT
from strom.testing.sim.schedule import Timer
from strom.testing.sim.world import World

RETRY_MS = 50


class Producer:
    def __init__(self, world: World, tp: TopicPartition) -> None:
        self.world = world
        self.tp = tp
        self.next_value = tp.partition * 1_000_000
        self.leader = -1
        self.running = False
        self.request = 0
        self.sent = 0
        self.acked = 0
        self.errors: dict[str, int] = {}
        self._timeout: Timer | None = None

    def start(self) -> None:
        self.running = True
        self.world.sched.after(0, "produce", self.send)

    def stop(self) -> None:
        self.running = False

    def _refresh(self) -> None:
        """Metadata from a random live broker (as a client's bootstrap would)."""
        world = self.world
        live = [n for n in world.nodes.values() if n.up and not n.paused]
        if not live:
            self.leader = -1
            return
        node = world.rng.choice(live)
        self.leader = node.leaders.get(self.tp, (-1, -1))[0]

    def send(self) -> None:
        if not self.running:
            return
        world = self.world
        if self.leader < 0 or self.leader not in world.nodes:
            self._refresh()
        if self.leader < 0:
            world.sched.after(RETRY_MS * 4, "produce", self.send)
            return
        self.request += 1
        rid, value, tp = self.request, self.next_value, self.tp
        self.next_value += 1
        self.sent += 1
        node = world.nodes[self.leader]

        def at_leader() -> None:
            node.on_produce(
                tp,
                value,
                lambda code, offset, epoch: node.post(
                    CLIENT,
                    "produce-answer",
                    lambda: self._answered(rid, value, code, offset, epoch),
                ),
            )

        self._timeout = world.sched.after(
            world.config.produce_timeout_ms + 500, "produce-timeout", lambda: self._timed_out(rid)
        )
        if node.up:
            inc = node.incarnation
            world.net.send(CLIENT, node.id, "produce", lambda: node.accept(inc, at_leader))

    def _answered(self, rid: int, value: int, code: ErrorCode, offset: int, epoch: int) -> None:
        if rid != self.request:
            return  # given up on already
        self.request += 1
        if self._timeout is not None:
            self._timeout.cancel()
        world = self.world
        if code == ErrorCode.NONE:
            self.acked += 1
            world.checker.on_ack(self.tp, offset, value, epoch)
            world.sched.after(world.config.produce_interval_ms, "produce", self.send)
            return
        self._failed(code.name)

    def _timed_out(self, rid: int) -> None:
        if rid == self.request:
            self.request += 1
            self._failed("TIMEOUT")

    def _failed(self, why: str) -> None:
        self.errors[why] = self.errors.get(why, 0) + 1
        self._refresh()
        self.world.sched.after(RETRY_MS, "produce", self.send)
