"""The controller's view of the cluster (Kafka's ControllerContext): live brokers with
their epochs, topics with ids and replica assignments, and each partition's
leader, leader epoch, ISR and state-znode version. Only the controller thread
touches it; it is rebuilt from ZooKeeper at every failover."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from strom.common.types import TopicPartition
from strom.metadata.image import BrokerInfo, LeaderAndIsr

NO_LEADER = -1
LEADER_DURING_DELETE = -2  # UpdateMetadata's leader for a partition being deleted


@dataclass(slots=True)
class ReplicaAssignment:
    """Replicas in preference order; during a reassignment the union of the old and the
    target replicas, with those being added and removed."""

    replicas: tuple[int, ...]
    adding: tuple[int, ...] = ()
    removing: tuple[int, ...] = ()

    @property
    def target(self) -> tuple[int, ...]:
        return tuple(r for r in self.replicas if r not in self.removing)

    @property
    def original(self) -> tuple[int, ...]:
        return tuple(r for r in self.replicas if r not in self.adding)

    @property
    def is_reassigning(self) -> bool:
        return bool(self.adding or self.removing)


@dataclass(slots=True)
class ControllerContext:
    epoch: int = 0
    live_brokers: dict[int, BrokerInfo] = field(default_factory=dict)
    shutting_down: set[int] = field(default_factory=set)
    topic_ids: dict[str, bytes] = field(default_factory=dict)
    assignments: dict[TopicPartition, ReplicaAssignment] = field(default_factory=dict)
    states: dict[TopicPartition, LeaderAndIsr] = field(default_factory=dict)
    topics_to_delete: set[str] = field(default_factory=set)
    # partitions whose reassignment came from the legacy znode (removed from it when done)
    znode_reassignments: set[TopicPartition] = field(default_factory=set)

    # -- brokers -----------------------------------------------------------------
    def is_live(self, broker_id: int) -> bool:
        return broker_id in self.live_brokers

    def live_or_shutting_down(self) -> set[int]:
        return set(self.live_brokers)

    def live_not_shutting_down(self) -> set[int]:
        return set(self.live_brokers) - self.shutting_down

    def broker_epoch(self, broker_id: int) -> int:
        info = self.live_brokers.get(broker_id)
        return info.epoch if info is not None else -1

    # -- topics and partitions ------------------------------------------------------
    def partitions_of(self, topic: str) -> list[TopicPartition]:
        return sorted(tp for tp in self.assignments if tp.topic == topic)

    def all_partitions(self) -> Iterator[TopicPartition]:
        return iter(sorted(self.assignments))

    def replicas(self, tp: TopicPartition) -> tuple[int, ...]:
        a = self.assignments.get(tp)
        return a.replicas if a is not None else ()

    def partitions_on(self, broker_id: int) -> list[TopicPartition]:
        return [tp for tp, a in sorted(self.assignments.items()) if broker_id in a.replicas]

    def partitions_led_by(self, broker_id: int) -> list[TopicPartition]:
        return [tp for tp, s in sorted(self.states.items()) if s.leader == broker_id]

    def leader(self, tp: TopicPartition) -> int:
        s = self.states.get(tp)
        return s.leader if s is not None else NO_LEADER

    def is_online(self, tp: TopicPartition) -> bool:
        """A partition whose leader is a live broker."""
        return self.is_live(self.leader(tp))

    def offline_replicas(self, tp: TopicPartition) -> tuple[int, ...]:
        return tuple(r for r in self.replicas(tp) if not self.is_live(r))

    def remove_topic(self, topic: str) -> None:
        for tp in self.partitions_of(topic):
            self.assignments.pop(tp, None)
            self.states.pop(tp, None)
        self.topic_ids.pop(topic, None)
        self.topics_to_delete.discard(topic)
