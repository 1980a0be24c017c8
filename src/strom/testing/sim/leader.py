"""The leader's side of replication between simulated brokers, as strom.broker does it:
a follower's Fetch (strom.broker.fetch._follower_read: the epoch check, the diverging
epoch, the read up to the log end, the follower's fetch state, an ISR expansion)
long-polled up to replica.fetch.wait.max.ms, and OffsetForLeaderEpoch
(strom.broker.offsets._epoch_end_offset)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from strom.common.types import TopicPartition
from strom.protocol.errors import ErrorCode, KafkaError
from strom.replication.partition import Partition
from strom.replication.truncation import diverging
from strom.testing.sim.memlog import MemoryLog, encode_entries
from strom.testing.sim.schedule import Timer

if TYPE_CHECKING:
    from strom.testing.sim.node import SimNode


@dataclass(frozen=True, slots=True)
class FetchPart:
    tp: TopicPartition
    current_leader_epoch: int
    fetch_offset: int
    last_fetched_epoch: int


@dataclass(slots=True)
class FetchResult:
    tp: TopicPartition
    error: ErrorCode = ErrorCode.NONE
    records: bytes = b""
    high_watermark: int = -1
    log_start_offset: int = -1
    diverging: tuple[int, int] | None = None


def log_of(part: Partition[MemoryLog]) -> MemoryLog:
    return part.log


# -- Fetch and OffsetForLeaderEpoch -------------------------------------------------
@dataclass(slots=True)
class Parked:
    replica: int
    replica_epoch: int
    parts: list[FetchPart]
    reply: Callable[[list[FetchResult]], None]
    timer: Timer | None = None
    tps: set[TopicPartition] = field(default_factory=set)


class LeaderSide:
    def __init__(self, node: SimNode) -> None:
        self.node = node
        self.parked: list[Parked] = []

    def _leader(self, tp: TopicPartition, current_leader_epoch: int) -> Partition[MemoryLog]:
        part = self.node.partitions.get(tp)
        if part is None:
            raise KafkaError(ErrorCode.NOT_LEADER_OR_FOLLOWER)
        part.check_leader_epoch(current_leader_epoch)
        part.require_leader()
        return part

    def _read_one(self, replica: int, replica_epoch: int, fp: FetchPart) -> FetchResult:
        node = self.node
        out = FetchResult(fp.tp)
        try:
            part = self._leader(fp.tp, fp.current_leader_epoch)
            log = log_of(part)
            div = diverging(fp.last_fetched_epoch, fp.fetch_offset, log.end_offset_for_epoch)
            if div is not None:
                out.diverging, out.high_watermark = div, part.high_watermark
                return out
            if not log.log_start_offset <= fp.fetch_offset <= log.log_end_offset:
                raise KafkaError(ErrorCode.OFFSET_OUT_OF_RANGE)
            entries = log.read_entries(fp.fetch_offset, node.cfg.fetch_max_records)
            if part.update_follower_fetch_state(
                replica, fp.fetch_offset, 0, node.now_ms, replica_epoch
            ):
                node.on_high_watermark(fp.tp)
            node.alter.submit(part.maybe_expand_isr())
            out.records = encode_entries(entries)
            out.high_watermark, out.log_start_offset = part.high_watermark, log.log_start_offset
        except KafkaError as e:
            out.error = e.code
            part_or_none = node.partitions.get(fp.tp)
            if e.code == ErrorCode.OFFSET_OUT_OF_RANGE and part_or_none is not None:
                out.high_watermark = part_or_none.high_watermark
                out.log_start_offset = part_or_none.log.log_start_offset
        return out

    def _read_all(self, p: Parked) -> tuple[list[FetchResult], bool]:
        results = [self._read_one(p.replica, p.replica_epoch, fp) for fp in p.parts]
        ready = any(r.records or r.error != ErrorCode.NONE for r in results)
        return results, ready

    def on_fetch(
        self,
        replica: int,
        replica_epoch: int,
        parts: list[FetchPart],
        reply: Callable[[list[FetchResult]], None],
    ) -> None:
        """A follower's Fetch: answered at once when there are records or errors, else
        when an append or high watermark change wakes it, or after the max wait."""
        p = Parked(replica, replica_epoch, parts, reply, tps={fp.tp for fp in parts})
        results, ready = self._read_all(p)
        if ready:
            reply(results)
            return
        p.timer = self.node.later(
            self.node.cfg.fetch_wait_max_ms, "fetch-wait", lambda: self._expire(p)
        )
        self.parked.append(p)

    def _expire(self, p: Parked) -> None:
        if p in self.parked:
            self.parked.remove(p)
            p.reply(self._read_all(p)[0])

    def wake(self, tp: TopicPartition) -> None:
        for p in [p for p in self.parked if tp in p.tps]:
            if p not in self.parked:
                continue
            self.parked.remove(p)
            results, ready = self._read_all(p)
            if ready:
                if p.timer is not None:
                    p.timer.cancel()
                p.reply(results)
            else:
                self.parked.append(p)

    def on_offset_for_leader_epoch(
        self, asks: list[tuple[TopicPartition, int, int]]
    ) -> list[tuple[TopicPartition, ErrorCode, int, int]]:
        out = []
        for tp, current_leader_epoch, epoch in asks:
            try:
                part = self._leader(tp, current_leader_epoch)
                e, end = log_of(part).end_offset_for_epoch(epoch)
                out.append((tp, ErrorCode.NONE, e, end))
            except KafkaError as exc:
                out.append((tp, exc.code, -1, -1))
        return out
