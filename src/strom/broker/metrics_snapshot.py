"""A snapshot of the broker's metrics for a scrape (strom.server.metrics_http): the
counters of :class:`~strom.broker.metrics.BrokerMetrics` copied and the gauges computed
from the broker's state, on the loop. Apart from strom.broker.metrics, which every
broker imports at start, because only a broker with a ``metrics.listener`` needs it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from strom.common.types import TopicPartition

if TYPE_CHECKING:
    from strom.broker.broker import Broker
    from strom.broker.metrics import BrokerMetrics


class PartitionGauges(NamedTuple):
    topic: str
    partition: int
    is_leader: bool
    under_replicated: bool
    under_min_isr: bool
    at_min_isr: bool
    size_bytes: int
    segments: int
    log_start_offset: int
    log_end_offset: int
    high_watermark: int


class GroupLag(NamedTuple):
    group: str
    topic: str
    partition: int
    committed_offset: int
    log_end_offset: int

    @property
    def lag(self) -> int:
        return max(self.log_end_offset - self.committed_offset, 0)


class MetricsSnapshot:
    """What a scrape shows: the counters copied and the gauges computed, on the loop.
    (Plain classes here, not dataclasses: this module is imported at every start.)"""

    __slots__ = (
        "active_controller",
        "all_topics",
        "connections",
        "connections_closed",
        "connections_created",
        "errors",
        "global_partitions",
        "global_topics",
        "isr_expands",
        "isr_shrinks",
        "lag",
        "latency",
        "log_flush",
        "node_id",
        "offline_partitions",
        "partitions",
        "requests",
        "topics",
    )

    def __init__(self, node_id: int, m: BrokerMetrics) -> None:
        self.node_id = node_id
        self.topics = {name: stats.values() for name, stats in m.topics.items()}
        self.all_topics = m.all_topics.values()
        self.requests = dict(m.requests)
        self.errors = dict(m.errors)
        self.latency = {key: h.copy() for key, h in m.latency.items()}
        self.isr_shrinks = m.isr_shrinks
        self.isr_expands = m.isr_expands
        self.log_flush = m.log_flush.copy()
        self.connections = dict(m.connections)
        self.connections_created = dict(m.connections_created)
        self.connections_closed = dict(m.connections_closed)
        self.partitions: list[PartitionGauges] = []
        self.active_controller = False
        self.offline_partitions = 0
        self.global_partitions = 0
        self.global_topics = 0
        self.lag: list[GroupLag] = []


def snapshot(broker: Broker) -> MetricsSnapshot:
    """Copy the counters and compute the gauges; call on the broker's loop."""
    snap = MetricsSnapshot(broker.node_id, broker.metrics)
    high_watermarks: dict[TopicPartition, int] = {}
    for tp, part in broker.replicas.partitions.items():
        log = part.log
        isr, replicas, min_isr = len(part.isr), len(part.replicas), part.min_insync_replicas
        leader = part.is_leader
        high_watermarks[tp] = part.high_watermark
        snap.partitions.append(
            PartitionGauges(
                tp.topic,
                tp.partition,
                leader,
                leader and isr < replicas,
                leader and isr < min_isr,
                leader and isr == min_isr,
                log.size_in_bytes,
                log.num_segments,
                log.log_start_offset,
                log.log_end_offset,
                part.high_watermark,
            )
        )
    _controller_gauges(broker, snap)
    _group_lag(broker, high_watermarks, snap)
    return snap


def _controller_gauges(broker: Broker, snap: MetricsSnapshot) -> None:
    """Kafka's KafkaController beans: set on the active controller, zero elsewhere."""
    cluster = broker.cluster
    if cluster is not None:
        snap.active_controller = cluster.runtime.is_active
    else:
        snap.active_controller = broker.image.controller_id == broker.node_id
    if not snap.active_controller:
        return
    image = broker.image
    snap.global_topics = len(image.topics)
    for topic in image.topics.values():
        snap.global_partitions += len(topic.partitions)
        snap.offline_partitions += sum(1 for p in topic.partitions if p.leader < 0)


def _group_lag(
    broker: Broker, high_watermarks: dict[TopicPartition, int], snap: MetricsSnapshot
) -> None:
    """The lag of every group this broker coordinates, on the partitions it has a replica
    of: the log end offset a consumer sees (the high watermark) minus the committed
    offset, as ``strom consumer-groups --describe`` prints it."""
    for shard in broker.groups.shards.values():
        for group, committed in shard.offsets.items():
            for (topic, partition), om in committed.items():
                end = high_watermarks.get(TopicPartition(topic, partition))
                if end is not None:
                    snap.lag.append(GroupLag(group, topic, partition, om.offset, end))
