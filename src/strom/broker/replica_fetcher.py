"""Replica fetchers: followers copying their leaders' logs (Kafka's ReplicaFetcherThread).

``num.replica.fetchers`` fetchers per source broker, each an asyncio task with one
connection, batching every partition it follows from that broker into one Fetch
(replica id and broker epoch set, ``replica.fetch.*`` limits). A partition that
just became a follower first truncates: OffsetForLeaderEpoch tells where its log
and the leader's agree (KIP-101/279, strom.replication.truncation); later the
diverging epoch of a Fetch response (v12+) does the same. Batches are appended
exactly as the leader has them (offsets, epochs, producer state rebuilt); the
follower's high watermark is min(leader's, its log end); its log start offset
follows the leader's. A fetcher's errors back off ``replica.fetch.backoff.ms``.
Each fetcher keeps an incremental fetch session (KIP-227) with its leader: once
the session exists, a request names only the partitions whose fetch position moved
(or that were added), and the answer only the partitions with news.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from strom.common.types import TopicPartition
from strom.net.connection import BrokerConnection
from strom.protocol.api_versions import INTER_BROKER_API_VERSIONS
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.generated.fetch import FetchRequest, FetchResponse
from strom.protocol.generated.offset_for_leader_epoch import (
    OffsetForLeaderEpochRequest,
    OffsetForLeaderEpochResponse,
)
from strom.replication.fetch_session_handler import FetchSessionHandler, Wanted
from strom.replication.partition import Partition
from strom.replication.truncation import truncation_for
from strom.storage.log_append import UnexpectedAppendOffsetError

if TYPE_CHECKING:
    from strom.broker.broker import Broker
    from strom.storage.log import PartitionLog

log = logging.getLogger(__name__)
OFE = OffsetForLeaderEpochRequest


@dataclass(slots=True)
class _Follow:
    part: Partition[PartitionLog]
    leader_epoch: int
    truncating: bool = True
    delayed_until_ms: int = 0


class ReplicaFetcher:
    """Follows, from one leader broker, the partitions given to this fetcher."""

    def __init__(self, broker: Broker, leader_id: int, index: int) -> None:
        self.broker = broker
        self.leader_id = leader_id
        self.index = index
        self.partitions: dict[TopicPartition, _Follow] = {}
        self._wake = asyncio.Event()
        self._conn: BrokerConnection | None = None
        self.session = FetchSessionHandler()  # KIP-227: a fetch session with the leader
        self.task: asyncio.Task[None] | None = None
        cfg = broker.config
        self.backoff_ms = cfg.get_int("replica.fetch.backoff.ms")
        self.wait_ms = cfg.get_int("replica.fetch.wait.max.ms")
        self.min_bytes = cfg.get_int("replica.fetch.min.bytes")
        self.max_bytes = cfg.get_int("replica.fetch.max.bytes")
        self.response_max_bytes = cfg.get_int("replica.fetch.response.max.bytes")
        self.socket_timeout_ms = cfg.get_int("replica.socket.timeout.ms")

    def add(self, tp: TopicPartition, part: Partition[PartitionLog]) -> None:
        self.partitions[tp] = _Follow(part, part.leader_epoch)
        self._wake.set()

    def remove(self, tp: TopicPartition) -> None:
        self.partitions.pop(tp, None)

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(
            self.run(), name=f"replica-fetcher-{self.leader_id}-{self.index}"
        )

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        await self._close()

    async def _close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
            self._conn = None

    async def _connection(self) -> BrokerConnection:
        if self._conn is not None and not self._conn.closed:
            return self._conn
        info = self.broker.image.brokers.get(self.leader_id)
        ep = info.endpoint(self.broker.inter_broker_listener_name) if info else None
        if ep is None:
            raise KafkaError(ErrorCode.LEADER_NOT_AVAILABLE, f"broker {self.leader_id} unknown")
        self._conn = await BrokerConnection.open(
            ep.host,
            ep.port,
            client_id=f"replica-fetcher-{self.broker.node_id}",
            request_timeout_ms=self.socket_timeout_ms + self.wait_ms,
            api_versions=INTER_BROKER_API_VERSIONS,
            security=self.broker.inter_broker_security,
        )
        return self._conn

    # -- the loop ----------------------------------------------------------------------------
    async def run(self) -> None:
        while True:
            if not self.partitions:
                self._wake.clear()
                await self._wake.wait()
                continue
            try:
                conn = await self._connection()
                await self._truncate(conn)
                fetched = await self._fetch(conn)
            except (KafkaError, OSError) as exc:
                log.debug("fetcher from broker %d failed: %s", self.leader_id, exc)
                await self._close()
                await asyncio.sleep(self.backoff_ms / 1000)
                continue
            if not fetched:
                await asyncio.sleep(self.backoff_ms / 1000)

    async def _truncate(self, conn: BrokerConnection) -> None:
        """OffsetForLeaderEpoch for the partitions that just became followers."""
        pending = {tp: f for tp, f in self.partitions.items() if f.truncating}
        while pending:
            by_topic: dict[str, list[OFE.OffsetForLeaderPartition]] = {}
            for tp, f in pending.items():
                epoch = f.part.log.leader_epoch_cache.latest_epoch
                if epoch < 0:  # nothing to compare: fetch from the log end
                    f.truncating = False
                    continue
                by_topic.setdefault(tp.topic, []).append(
                    OFE.OffsetForLeaderPartition(tp.partition, f.leader_epoch, epoch)
                )
            if not by_topic:
                return
            req = OffsetForLeaderEpochRequest(
                replica_id=self.broker.node_id,
                topics=[OFE.OffsetForLeaderTopic(t, ps) for t, ps in by_topic.items()],
            )
            resp: OffsetForLeaderEpochResponse = await conn.send(req)
            again: dict[TopicPartition, _Follow] = {}
            for t in resp.topics:
                for p in t.partitions:
                    tp = TopicPartition(t.topic, p.partition)
                    follow = self.partitions.get(tp)
                    if follow is None or not follow.truncating:
                        continue
                    if p.error_code != ErrorCode.NONE:
                        self._delay(follow)
                        continue
                    if not self._apply_truncation(tp, follow, p.leader_epoch, p.end_offset):
                        again[tp] = follow
            pending = again

    def _apply_truncation(
        self, tp: TopicPartition, f: _Follow, epoch: int, end_offset: int
    ) -> bool:
        plog = f.part.log
        decision = truncation_for(
            epoch, end_offset, plog.log_end_offset, plog.high_watermark, plog.end_offset_for_epoch
        )
        if decision.offset < plog.log_end_offset:
            log.info(
                "truncating %s from %d to %d (leader epoch %d ends at %d)",
                tp,
                plog.log_end_offset,
                decision.offset,
                epoch,
                end_offset,
            )
            plog.truncate_to(decision.offset)
        f.truncating = not decision.done
        return decision.done

    def _delay(self, f: _Follow) -> None:
        f.delayed_until_ms = self.broker.now_ms() + self.backoff_ms

    async def _fetch(self, conn: BrokerConnection) -> bool:
        wanted = self._wanted()
        if not wanted:
            return False
        # the fetch state each partition is asked for (see _still_current)
        sent = {tp: (self.partitions[tp], fp.fetch_offset) for tp, (_, fp) in wanted.items()}
        data = self.session.build_next(wanted)
        cluster = self.broker.cluster
        req = FetchRequest(
            replica_id=self.broker.node_id,
            replica_state=FetchRequest.ReplicaState(
                self.broker.node_id, cluster.broker_epoch if cluster else -1
            ),
            max_wait_ms=self.wait_ms,
            min_bytes=self.min_bytes,
            max_bytes=self.response_max_bytes,
            session_id=data.session_id,
            session_epoch=data.epoch,
            topics=[
                FetchRequest.FetchTopic(t, topic_id, [fp for _, fp in parts])
                for (t, topic_id), parts in _by_topic(data.to_send.items()).items()
            ],
            forgotten_topics_data=[
                FetchRequest.ForgottenTopic(t, topic_id, [tp.partition for tp, _ in parts])
                for (t, topic_id), parts in _by_topic(data.to_forget).items()
            ],
        )
        try:
            resp: FetchResponse = await conn.send(req)
        except BaseException:
            self.session.handle_error()
            raise
        if not self.session.handle_response(resp):
            raise KafkaError(ErrorCode(resp.error_code), "fetch failed")
        for t in resp.responses:
            name = t.topic
            if not name:
                found = self.broker.image.topic_by_id(t.topic_id)
                name = found.name if found is not None else ""
            for p in t.partitions:
                tp = TopicPartition(name, p.partition_index)
                if self._still_current(tp, sent.get(tp)):
                    self._handle(tp, p)
        return True

    def _still_current(self, tp: TopicPartition, asked: tuple[_Follow, int] | None) -> bool:
        """Whether the partition's fetch state is still the one the request was made for
        (Kafka's AbstractFetcherThread checks it): a new leader epoch, a truncation or a
        moved log meanwhile make the answer stale, and it is dropped."""
        f = self.partitions.get(tp)
        if asked is None or f is not asked[0] or f.truncating:
            return False
        return f.part.log.log_end_offset == asked[1]

    def _wanted(self) -> dict[TopicPartition, Wanted]:
        """The partitions to fetch now: topic id and fetch parameters."""
        now = self.broker.now_ms()
        wanted: dict[TopicPartition, Wanted] = {}
        for tp, f in self.partitions.items():
            if f.truncating or f.delayed_until_ms > now:
                continue
            plog = f.part.log
            wanted[tp] = (
                self._topic_id(tp.topic),
                FetchRequest.FetchPartition(
                    partition=tp.partition,
                    current_leader_epoch=f.leader_epoch,
                    fetch_offset=plog.log_end_offset,
                    last_fetched_epoch=plog.leader_epoch_cache.latest_epoch,
                    log_start_offset=plog.log_start_offset,
                    partition_max_bytes=self.max_bytes,
                ),
            )
        return wanted

    def _topic_id(self, topic: str) -> bytes:
        """From the image, or from LeaderAndIsr when UpdateMetadata has not come yet."""
        info = self.broker.image.topic(topic)
        if info is not None:
            return info.topic_id
        names = self.broker.replicas.topic_names
        return next((i for i, name in names.items() if name == topic), bytes(16))

    def _handle(self, tp: TopicPartition, p: FetchResponse.PartitionData) -> None:
        f = self.partitions.get(tp)
        if f is None:
            return
        part, now = f.part, self.broker.now_ms()
        if p.error_code == ErrorCode.NONE:
            if p.diverging_epoch.epoch >= 0 or p.diverging_epoch.end_offset >= 0:
                f.truncating = True
                self._apply_truncation(tp, f, p.diverging_epoch.epoch, p.diverging_epoch.end_offset)
                return
            self._append(tp, f, p, now)
        elif p.error_code == ErrorCode.OFFSET_OUT_OF_RANGE:
            self._out_of_range(tp, f, p, now)
        else:
            if p.error_code not in (
                ErrorCode.FENCED_LEADER_EPOCH,
                ErrorCode.UNKNOWN_LEADER_EPOCH,
                ErrorCode.NOT_LEADER_OR_FOLLOWER,
            ):
                log.warning(
                    "fetching %s from broker %d: %s",
                    tp,
                    self.leader_id,
                    ErrorCode(p.error_code).name,
                )
            self._delay(f)
        del part

    def _append(
        self, tp: TopicPartition, f: _Follow, p: FetchResponse.PartitionData, now: int
    ) -> None:
        part = f.part
        records = p.records
        try:
            if records:
                part.append_records_to_follower(records, p.high_watermark, now)  # type: ignore[arg-type]
            else:
                part.update_follower_high_watermark(p.high_watermark)
            if p.log_start_offset > part.log.log_start_offset:
                part.log.delete_records_before(
                    min(p.log_start_offset, part.log.high_watermark), now
                )
        except UnexpectedAppendOffsetError as exc:
            log.warning("%s: %s; truncating again", tp, exc)
            f.truncating = True
        except KafkaError as exc:
            log.warning("appending fetched data of %s failed: %s", tp, exc)
            self._delay(f)
        self.broker.replicas.on_high_watermark(tp)

    def _out_of_range(
        self, tp: TopicPartition, f: _Follow, p: FetchResponse.PartitionData, now: int
    ) -> None:
        """The leader's log does not hold our log end: behind its start (start over at
        it) or, after an unclean election, past its end (truncate to it)."""
        plog = f.part.log
        if plog.log_end_offset > p.high_watermark >= 0 and p.log_start_offset <= p.high_watermark:
            log.warning("%s is ahead of its leader: truncating to %d", tp, p.high_watermark)
            plog.truncate_to(max(p.high_watermark, plog.log_start_offset))
        elif p.log_start_offset > plog.log_end_offset:
            log.warning(
                "%s is behind its leader's log start %d: starting over", tp, p.log_start_offset
            )
            plog.truncate_fully_and_start_at(p.log_start_offset, now)
        else:
            self._delay(f)


def _by_topic(
    items: Iterable[tuple[TopicPartition, tuple[bytes, FetchRequest.FetchPartition] | bytes]],
) -> dict[tuple[str, bytes], list[tuple[TopicPartition, FetchRequest.FetchPartition]]]:
    """Partitions grouped by (topic, topic id), in order."""
    out: dict[tuple[str, bytes], list[tuple[TopicPartition, FetchRequest.FetchPartition]]] = {}
    for tp, value in items:
        if isinstance(value, bytes):
            topic_id, fp = value, FetchRequest.FetchPartition(partition=tp.partition)
        else:
            topic_id, fp = value
        out.setdefault((tp.topic, topic_id), []).append((tp, fp))
    return out
