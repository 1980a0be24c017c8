"""The client's cache of cluster metadata (sans-IO).

Fed with MetadataResponses; answers which brokers exist, which partitions a
topic has and who leads each. Tracks age so the IO front knows when to
refresh (``metadata.max.age.ms``).
"""

from __future__ import annotations

from dataclasses import dataclass

from strom.common.types import TopicPartition
from strom.protocol.errors import ErrorCode
from strom.protocol.generated.metadata import MetadataResponse


@dataclass(frozen=True, slots=True)
class BrokerMetadata:
    """A broker's node id, address and rack (None: not set)."""

    node_id: int
    host: str
    port: int
    rack: str | None = None


@dataclass(frozen=True, slots=True)
class PartitionMetadata:
    """A partition as the last Metadata response reported it (leader -1: none)."""

    topic: str
    partition: int
    leader: int
    leader_epoch: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    offline_replicas: tuple[int, ...] = ()
    error_code: int = 0


@dataclass(frozen=True, slots=True)
class TopicMetadata:
    """A topic as the last Metadata response reported it; partitions by index."""

    name: str
    topic_id: bytes
    is_internal: bool
    partitions: dict[int, PartitionMetadata]
    error_code: int = 0


class ClusterMetadata:
    """Brokers, topics -> partitions -> leader, as last reported."""

    def __init__(self) -> None:
        self.brokers: dict[int, BrokerMetadata] = {}
        self.topics: dict[str, TopicMetadata] = {}
        self.cluster_id: str | None = None
        self.controller_id: int = -1
        self.last_refresh_ms: int = -1

    def update(self, response: MetadataResponse, now_ms: int, *, full: bool = False) -> None:
        """Apply a response; ``full`` (all topics were asked for) drops missing topics."""
        self.brokers = {
            b.node_id: BrokerMetadata(b.node_id, b.host, b.port, b.rack) for b in response.brokers
        }
        self.cluster_id = response.cluster_id
        self.controller_id = response.controller_id
        if full:
            self.topics = {}
        for t in response.topics:
            if t.name is None:
                continue
            if t.error_code != ErrorCode.NONE and not t.partitions:
                self.topics.pop(t.name, None)
                continue
            parts = {
                p.partition_index: PartitionMetadata(
                    t.name,
                    p.partition_index,
                    p.leader_id,
                    p.leader_epoch,
                    tuple(p.replica_nodes),
                    tuple(p.isr_nodes),
                    tuple(p.offline_replicas),
                    p.error_code,
                )
                for p in t.partitions
            }
            self.topics[t.name] = TopicMetadata(
                t.name, t.topic_id, t.is_internal, parts, t.error_code
            )
        self.last_refresh_ms = now_ms

    def is_stale(self, now_ms: int, max_age_ms: int) -> bool:
        """Whether metadata was never loaded or is at least ``max_age_ms`` old."""
        return self.last_refresh_ms < 0 or now_ms - self.last_refresh_ms >= max_age_ms

    def partition_count(self, topic: str) -> int | None:
        """How many partitions ``topic`` has; None when the topic is not known."""
        t = self.topics.get(topic)
        return len(t.partitions) if t is not None else None

    def partitions_for(self, topic: str) -> list[TopicPartition]:
        """The topic's partitions in order; [] when the topic is not known."""
        t = self.topics.get(topic)
        if t is None:
            return []
        return [TopicPartition(topic, p) for p in sorted(t.partitions)]

    def leader_for(self, tp: TopicPartition) -> int | None:
        """The leader's node id, or None when unknown or leaderless."""
        t = self.topics.get(tp.topic)
        if t is None:
            return None
        p = t.partitions.get(tp.partition)
        if p is None or p.leader < 0 or p.leader not in self.brokers:
            return None
        return p.leader

    def broker(self, node_id: int) -> BrokerMetadata | None:
        """The broker with ``node_id``; None when not known."""
        return self.brokers.get(node_id)

    def any_broker(self) -> BrokerMetadata | None:
        """The known broker with the lowest node id; None when none is known."""
        return next(iter(sorted(self.brokers.values(), key=lambda b: b.node_id)), None)
