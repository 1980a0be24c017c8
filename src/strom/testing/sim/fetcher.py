"""The replica fetchers of a simulated broker (strom.broker.replica_fetcher): one per
leader, a loop of OffsetForLeaderEpoch rounds for the partitions that became followers
(strom.replication.truncation.truncation_for), then Fetch with the follower's log end,
last fetched epoch and broker epoch; a diverging epoch truncates, records are
appended as the leader has them; errors back off. The leader's side is in
:mod:`strom.testing.sim.leader`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from strom.common.types import TopicPartition
from strom.protocol.errors import ErrorCode, KafkaError
from strom.replication.partition import Partition
from strom.replication.truncation import truncation_for
from strom.storage.log_append import UnexpectedAppendOffsetError
from strom.testing.sim.leader import FetchPart, FetchResult, LeaderSide, log_of
from strom.testing.sim.memlog import MemoryLog
from strom.testing.sim.schedule import Timer

if TYPE_CHECKING:
    from strom.testing.sim.node import SimNode


@dataclass(slots=True)
class Follow:
    part: Partition[MemoryLog]
    leader_epoch: int
    truncating: bool = True
    delayed_until_ms: int = 0


# -- the follower's side ---------------------------------------------------------------
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

    def _request(
        self,
        label: str,
        at_leader: Callable[[Callable[[object], None]], None],
        on_answer: Callable[[object], None],
    ) -> None:
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
            at_leader(
                lambda resp: leader.post(node.id, f"{label}-answer", lambda: answered(resp), inc)
            )

        node.post(self.leader_id, label, serve)

    def truncate_round(self, pending: dict[TopicPartition, Follow]) -> None:
        asks = []
        for tp, f in pending.items():
            epoch = log_of(f.part).leader_epoch_cache.latest_epoch
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
            again = self._truncate(resp)  # type: ignore[arg-type]
            if again:
                self.truncate_round(again)
            else:
                self.fetch()

        self._request("offset-for-leader-epoch", at_leader, on_answer)

    def _truncate(
        self, answers: list[tuple[TopicPartition, ErrorCode, int, int]]
    ) -> dict[TopicPartition, Follow]:
        """Apply OffsetForLeaderEpoch answers; the partitions to ask about again."""
        again: dict[TopicPartition, Follow] = {}
        for tp, error, epoch, end in answers:
            follow = self.partitions.get(tp)
            if follow is None or not follow.truncating:
                continue
            if error != ErrorCode.NONE:
                self._delay(follow)
            elif not self._apply_truncation(tp, follow, epoch, end):
                again[tp] = follow
        return again

    def _apply_truncation(self, tp: TopicPartition, f: Follow, epoch: int, end: int) -> bool:
        log = log_of(f.part)
        d = truncation_for(
            epoch, end, log.log_end_offset, log.high_watermark, log.end_offset_for_epoch
        )
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
            log = log_of(f.part)
            parts.append(
                FetchPart(
                    tp, f.leader_epoch, log.log_end_offset, log.leader_epoch_cache.latest_epoch
                )
            )
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
            log = log_of(f.part)
            if (
                log.log_end_offset > p.high_watermark >= 0
                and p.log_start_offset <= p.high_watermark
            ):
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

    def follow(self, tp: TopicPartition, part: Partition[MemoryLog]) -> None:
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
