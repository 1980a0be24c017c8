"""The consumer's fetcher: Fetch requests per leader, a buffer of decoded records.

A fetch covers every fetchable partition without buffered data, one request
per leader, all in parallel. Results are kept only if the partition's position
did not move meanwhile (a seek or rebalance discards them). ``drain`` hands
out at most ``max.poll.records`` records and moves positions past them (and
past control records and aborted batches once a partition's data is used up).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from strom.client.aio.client import AIOClient
from strom.client.consumer_config import ConsumerConfig
from strom.client.errors import error_for
from strom.client.fetcher import AbortedTxn, read_committed_records
from strom.client.messages import ConsumerRecord
from strom.client.subscription import SubscriptionState
from strom.common.types import TopicPartition
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.generated.fetch import FetchRequest, FetchResponse
from strom.protocol.records import Record

_FR = FetchRequest
_REFRESH = frozenset(
    {
        ErrorCode.NOT_LEADER_OR_FOLLOWER,
        ErrorCode.LEADER_NOT_AVAILABLE,
        ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
        ErrorCode.FENCED_LEADER_EPOCH,
        ErrorCode.UNKNOWN_LEADER_EPOCH,
        ErrorCode.KAFKA_STORAGE_ERROR,
        ErrorCode.UNKNOWN_TOPIC_ID,
    }
)


@dataclass(slots=True)
class _Completed:
    fetch_offset: int
    records: list[tuple[Record, int, int]]
    next_offset: int
    index: int = 0


class Fetcher:
    def __init__(
        self,
        client: AIOClient,
        config: ConsumerConfig,
        subs: SubscriptionState,
        key_de: Callable[[bytes | None], Any],
        value_de: Callable[[bytes | None], Any],
    ) -> None:
        self.client = client
        self.config = config
        self.subs = subs
        self._key_de = key_de
        self._value_de = value_de
        self._buffer: dict[TopicPartition, _Completed] = {}
        self.out_of_range: set[TopicPartition] = set()
        self.errors: list[KafkaError] = []
        self._task: asyncio.Task[None] | None = None

    def discard(self, tps: Iterable[TopicPartition] | None = None) -> None:
        """Forget buffered data (after seek, pause or a rebalance)."""
        if tps is None:
            self._buffer.clear()
            return
        for tp in tps:
            self._buffer.pop(tp, None)

    @property
    def has_buffered(self) -> bool:
        return any(
            c.index < len(c.records) and tp not in self.subs.paused()
            for tp, c in self._buffer.items()
        )

    def drain(self, limit: int) -> list[ConsumerRecord]:
        out: list[ConsumerRecord] = []
        for tp in list(self._buffer):
            if len(out) >= limit:
                break
            st = self.subs.assignment.get(tp)
            done = self._buffer[tp]
            if st is None or st.position != done.fetch_offset:
                del self._buffer[tp]  # a seek or revocation made it stale
                continue
            if st.paused:
                continue
            take = done.records[done.index : done.index + limit - len(out)]
            for record, ts_type, epoch in take:
                out.append(
                    ConsumerRecord(
                        tp.topic,
                        tp.partition,
                        record.offset,
                        record.timestamp,
                        ts_type,
                        self._key_de(record.key),
                        self._value_de(record.value),
                        record.headers,
                        epoch,
                    )
                )
            done.index += len(take)
            if done.index >= len(done.records):
                st.position = done.next_offset
                del self._buffer[tp]
            elif take:
                st.position = take[-1][0].offset + 1
            done.fetch_offset = st.position if st.position is not None else done.fetch_offset
        return out

    def in_flight(self) -> asyncio.Task[None] | None:
        return self._task if self._task is not None and not self._task.done() else None

    def start(self, max_wait_ms: int) -> asyncio.Task[None] | None:
        """Start a fetch for partitions with no buffered data (None if nothing to fetch)."""
        if self.in_flight() is not None:
            return self._task
        positions = {tp: pos for tp, pos in self.subs.fetchable().items() if tp not in self._buffer}
        if not positions:
            return None
        self._task = asyncio.get_running_loop().create_task(self._fetch(positions, max_wait_ms))
        return self._task

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _fetch(self, positions: dict[TopicPartition, int], max_wait_ms: int) -> None:
        groups: dict[int, dict[TopicPartition, int]] = defaultdict(dict)
        stale: set[str] = set()
        for tp, offset in positions.items():
            leader = self.client.cluster.leader_for(tp)
            if leader is None:
                stale.add(tp.topic)
            else:
                groups[leader][tp] = offset
        results = await asyncio.gather(
            *(self._fetch_leader(node, parts, max_wait_ms) for node, parts in groups.items()),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, KafkaError):
                if not result.retriable:
                    self.errors.append(result)
                stale.update(t.topic for t in positions)
            elif isinstance(result, set):
                stale |= result
            elif isinstance(result, BaseException):
                raise result
        if stale:
            await asyncio.sleep(self.config.retry_backoff_ms / 1000)
            with contextlib.suppress(KafkaError):
                await self.client.refresh_metadata(sorted(stale))

    async def _fetch_leader(
        self, node: int, positions: dict[TopicPartition, int], max_wait_ms: int
    ) -> set[str]:
        response: FetchResponse = await self.client.send(
            node,
            self._request(positions, max_wait_ms),
            timeout_ms=self.config.client.request_timeout_ms + max_wait_ms,
        )
        err = error_for(response.error_code, "Fetch")
        if err is not None:
            raise err
        stale: set[str] = set()
        read_committed = self.config.isolation_level == 1
        for t in response.responses:
            for p in t.partitions:
                tp = TopicPartition(t.topic, p.partition_index)
                offset = positions.get(tp)
                st = self.subs.assignment.get(tp)
                if offset is None or st is None or st.position != offset:
                    continue
                if p.error_code == ErrorCode.OFFSET_OUT_OF_RANGE:
                    self.out_of_range.add(tp)
                    continue
                if p.error_code in _REFRESH:
                    stale.add(tp.topic)
                    continue
                perr = error_for(p.error_code, f"Fetch {tp}")
                if perr is not None:
                    self.errors.append(perr)
                    continue
                st.high_watermark = p.high_watermark
                st.last_stable_offset = p.last_stable_offset
                aborted = [
                    AbortedTxn(a.producer_id, a.first_offset) for a in p.aborted_transactions or ()
                ]
                parsed = read_committed_records(
                    p.records,
                    offset,
                    aborted=aborted,
                    read_committed=read_committed,
                    verify_crc=self.config.check_crcs,
                )
                if parsed.records or parsed.next_offset != offset:
                    self._buffer[tp] = _Completed(offset, parsed.records, parsed.next_offset)
        return stale

    def _request(self, positions: dict[TopicPartition, int], max_wait_ms: int) -> FetchRequest:
        by_topic: dict[str, list[FetchRequest.FetchPartition]] = defaultdict(list)
        for tp, offset in positions.items():
            by_topic[tp.topic].append(
                _FR.FetchPartition(
                    partition=tp.partition,
                    fetch_offset=offset,
                    partition_max_bytes=self.config.max_partition_fetch_bytes,
                )
            )
        return FetchRequest(
            replica_id=-1,
            max_wait_ms=max_wait_ms,
            min_bytes=self.config.fetch_min_bytes,
            max_bytes=self.config.fetch_max_bytes,
            isolation_level=self.config.isolation_level,
            session_id=0,
            session_epoch=-1,
            topics=[_FR.FetchTopic(topic=t, partitions=ps) for t, ps in by_topic.items()],
        )
