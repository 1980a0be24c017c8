"""The write side of the cluster metadata: one MetadataStore protocol, two stores.

``embedded`` (a single broker, files in its log directory) and ``zk`` (Apache
ZooKeeper through kazoo, for clusters). Request handlers read the broker's
:class:`~strom.metadata.image.MetadataImage`; admin requests change the
cluster only through this protocol.

Every method may block (file fsync, a ZooKeeper round trip) and is safe to
call from any thread: the broker calls them from worker threads, never on
its event loop. What a store learns (a new image from the embedded store, a
config change from ZooKeeper) reaches the broker through the
:class:`MetadataListener` it was started with, called from the store's own
thread; the listener hands it to the event loop.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from strom.metadata.image import (
    BrokerInfo,
    Endpoint,
    MetadataImage,
    PartitionInfo,
    TopicInfo,
)

if TYPE_CHECKING:
    from strom.common.acl import AclBinding
    from strom.common.scram import ScramCredential

__all__ = [
    "BrokerInfo",
    "Endpoint",
    "MetadataImage",
    "MetadataListener",
    "MetadataStore",
    "PartitionInfo",
    "StoreError",
    "TopicInfo",
]

# Config entity types, as Kafka names them under /config.
TOPICS = "topics"
BROKERS = "brokers"
USERS = "users"
DEFAULT_ENTITY = "<default>"


class StoreError(Exception):
    """The store cannot do what was asked; ``code`` is the Kafka error code to answer."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class MetadataListener(Protocol):
    """What the broker hears from its store (called from the store's thread)."""

    def on_image(self, image: MetadataImage) -> None:
        """The embedded store's whole new image after a change."""
        ...

    def on_config_change(self, entity_type: str, name: str) -> None:
        """Configs of ``entity_type`` ("topics", "brokers" or "users") ``name`` changed."""
        ...

    def on_acls_change(self) -> None:
        """Some ACLs changed: :meth:`MetadataStore.acls` has the new set."""
        ...


class MetadataStore(Protocol):
    """What the broker changes in the cluster, and the configs it reads."""

    @property
    def cluster_id(self) -> str: ...

    def start(self, listener: MetadataListener) -> None:
        """Begin delivering changes to ``listener``."""
        ...

    def close(self) -> None: ...

    def register_broker(self, info: BrokerInfo) -> BrokerInfo:
        """Register this broker (its advertised endpoints and rack); returns the
        registration with its broker epoch."""
        ...

    def create_topic(
        self,
        name: str,
        assignment: Sequence[tuple[int, ...]],
        configs: Mapping[str, str],
    ) -> bytes:
        """Create a topic with this replica assignment; returns its topic id.
        StoreError(TOPIC_ALREADY_EXISTS) when it exists."""
        ...

    def delete_topic(self, name: str) -> None:
        """Start deleting a topic (a ZooKeeper cluster deletes it asynchronously)."""
        ...

    def add_partitions(self, name: str, assignment: Sequence[tuple[int, ...]]) -> None:
        """Append partitions with these replicas to an existing topic."""
        ...

    def topic_configs(self, name: str) -> Mapping[str, str]:
        """The config overrides of topic ``name`` ({} when none); from a cache, never
        blocking (as broker_configs)."""
        ...

    def ensure_topic_configs(self, name: str) -> Mapping[str, str]:
        """The config overrides of topic ``name``, read from the store itself when the
        cache does not hold them yet (a topic just created elsewhere); may block."""
        ...

    def set_topic_configs(self, name: str, configs: Mapping[str, str]) -> None:
        """Replace the config overrides of a topic."""
        ...

    def broker_configs(self, entity: str) -> Mapping[str, str]:
        """Dynamic broker configs of ``entity``: a broker id, or "" for the cluster default."""
        ...

    def set_broker_configs(self, entity: str, configs: Mapping[str, str]) -> None:
        """Replace the dynamic broker configs of ``entity`` (a broker id or "")."""
        ...

    def allocate_producer_ids(self, count: int) -> int:
        """Reserve ``count`` producer ids never handed out before; return the first."""
        ...

    # -- security --------------------------------------------------------------------------
    def acls(self) -> list[AclBinding]:
        """Every ACL binding; from a cache, never blocking."""
        ...

    def change_acls(
        self, add: Sequence[AclBinding], remove: Sequence[AclBinding]
    ) -> dict[AclBinding, str]:
        """Create ``add`` and delete ``remove`` (exact bindings); the bindings that could
        not be written, each with the reason (the others were)."""
        ...

    def scram_credentials(self, user: str) -> Mapping[str, ScramCredential]:
        """The SCRAM credentials of ``user`` by mechanism name; from a cache."""
        ...

    def scram_users(self) -> list[str]:
        """The users that have a SCRAM credential; from a cache."""
        ...

    def alter_scram(
        self,
        upserts: Sequence[tuple[str, str, ScramCredential]],
        deletions: Sequence[tuple[str, str]],
    ) -> None:
        """Set (user, mechanism, credential) and delete (user, mechanism) credentials."""
        ...
