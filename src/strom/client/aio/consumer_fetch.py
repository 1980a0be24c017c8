"""The consumer's fetcher: Fetch requests per leader, a buffer of fetched data.

A fetch covers every fetchable partition without buffered data, one request
per leader, all in parallel. Results are kept only if the partition's position
did not move meanwhile (a seek or rebalance discards them). ``drain`` hands
out at most ``max.poll.records`` records, decoding batches only as they are
needed (:class:`~strom.client.fetcher.CompletedFetch`), and moves positions
past them and past control records and aborted batches.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from strom.client.aio.client import AIOClient
from strom.client.consumer_config import ConsumerConfig
from strom.client.errors import error_for
from strom.client.fetcher import CompletedFetch, aborted_transactions, fetch_request
from strom.client.messages import ConsumerRecord
from strom.client.serde import passes_through
from strom.client.subscription import SubscriptionState
from strom.common.types import TopicPartition
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.generated.fetch import FetchRequest, FetchResponse

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


class Fetcher:
    """Fetches the consumer's fetchable partitions and buffers the results per partition."""

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
        raw = passes_through(key_de) and passes_through(value_de)
        self._deserializers = None if raw else (key_de, value_de)
        self._buffer: dict[TopicPartition, CompletedFetch] = {}
        self.out_of_range: set[TopicPartition] = set()
        # (partition or None for a whole request, the position it was found at, error)
        self._errors: list[tuple[TopicPartition | None, int, KafkaError]] = []
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
        """True when a partition that is not paused has buffered records left."""
        return any(
            not c.exhausted and tp not in self.subs.paused() for tp, c in self._buffer.items()
        )

    def drain(self, limit: int) -> list[ConsumerRecord]:
        """Up to ``limit`` buffered records; positions move past them."""
        out: list[ConsumerRecord] = []
        for tp in list(self._buffer):
            if len(out) >= limit:
                break
            st = self.subs.assignment.get(tp)
            done = self._buffer[tp]
            if st is None or st.position != done.position:
                del self._buffer[tp]  # a seek or revocation made it stale
                continue
            if st.paused:
                continue
            out += done.take(limit - len(out))
            st.position = done.position
            if done.exhausted:
                del self._buffer[tp]
                if done.error is not None:
                    self._errors.append((tp, done.position, done.error))
        return out

    def take_error(self) -> KafkaError | None:
        """The first error to raise from poll(), dropping the rest. A partition's error
        counts only while the partition is still assigned at the position where it
        was found (a seek past a bad record, as Kafka's fetcher checks)."""
        errors, self._errors = self._errors, []
        for tp, position, error in errors:
            if tp is None:
                return error
            st = self.subs.assignment.get(tp)
            if st is not None and st.position == position:
                return error
        return None

    def in_flight(self) -> asyncio.Task[None] | None:
        """The fetch task while it runs, else None."""
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
        """Cancel the fetch in flight and wait for it to end."""
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
                    self._errors.append((None, -1, result))
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
                    self._errors.append((tp, offset, perr))
                    continue
                st.high_watermark = p.high_watermark
                st.last_stable_offset = p.last_stable_offset
                if not p.records:
                    continue
                self._buffer[tp] = CompletedFetch(
                    p.records,
                    offset,
                    tp,
                    aborted=aborted_transactions(p),
                    read_committed=read_committed,
                    verify_crc=self.config.check_crcs,
                    deserializers=self._deserializers,
                )
        return stale

    def _request(self, positions: dict[TopicPartition, int], max_wait_ms: int) -> FetchRequest:
        cfg = self.config
        return fetch_request(
            positions,
            max_wait_ms=max_wait_ms,
            min_bytes=cfg.fetch_min_bytes,
            max_bytes=cfg.fetch_max_bytes,
            partition_max_bytes=cfg.max_partition_fetch_bytes,
            isolation_level=cfg.isolation_level,
        )
