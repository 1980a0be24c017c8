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
from types import MappingProxyType
from typing import ClassVar, Final

from strom.common.names import INTERNAL_TOPICS
from strom.common.types import TopicPartition
from strom.common.values import Value

NO_LEADER = -1

# Kafka's SecurityProtocol ids (UpdateMetadata endpoints carry them).
SECURITY_PROTOCOL_IDS: Mapping[str, int] = MappingProxyType(
    {"PLAINTEXT": 0, "SSL": 1, "SASL_PLAINTEXT": 2, "SASL_SSL": 3}
)
SECURITY_PROTOCOL_NAMES: Mapping[int, str] = MappingProxyType(
    {v: k for k, v in SECURITY_PROTOCOL_IDS.items()}
)


class Endpoint(Value):
    """One advertised listener of a broker."""

    __slots__ = ("host", "listener", "port", "security_protocol")
    FIELDS: ClassVar[tuple[str, ...]] = ("listener", "host", "port", "security_protocol")
    listener: Final[str]
    host: Final[str]
    port: Final[int]
    security_protocol: Final[str]

    def __init__(
        self, listener: str, host: str, port: int, security_protocol: str = "PLAINTEXT"
    ) -> None:
        self.listener = listener
        self.host = host
        self.port = port
        self.security_protocol = security_protocol


class BrokerInfo(Value):
    """A registered broker: its id, advertised listeners, rack and broker epoch (the
    czxid of its ``/brokers/ids`` znode in a ZooKeeper cluster, -1 when unknown)."""

    __slots__ = ("endpoints", "epoch", "node_id", "rack")
    FIELDS: ClassVar[tuple[str, ...]] = ("node_id", "endpoints", "rack", "epoch")
    node_id: Final[int]
    endpoints: Final[tuple[Endpoint, ...]]
    rack: Final[str | None]
    epoch: Final[int]

    def __init__(
        self,
        node_id: int,
        endpoints: tuple[Endpoint, ...],
        rack: str | None = None,
        epoch: int = -1,
    ) -> None:
        self.node_id = node_id
        self.endpoints = endpoints
        self.rack = rack
        self.epoch = epoch

    def endpoint(self, listener: str) -> Endpoint | None:
        """The endpoint of ``listener`` (a listener name such as PLAINTEXT), if any."""
        for ep in self.endpoints:
            if ep.listener == listener:
                return ep
        return None


class PartitionInfo(Value):
    """A partition's state: leader (-1: none), leader epoch, partition epoch (the
    version of its state znode), replicas in assignment order, ISR, and the replicas
    whose log directory is offline; adding/removing replicas during a reassignment."""

    __slots__ = (
        "adding_replicas",
        "isr",
        "leader",
        "leader_epoch",
        "offline_replicas",
        "partition",
        "partition_epoch",
        "removing_replicas",
        "replicas",
    )
    FIELDS: ClassVar[tuple[str, ...]] = (
        "partition",
        "leader",
        "leader_epoch",
        "replicas",
        "isr",
        "partition_epoch",
        "offline_replicas",
        "adding_replicas",
        "removing_replicas",
    )
    partition: Final[int]
    leader: Final[int]
    leader_epoch: Final[int]
    replicas: Final[tuple[int, ...]]
    isr: Final[tuple[int, ...]]
    partition_epoch: Final[int]
    offline_replicas: Final[tuple[int, ...]]
    adding_replicas: Final[tuple[int, ...]]
    removing_replicas: Final[tuple[int, ...]]

    def __init__(
        self,
        partition: int,
        leader: int,
        leader_epoch: int,
        replicas: tuple[int, ...],
        isr: tuple[int, ...],
        partition_epoch: int = 0,
        offline_replicas: tuple[int, ...] = (),
        adding_replicas: tuple[int, ...] = (),
        removing_replicas: tuple[int, ...] = (),
    ) -> None:
        self.partition = partition
        self.leader = leader
        self.leader_epoch = leader_epoch
        self.replicas = replicas
        self.isr = isr
        self.partition_epoch = partition_epoch
        self.offline_replicas = offline_replicas
        self.adding_replicas = adding_replicas
        self.removing_replicas = removing_replicas

    @property
    def preferred_leader(self) -> int:
        return self.replicas[0] if self.replicas else NO_LEADER


class TopicInfo(Value):
    __slots__ = ("configs", "internal", "name", "partitions", "topic_id")
    FIELDS: ClassVar[tuple[str, ...]] = ("name", "topic_id", "partitions", "configs", "internal")
    name: Final[str]
    topic_id: Final[bytes]
    partitions: Final[tuple[PartitionInfo, ...]]
    configs: Final[Mapping[str, str]]
    internal: Final[bool]

    def __init__(
        self,
        name: str,
        topic_id: bytes,
        partitions: tuple[PartitionInfo, ...],
        configs: Mapping[str, str] | None = None,
        internal: bool = False,
    ) -> None:
        self.name = name
        self.topic_id = topic_id
        self.partitions = partitions
        self.configs = {} if configs is None else configs
        self.internal = internal

    @property
    def replication_factor(self) -> int:
        return len(self.partitions[0].replicas) if self.partitions else 0

    def partition(self, index: int) -> PartitionInfo | None:
        if 0 <= index < len(self.partitions) and self.partitions[index].partition == index:
            return self.partitions[index]
        return next((p for p in self.partitions if p.partition == index), None)


class TopicAssignment(Value):
    """The /brokers/topics/<t> znode: topic id and replicas per partition."""

    __slots__ = ("adding", "removing", "replicas", "topic_id")
    FIELDS: ClassVar[tuple[str, ...]] = ("topic_id", "replicas", "adding", "removing")
    topic_id: Final[bytes | None]
    replicas: Final[Mapping[int, tuple[int, ...]]]
    adding: Final[Mapping[int, tuple[int, ...]]]
    removing: Final[Mapping[int, tuple[int, ...]]]

    def __init__(
        self,
        topic_id: bytes | None,
        replicas: Mapping[int, tuple[int, ...]],
        adding: Mapping[int, tuple[int, ...]] | None = None,
        removing: Mapping[int, tuple[int, ...]] | None = None,
    ) -> None:
        self.topic_id = topic_id
        self.replicas = replicas
        self.adding = {} if adding is None else adding
        self.removing = {} if removing is None else removing


class LeaderAndIsr(Value):
    """A partition's state znode; ``zk_version`` (the znode version) is the partition epoch."""

    __slots__ = ("controller_epoch", "isr", "leader", "leader_epoch", "zk_version")
    FIELDS: ClassVar[tuple[str, ...]] = (
        "leader",
        "leader_epoch",
        "isr",
        "controller_epoch",
        "zk_version",
    )
    leader: Final[int]
    leader_epoch: Final[int]
    isr: Final[tuple[int, ...]]
    controller_epoch: Final[int]
    zk_version: Final[int]

    def __init__(
        self,
        leader: int,
        leader_epoch: int,
        isr: tuple[int, ...],
        controller_epoch: int,
        zk_version: int = 0,
    ) -> None:
        self.leader = leader
        self.leader_epoch = leader_epoch
        self.isr = isr
        self.controller_epoch = controller_epoch
        self.zk_version = zk_version


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
