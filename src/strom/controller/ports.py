"""What the controller needs from the outside: its store (ZooKeeper) and its channel to
the brokers. Protocols only; the broker layer adapts kazoo and strom.net to them, and
the tests and the simulation use in-memory fakes.

Every write of the store is fenced by the controller epoch: it succeeds only while
the ``/controller_epoch`` znode still has the version this controller wrote when it
was elected, and raises :class:`ControllerMovedError` otherwise (another broker
became controller meanwhile). Calls block; the controller runs on its own thread.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from strom.common.errors import ControllerMovedError
from strom.common.types import TopicPartition
from strom.metadata.image import BrokerInfo, LeaderAndIsr, TopicAssignment


class ControllerStore(Protocol):
    # -- reads -----------------------------------------------------------------------
    def live_brokers(self) -> dict[int, BrokerInfo]:
        """The registered brokers, each with its broker epoch."""
        ...

    def topic_names(self) -> set[str]: ...

    def topic_assignment(self, topic: str) -> TopicAssignment | None: ...

    def partition_states(self, tps: Iterable[TopicPartition]) -> dict[TopicPartition, LeaderAndIsr]:
        """The state znodes that exist among ``tps``."""
        ...

    def topics_to_delete(self) -> set[str]: ...

    def topic_configs(self, topic: str) -> Mapping[str, str]: ...

    def default_broker_configs(self) -> Mapping[str, str]:
        """The cluster-wide dynamic broker configs (/config/brokers/<default>)."""
        ...

    def reassignment_request(self) -> dict[TopicPartition, tuple[int, ...]] | None:
        """The legacy /admin/reassign_partitions request, None when absent."""
        ...

    def preferred_election_request(self) -> set[TopicPartition] | None:
        """The legacy /admin/preferred_replica_election request, None when absent."""
        ...

    def isr_change_notifications(self) -> list[tuple[str, set[TopicPartition]]]:
        """(znode name, partitions) of each pending ISR change notification."""
        ...

    # -- fenced writes ---------------------------------------------------------------------
    def create_partition_states(
        self, states: Mapping[TopicPartition, LeaderAndIsr]
    ) -> dict[TopicPartition, LeaderAndIsr]:
        """Create the state znodes of new partitions; returns those created (with their
        versions), leaving out any that already existed."""
        ...

    def update_partition_states(
        self, states: Mapping[TopicPartition, LeaderAndIsr]
    ) -> dict[TopicPartition, LeaderAndIsr | None]:
        """Conditional updates (each expects ``state.zk_version``): the state written
        (with its new version), or None where the version did not match."""
        ...

    def set_topic_assignment(self, topic: str, assignment: TopicAssignment) -> None: ...

    def delete_topic(self, topic: str) -> None:
        """Remove the topic's znodes, its configs and its deletion request."""
        ...

    def set_reassignment_request(self, remaining: Mapping[TopicPartition, tuple[int, ...]]) -> None:
        """Rewrite (or delete, when empty) the legacy reassignment znode."""
        ...

    def delete_preferred_election_request(self) -> None: ...

    def delete_isr_change_notifications(self, names: Iterable[str]) -> None: ...


__all__ = ["ControllerChannel", "ControllerMovedError", "ControllerStore", "ResponseCallback"]

ResponseCallback = Callable[[Any], None]


class ControllerChannel(Protocol):
    """Requests to brokers, in order per broker, retried until the broker is removed."""

    def add_broker(self, info: BrokerInfo) -> None: ...

    def remove_broker(self, broker_id: int) -> None: ...

    def send(
        self, broker_id: int, request: Any, on_response: ResponseCallback | None = None
    ) -> None:
        """Queue ``request`` for ``broker_id``; ``on_response(response)`` later, on any
        thread (the runtime turns it into a controller event)."""
        ...
