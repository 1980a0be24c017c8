"""The broker's metrics: plain counters on the event loop, read whole at scrape time.

Counting costs a few integer additions per request and per partition of a produce
or fetch (never per record: a batch's record count is read from its header), with
no lock: only the loop writes them. The Prometheus endpoint (strom.server.metrics_http)
asks the loop for a snapshot (strom.broker.metrics_snapshot), a copy taken on the loop,
and renders it in its own thread. The snapshot also computes the gauges from the broker's state
then (partition counts, log sizes, consumer group lag), so nothing is kept up to date
for them between scrapes.

Names follow Kafka's JMX beans as the Prometheus JMX exporter's usual Kafka rules
(lowercased) name them; see strom.server.metrics_http.
"""

from __future__ import annotations

import struct
from bisect import bisect_left
from collections.abc import Sequence
from typing import Any, Final

from strom.protocol.api_versions import ApiKey
from strom.protocol.errors import ErrorCode

# Request latency (ms): Kafka's RequestMetrics TotalTimeMs, as Prometheus buckets.
LATENCY_BUCKETS_MS: tuple[float, ...] = (
    0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000,
)  # fmt: skip
FLUSH_BUCKETS_MS: tuple[float, ...] = (0.1, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 5000)

# Errors that are not the broker's failure: Kafka does not count them in
# FailedProduceRequestsPerSec / FailedFetchRequestsPerSec (ReplicaManager).
EXPECTED_PRODUCE_ERRORS = frozenset(
    {
        ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
        ErrorCode.NOT_LEADER_OR_FOLLOWER,
        ErrorCode.MESSAGE_TOO_LARGE,
        ErrorCode.RECORD_LIST_TOO_LARGE,
        ErrorCode.CORRUPT_MESSAGE,
        ErrorCode.KAFKA_STORAGE_ERROR,
    }
)
EXPECTED_FETCH_ERRORS = frozenset(
    {
        ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
        ErrorCode.NOT_LEADER_OR_FOLLOWER,
        ErrorCode.UNKNOWN_LEADER_EPOCH,
        ErrorCode.FENCED_LEADER_EPOCH,
        ErrorCode.REPLICA_NOT_AVAILABLE,
        ErrorCode.KAFKA_STORAGE_ERROR,
        ErrorCode.OFFSET_OUT_OF_RANGE,
        ErrorCode.INCONSISTENT_TOPIC_ID,
        ErrorCode.UNKNOWN_TOPIC_ID,
    }
)
_PRODUCE: Final = int(ApiKey.PRODUCE)  # compared with every request's key: a plain int
_FETCH: Final = int(ApiKey.FETCH)
_BATCH_LENGTH_AT = 8
_RECORDS_COUNT_AT = 57
_BATCH_HEADER = 61
# a batch's length and record count in one unpack, from _BATCH_LENGTH_AT
_LENGTH_AND_COUNT = struct.Struct(f">i{_RECORDS_COUNT_AT - _BATCH_LENGTH_AT - 4}xi")


