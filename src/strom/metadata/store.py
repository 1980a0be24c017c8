"""The cluster image behind one MetadataStore protocol.

Two implementations: ``embedded`` (a single broker, files in its log
directory) and ``zk`` (Apache ZooKeeper through kazoo, for clusters). The
broker reads and changes the cluster only through this protocol.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class BrokerInfo:
    node_id: int
    host: str
    port: int
    rack: str | None = None


@dataclass(frozen=True, slots=True)
class PartitionInfo:
    partition: int
    leader: int
    leader_epoch: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]


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


class MetadataStore(Protocol):
    """What the broker needs to know and change about the cluster."""

    @property
    def cluster_id(self) -> str: ...

    def brokers(self) -> list[BrokerInfo]: ...

    def controller_id(self) -> int: ...

    def topics(self) -> Mapping[str, TopicInfo]: ...

    def topic_by_id(self, topic_id: bytes) -> TopicInfo | None: ...

    def create_topic(
        self,
        name: str,
        assignment: list[tuple[int, ...]],
        configs: Mapping[str, str],
        internal: bool = False,
    ) -> TopicInfo: ...

    def delete_topic(self, name: str) -> None: ...

    def add_partitions(self, name: str, assignment: list[tuple[int, ...]]) -> TopicInfo: ...

    def set_topic_configs(self, name: str, configs: Mapping[str, str]) -> TopicInfo: ...

    def broker_configs(self, entity: str) -> Mapping[str, str]:
        """Dynamic broker configs of ``entity``: a broker id, or "" for the cluster default."""
        ...

    def set_broker_configs(self, entity: str, configs: Mapping[str, str]) -> None:
        """Replace the dynamic broker configs of ``entity`` (a broker id or "")."""
        ...

    def allocate_producer_ids(self, count: int) -> int:
        """Reserve ``count`` producer ids never handed out before; return the first."""
        ...
