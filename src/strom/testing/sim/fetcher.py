"""Replication between simulated brokers, as strom.broker does it:

- followers: one fetcher per leader (strom.broker.replica_fetcher.ReplicaFetcher), a
  loop of OffsetForLeaderEpoch rounds for the partitions that became followers
  (strom.replication.truncation.truncation_for), then Fetch with the follower's log
  end, last fetched epoch and broker epoch; a diverging epoch truncates, records are
  appended as the leader has them; errors back off;
- leaders: the follower's Fetch (strom.broker.fetch._follower_read: the epoch check,
  the diverging epoch, the read up to the log end, the follower's fetch state, an
  ISR expansion) long-polled up to replica.fetch.wait.max.ms, and OffsetForLeaderEpoch;
- the AlterPartition sender (strom.broker.cluster_member.AlterPartitionManager).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from strom.common.types import TopicPartition
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.generated.alter_partition import AlterPartitionRequest as APReq
from strom.protocol.generated.alter_partition import AlterPartitionResponse as APResp
from strom.replication.partition import IsrChange, Partition
from strom.replication.truncation import diverging, truncation_for
from strom.storage.log import UnexpectedAppendOffsetError
from strom.testing.sim.memlog import MemoryLog, decode_entries, encode_entries
from strom.testing.sim.schedule import Timer

if TYPE_CHECKING:
    from strom.testing.sim.node import SimNode

ALTER_PARTITION_VERSION = 3
RETRY_MS = 100


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


@dataclass(slots=True)
class Follow:
    part: Partition
    leader_epoch: int
    truncating: bool = True
    delayed_until_ms: int = 0


def _log(part: Partition) -> MemoryLog:
    return part.log  # type: ignore[return-value]


# -- the leader's side --------------------------------------------------------------------------
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

    def _leader(self, tp: TopicPartition, current_leader_epoch: int) -> Partition:
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
            log = _log(part)
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
                e, end = _log(part).end_offset_for_epoch(epoch)
                out.append((tp, ErrorCode.NONE, e, end))
            except KafkaError as exc:
                out.append((tp, exc.code, -1, -1))
        return out


# -- the follower's side -------------------------------------------------------------------------
class LeaderFetcher:
    """Follows, from one leader, the partitions given to it (one request at a time)."""

    def __init__(self, node: SimNode, leader_id: int) -> None:
        self.node = node
        self.leader_id = leader_id
        self.partitions: dict[TopicPartition, Follow] = {}
        self.running = False
        self.request_id = 0
        self.timeout: Timer | None = None

    def kick(self) -> None:
        if not self.running:
            self.running = True
            self.node.later(0, "fetcher", self.loop)

    def loop(self) -> None:
        if not self.partitions:
            self.running = False
            return
        self.truncate_round({tp: f for tp, f in self.partitions.items() if f.truncating})

    def _backoff(self) -> None:
        self.node.later(self.node.cfg.fetch_backoff_ms, "fetcher", self.loop)

    def _request(self, label: str, at_leader: Callable[[Callable[[object], None]], None],
                 on_answer: Callable[[object], None]) -> None:
        """One request to the leader; the answer or, after the timeout, a backoff."""
        node = self.node
        self.request_id += 1
        rid, inc = self.request_id, node.incarnation

        def answered(resp: object) -> None:
            if rid != self.request_id:
                return  # timed out: that connection was closed
            self.request_id += 1
            if self.timeout is not None:
                self.timeout.cancel()
            on_answer(resp)

        def timed_out() -> None:
            if rid == self.request_id:
                self.request_id += 1
                self._backoff()

        self.timeout = node.later(node.cfg.request_timeout_ms, f"{label}-timeout", timed_out)
        leader = node.world.nodes[self.leader_id]

        def serve() -> None:
            at_leader(lambda resp: leader.post(node.id, f"{label}-answer", lambda: answered(resp), inc))

        node.post(self.leader_id, label, serve)

    def truncate_round(self, pending: dict[TopicPartition, Follow]) -> None:
        asks = []
        for tp, f in pending.items():
            epoch = _log(f.part).leader_epoch_cache.latest_epoch
            if epoch < 0:
                f.truncating = False
                continue
            asks.append((tp, f.leader_epoch, epoch))
        if not asks:
            self.fetch()
            return
        leader = self.node.world.nodes[self.leader_id]

        def at_leader(reply: Callable[[object], None]) -> None:
            reply(leader.fetchers.leader.on_offset_for_leader_epoch(asks))

        def on_answer(resp: object) -> None:
            again: dict[TopicPartition, Follow] = {}
            for tp, error, epoch, end in resp:  # type: ignore[attr-defined]
                follow = self.partitions.get(tp)
                if follow is None or not follow.truncating:
                    continue
                if error != ErrorCode.NONE:
                    self._delay(follow)
                    continue
                if not self._apply_truncation(tp, follow, epoch, end):
                    again[tp] = follow
            if again:
                self.truncate_round(again)
            else:
                self.fetch()

        self._request("offset-for-leader-epoch", at_leader, on_answer)

    def _apply_truncation(self, tp: TopicPartition, f: Follow, epoch: int, end: int) -> bool:
        log = _log(f.part)
        d = truncation_for(epoch, end, log.log_end_offset, log.high_watermark, log.end_offset_for_epoch)
        if d.offset < log.log_end_offset:
            self.node.world.note(
                f"broker {self.node.id} truncates {tp} from {log.log_end_offset} to {d.offset}"
            )
            log.truncate_to(d.offset)
        f.truncating = not d.done
        return d.done

    def _delay(self, f: Follow) -> None:
        f.delayed_until_ms = self.node.now_ms + self.node.cfg.fetch_backoff_ms

    def fetch(self) -> None:
        node = self.node
        parts = []
        for tp, f in self.partitions.items():
            if f.truncating or f.delayed_until_ms > node.now_ms:
                continue
            log = _log(f.part)
            parts.append(FetchPart(tp, f.leader_epoch, log.log_end_offset, log.leader_epoch_cache.latest_epoch))
        if not parts:
            self._backoff()
            return
        leader = node.world.nodes[self.leader_id]
        replica, epoch = node.id, node.broker_epoch

        def at_leader(reply: Callable[[object], None]) -> None:
            leader.fetchers.leader.on_fetch(replica, epoch, parts, reply)

        def on_answer(resp: object) -> None:
            for result in resp:  # type: ignore[attr-defined]
                self._handle(result)
            if node.up and self.node.incarnation == node.incarnation:
                self.node.later(0, "fetcher", self.loop)

        self._request("fetch", at_leader, on_answer)

    def _handle(self, p: FetchResult) -> None:
        f = self.partitions.get(p.tp)
        if f is None:
            return
        if p.error == ErrorCode.NONE:
            if p.diverging is not None:
                f.truncating = True
                self._apply_truncation(p.tp, f, *p.diverging)
                return
            self._append(p, f)
        elif p.error == ErrorCode.OFFSET_OUT_OF_RANGE:
            log = _log(f.part)
            if log.log_end_offset > p.high_watermark >= 0 and p.log_start_offset <= p.high_watermark:
                self.node.world.note(f"broker {self.node.id}: {p.tp} ahead of its leader")
                log.truncate_to(max(p.high_watermark, log.log_start_offset))
            else:
                self._delay(f)
        else:
            self._delay(f)

    def _append(self, p: FetchResult, f: Follow) -> None:
        part = f.part
        try:
            if p.records:
                part.append_records_to_follower(p.records, p.high_watermark, self.node.now_ms)
            else:
                part.update_follower_high_watermark(p.high_watermark)
        except UnexpectedAppendOffsetError:
            f.truncating = True
        except KafkaError:
            self._delay(f)
        except OSError as exc:
            self.node.halt(str(exc))
            return
        self.node.on_high_watermark(p.tp)


class FetcherManager:
    def __init__(self, node: SimNode) -> None:
        self.node = node
        self.fetchers: dict[int, LeaderFetcher] = {}
        self.where: dict[TopicPartition, int] = {}
        self.leader = LeaderSide(node)

    def follow(self, tp: TopicPartition, part: Partition) -> None:
        self.unfollow(tp)
        if part.leader_id < 0:
            return
        fetcher = self.fetchers.get(part.leader_id)
        if fetcher is None:
            fetcher = self.fetchers[part.leader_id] = LeaderFetcher(self.node, part.leader_id)
        fetcher.partitions[tp] = Follow(part, part.leader_epoch)
        self.where[tp] = part.leader_id
        fetcher.kick()

    def unfollow(self, tp: TopicPartition) -> None:
        leader = self.where.pop(tp, None)
        if leader is not None and leader in self.fetchers:
            self.fetchers[leader].partitions.pop(tp, None)

    def wake(self, tp: TopicPartition) -> None:
        self.leader.wake(tp)


# -- AlterPartition ----------------------------------------------------------------------------
class AlterPartitionSender:
    def __init__(self, node: SimNode) -> None:
        self.node = node
        self.pending: dict[TopicPartition, IsrChange] = {}
        self.in_flight = False

    def submit(self, change: IsrChange | None) -> None:
        if change is not None:
            self.pending[change.tp] = change
            self.kick()

    def kick(self) -> None:
        if not self.in_flight and self.pending:
            self.in_flight = True
            self.node.later(0, "alter-partition", self._send)

    def _retry(self, batch: dict[TopicPartition, IsrChange]) -> None:
        for tp, change in batch.items():
            self.pending.setdefault(tp, change)

        def again() -> None:
            self.in_flight = False
            self.kick()

        self.node.later(RETRY_MS, "alter-partition-retry", again)

    def _send(self) -> None:
        node = self.node
        batch, self.pending = self.pending, {}
        controller = node.world.nodes.get(node.controller_id)
        if controller is None:
            self._retry(batch)
            return
        req = APReq(
            broker_id=node.id,
            broker_epoch=node.broker_epoch,
            topics=[
                APReq.TopicData(
                    topic_name=node.cfg.topic,
                    topic_id=node.world.topic_id,
                    partitions=[
                        APReq.PartitionData(
                            partition_index=tp.partition,
                            leader_epoch=c.leader_epoch,
                            new_isr=list(c.new_isr),
                            new_isr_with_epochs=[APReq.BrokerState(r, -1) for r in c.new_isr],
                            partition_epoch=c.partition_epoch,
                        )
                        for tp, c in sorted(batch.items())
                    ],
                )
            ],
        )
        state = {"done": False}
        inc = node.incarnation

        def answered(resp: APResp) -> None:
            if state["done"]:
                return
            state["done"] = True
            timer.cancel()
            self._answer(batch, resp)

        def timed_out() -> None:
            if not state["done"]:
                state["done"] = True
                self._retry(batch)

        timer = node.later(node.cfg.request_timeout_ms, "alter-partition-timeout", timed_out)

        def at_controller() -> None:
            controller.runtime.alter_partition(
                req, lambda resp: controller.post(node.id, "alter-partition-answer", lambda: answered(resp), inc)
            )

        node.post(controller.id, "alter-partition", at_controller)

    def _answer(self, batch: dict[TopicPartition, IsrChange], resp: APResp) -> None:
        node = self.node
        if resp.error_code != ErrorCode.NONE:
            if resp.error_code in (ErrorCode.NOT_CONTROLLER, ErrorCode.STALE_BROKER_EPOCH):
                self._retry(batch)
                return
            for tp in batch:
                part = node.partitions.get(tp)
                if part is not None:
                    part.on_isr_change_failed()
        else:
            for t in resp.topics:
                for p in t.partitions:
                    tp = TopicPartition(node.cfg.topic, p.partition_index)
                    part = node.partitions.get(tp)
                    if part is None or tp not in batch:
                        continue
                    if p.error_code != ErrorCode.NONE:
                        part.on_isr_change_failed()
                        continue
                    if part.on_isr_change_committed(p.leader_epoch, p.partition_epoch, tuple(p.isr), node.now_ms):
                        node.on_high_watermark(tp)
        self.in_flight = False
        self.kick()