class Histogram:
    """Counts per bucket (not cumulative), sum and count; written on the loop only."""

    __slots__ = ("bounds", "count", "counts", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # the last: above every bound (+Inf)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def copy(self) -> Histogram:
        out = Histogram(self.bounds)
        out.counts, out.sum, out.count = list(self.counts), self.sum, self.count
        return out


_TOPIC_STATS = (
    "bytes_in",
    "bytes_out",
    "failed_fetch_requests",
    "failed_produce_requests",
    "fetch_requests",
    "messages_in",
    "produce_requests",
    "replication_bytes_out",
)


class TopicStats:
    """Kafka's BrokerTopicMetrics of one topic (or of all: the all-topics bean)."""

    __slots__ = _TOPIC_STATS

    def __init__(self) -> None:
        self.messages_in = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self.replication_bytes_out = 0
        self.produce_requests = 0
        self.fetch_requests = 0
        self.failed_produce_requests = 0
        self.failed_fetch_requests = 0

    def values(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in _TOPIC_STATS}  # (compiled: no __slots__)


def batch_counts(records: bytes | memoryview) -> tuple[int, int]:
    """(records, bytes) of the v2 batches in ``records``, from their headers only."""
    size = len(records)
    count = 0
    position = 0
    while position + _BATCH_HEADER <= size:
        length, records_count = _LENGTH_AND_COUNT.unpack_from(records, position + _BATCH_LENGTH_AT)
        count += records_count
        position += 12 + length
    return count, size


def _produce_errors(response: Any) -> dict[tuple[str, int], int] | None:
    """The error code of each failed partition of a produce answer by (topic, partition);
    None (no dict made) when none failed."""
    errors: dict[tuple[str, int], int] | None = None
    if response is not None:
        for t in response.responses:
            for p in t.partition_responses:
                if p.error_code:
                    if errors is None:
                        errors = {}
                    errors[(t.name, p.index)] = p.error_code
    return errors


class BrokerMetrics:
    """The counters; ``on_*`` are called on the loop by the server and the broker."""

    def __init__(self) -> None:
        self.topics: dict[str, TopicStats] = {}
        self.all_topics = TopicStats()
        self.requests: dict[tuple[int, int], int] = {}  # (api key, version) -> count
        self.errors: dict[tuple[int, int], int] = {}  # (api key, error code) -> count
        self.latency: dict[int, Histogram] = {}  # api key -> TotalTimeMs
        self.isr_shrinks = 0
        self.isr_expands = 0
        self.log_flush = Histogram(FLUSH_BUCKETS_MS)
        self.connections: dict[str, int] = {}  # listener -> open connections
        self.connections_created: dict[str, int] = {}
        self.connections_closed: dict[str, int] = {}

    def topic(self, name: str) -> TopicStats:
        stats = self.topics.get(name)
        if stats is None:
            stats = self.topics[name] = TopicStats()
        return stats

    # -- connections (strom.server) -----------------------------------------------------
    def on_connection(self, listener: str, opened: bool) -> None:
        if opened:
            self.connections[listener] = self.connections.get(listener, 0) + 1
            self.connections_created[listener] = self.connections_created.get(listener, 0) + 1
        else:
            self.connections[listener] = self.connections.get(listener, 1) - 1
            self.connections_closed[listener] = self.connections_closed.get(listener, 0) + 1

    # -- requests (strom.server, once the response is sent) ---------------------------------
    def on_request(
        self, api_key: int, version: int, request: Any, response: Any, elapsed_ms: float
    ) -> None:
        key = (api_key, version)
        self.requests[key] = self.requests.get(key, 0) + 1
        latency = self.latency.get(api_key)
        if latency is None:
            latency = self.latency[api_key] = Histogram(LATENCY_BUCKETS_MS)
        # Histogram.observe, written out (once per request)
        latency.counts[bisect_left(latency.bounds, elapsed_ms)] += 1
        latency.sum += elapsed_ms
        latency.count += 1
        if api_key == _PRODUCE:
            self._on_produce(request, response)
        elif api_key == _FETCH:
            self._on_fetch(request, response, version)
        else:
            code = getattr(response, "error_code", 0)
            if code:
                self.on_error(api_key, code)

    def on_error(self, api_key: int, code: int) -> None:
        key = (api_key, code)
        self.errors[key] = self.errors.get(key, 0) + 1

    def _on_produce(self, request: Any, response: Any) -> None:
        errors = _produce_errors(response)
        every = self.all_topics
        topics = self.topics
        for td in request.topic_data:
            stats = topics.get(td.name)
            if stats is None:
                stats = self.topic(td.name)
            partitions = td.partition_data
            stats.produce_requests += len(partitions)
            every.produce_requests += len(partitions)
            for pd in partitions:
                code = errors.get((td.name, pd.index), 0) if errors is not None else 0
                if code:
                    self.on_error(ApiKey.PRODUCE, code)
                    if code not in EXPECTED_PRODUCE_ERRORS:
                        stats.failed_produce_requests += 1
                        every.failed_produce_requests += 1
                elif pd.records is not None:
                    count, size = batch_counts(pd.records)
                    stats.messages_in += count
                    every.messages_in += count
                    stats.bytes_in += size
                    every.bytes_in += size

    def _on_fetch(self, request: Any, response: Any, version: int) -> None:
        """Each partition answered counts a fetch request of its topic; its records'
        bytes count out (replication bytes for a follower), unless it failed."""
        if response is None:
            return
        if response.error_code:
            self.on_error(ApiKey.FETCH, response.error_code)
        follower = (request.replica_state.replica_id if version >= 15 else request.replica_id) >= 0
        every = self.all_topics
        for t in response.responses:
            stats = self.topic(t.topic) if t.topic else None  # None: an unknown topic id
            partitions = t.partitions
            every.fetch_requests += len(partitions)
            size = 0
            for p in partitions:
                if p.error_code:
                    self._fetch_failed(stats, p.error_code)
                elif p.records is not None:
                    size += len(p.records)  # ChunkedRecords too
            if stats is None:
                continue
            stats.fetch_requests += len(partitions)
            if follower:
                stats.replication_bytes_out += size
                every.replication_bytes_out += size
            else:
                stats.bytes_out += size
                every.bytes_out += size

    def _fetch_failed(self, stats: TopicStats | None, code: int) -> None:
        """A partition of a fetch response that carries an error."""
        self.on_error(ApiKey.FETCH, code)
        if code not in EXPECTED_FETCH_ERRORS:
            self.all_topics.failed_fetch_requests += 1
            if stats is not None:
                stats.failed_fetch_requests += 1

    # -- replication and storage ----------------------------------------------------------
    def on_isr_change(self, old: Sequence[int], new: Sequence[int]) -> None:
        if len(new) < len(old):
            self.isr_shrinks += 1
        elif len(new) > len(old):
            self.isr_expands += 1
