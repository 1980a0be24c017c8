"""The cluster image: an immutable snapshot of brokers, topics and partitions.

Request handlers read the broker's current :class:`MetadataImage`; nothing
changes one in place. A new image is built whole (from the embedded store's
files, or from the controller's UpdateMetadata requests in a ZooKeeper
cluster) and swapped in with one assignment, so a handler that holds an
image sees one consistent state for as long as it keeps it.

Leadership has one definition: :attr:`PartitionInfo.leader` of the image
(-1 when the partition has no leader). No code takes ``replicas[0]`` as the
leader; ``replicas[0]`` is the *preferred* leader only.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from strom.common.names import INTERNAL_TOPICS
from strom.common.types import TopicPartition

NO_LEADER = -1

# Kafka's SecurityProtocol ids (UpdateMetadata endpoints carry them).
SECURITY_PROTOCOL_IDS: Mapping[str, int] = MappingProxyType(
    {"PLAINTEXT": 0, "SSL": 1, "SASL_PLAINTEXT": 2, "SASL_SSL": 3}
)
SECURITY_PROTOCOL_NAMES: Mapping[int, str] = MappingProxyType(
    {v: k for k, v in SECURITY_PROTOCOL_IDS.items()}
)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One advertised listener of a broker."""

    listener: str
    host: str
    port: int
    security_protocol: str = "PLAINTEXT"


@dataclass(frozen=True, slots=True)
class BrokerInfo:
    """A registered broker: its id, advertised listeners, rack and broker epoch (the
    czxid of its ``/brokers/ids`` znode in a ZooKeeper cluster, -1 when unknown)."""

    node_id: int
    endpoints: tuple[Endpoint, ...]
    rack: str | None = None
    epoch: int = -1

    def endpoint(self, listener: str) -> Endpoint | None:
        """The endpoint of ``listener`` (a listener name such as PLAINTEXT), if any."""
        for ep in self.endpoints:
            if ep.listener == listener:
                return ep
        return None


@dataclass(frozen=True, slots=True)
class PartitionInfo:
    """A partition's state: leader (-1: none), leader epoch, partition epoch (the
    version of its state znode), replicas in assignment order, ISR, and the replicas
    whose log directory is offline; adding/removing replicas during a reassignment."""

    partition: int
    leader: int
    leader_epoch: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    partition_epoch: int = 0
    offline_replicas: tuple[int, ...] = ()
    adding_replicas: tuple[int, ...] = ()
    removing_replicas: tuple[int, ...] = ()

    @property
    def preferred_leader(self) -> int:
        return self.replicas[0] if self.replicas else NO_LEADER


@dataclass(frozen=True, slots=True)
class TopicInfo:
    name: str
    topic_id: bytes
    partitions: tuple[PartitionInfo, ...]
    configs: Mapping[str, str] = field(default_factory=dict)
    internal: bool = False

    @property
    def replication_factor(self) -> int:
        return len(self.partitions[0].replicas) if self.partitions else 0

    def partition(self, index: int) -> PartitionInfo | None:
        if 0 <= index < len(self.partitions) and self.partitions[index].partition == index:
            return self.partitions[index]
        return next((p for p in self.partitions if p.partition == index), None)


@dataclass(frozen=True, slots=True)
class TopicAssignment:
    """The /brokers/topics/<t> znode: topic id and replicas per partition."""

    topic_id: bytes | None
    replicas: Mapping[int, tuple[int, ...]]
    adding: Mapping[int, tuple[int, ...]] = field(default_factory=dict)
    removing: Mapping[int, tuple[int, ...]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LeaderAndIsr:
    """A partition's state znode; ``zk_version`` (the znode version) is the partition epoch."""

    leader: int
    leader_epoch: int
    isr: tuple[int, ...]
    controller_epoch: int
    zk_version: int = 0


def is_internal(name: str) -> bool:
    return name in INTERNAL_TOPICS


class MetadataImage:
    """Brokers, topics and partitions at one moment. Immutable: build a new one."""

    __slots__ = ("_by_id", "brokers", "cluster_id", "controller_id", "topics")

    def __init__(
        self,
        cluster_id: str,
        controller_id: int,
        brokers: Mapping[int, BrokerInfo],
        topics: Mapping[str, TopicInfo],
    ) -> None:
        self.cluster_id = cluster_id
        self.controller_id = controller_id
        self.brokers: Mapping[int, BrokerInfo] = MappingProxyType(dict(brokers))
        self.topics: Mapping[str, TopicInfo] = MappingProxyType(dict(topics))
        self._by_id = {t.topic_id: t for t in self.topics.values()}

    @staticmethod
    def empty(cluster_id: str = "") -> MetadataImage:
        return MetadataImage(cluster_id, NO_LEADER, {}, {})

    def replace(
        self,
        *,
        cluster_id: str | None = None,
        controller_id: int | None = None,
        brokers: Mapping[int, BrokerInfo] | None = None,
        topics: Mapping[str, TopicInfo] | None = None,
    ) -> MetadataImage:
        return MetadataImage(
            self.cluster_id if cluster_id is None else cluster_id,
            self.controller_id if controller_id is None else controller_id,
            self.brokers if brokers is None else brokers,
            self.topics if topics is None else topics,
        )

    def topic(self, name: str) -> TopicInfo | None:
        return self.topics.get(name)

    def topic_by_id(self, topic_id: bytes) -> TopicInfo | None:
        return self._by_id.get(topic_id)

    def partition(self, tp: TopicPartition) -> PartitionInfo | None:
        topic = self.topics.get(tp.topic)
        return topic.partition(tp.partition) if topic is not None else None

    def leader(self, tp: TopicPartition) -> int:
        """The leader of ``tp`` (-1 when it has none or is unknown)."""
        p = self.partition(tp)
        return p.leader if p is not None else NO_LEADER

    def live_broker_ids(self) -> list[int]:
        return sorted(self.brokers)

    def partitions(self) -> Iterator[tuple[TopicPartition, PartitionInfo]]:
        for topic in self.topics.values():
            for p in topic.partitions:
                yield TopicPartition(topic.name, p.partition), p

    def __repr__(self) -> str:
        return (
            f"MetadataImage(cluster_id={self.cluster_id!r}, controller={self.controller_id}, "
            f"brokers={sorted(self.brokers)}, topics={len(self.topics)})"
        )
