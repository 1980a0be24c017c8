"""Embedded metadata store: one broker, no ZooKeeper.

On disk, in the first log directory:
- ``meta.properties`` (Kafka's format: ``version``, ``node.id``,
  ``cluster.id``), also written to every other log directory;
- ``strom-metadata.json``: the topics (name, topic id, partition replicas,
  leader epochs, config overrides), dynamic broker configs, ACLs and SCRAM
  credentials, rewritten whole on each change through a
  temporary file, fsync and rename, so a crash leaves the old or the new image,
  never a torn one.

The store is also the single broker's controller: it is the leader of every
partition, its ISR is the broker alone, and after each change it hands the
whole new :class:`MetadataImage` to its listener, as a ZooKeeper cluster's
controller sends LeaderAndIsr and UpdateMetadata. Methods hold a lock: the
broker calls them from worker threads.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from strom.common.types import random_uuid
from strom.metadata.image import BrokerInfo, MetadataImage, PartitionInfo, TopicInfo, is_internal
from strom.metadata.meta_properties import atomic_write, check_meta_properties
from strom.metadata.store import BROKERS, USERS, MetadataListener, StoreError

if TYPE_CHECKING:
    from strom.common.acl import AclBinding
    from strom.common.scram import ScramCredential

TOPIC_ALREADY_EXISTS = 36
UNKNOWN_TOPIC_OR_PARTITION = 3

META_FILE = "strom-metadata.json"


class EmbeddedMetadataStore:
    """The whole cluster image of a single broker, kept in its log directory."""

    def __init__(self, log_dirs: list[Path], node_id: int, cluster_id: str | None = None) -> None:
        self._dirs = log_dirs
        self._node_id = node_id
        self._broker = BrokerInfo(node_id, ())
        self._lock = threading.RLock()
        self._listener: MetadataListener | None = None
        self._topics: dict[str, TopicInfo] = {}
        self._next_producer_id = 0
        self._broker_configs: dict[str, dict[str, str]] = {}
        self._acls: set[AclBinding] = set()
        self._scram: dict[str, dict[str, ScramCredential]] = {}
        self._cluster_id = check_meta_properties(log_dirs, node_id, cluster_id, None)
        self._load()

    def _load(self) -> None:
        p = self._dirs[0] / META_FILE
        if not p.exists():
            return
        import json  # here and in _save: a new broker starts without it (issue 15)

        data = json.loads(p.read_text())
        self._next_producer_id = int(data.get("next_producer_id", 0))
        self._broker_configs = {str(k): dict(v) for k, v in data.get("broker_configs", {}).items()}
        self._acls = {_binding_from_json(a) for a in data.get("acls", [])}
        self._scram = _scram_from_json(data.get("scram", {}))
        for t in data["topics"]:
            parts = tuple(
                self._partition(i, tuple(pa["replicas"]), pa["leader_epoch"])
                for i, pa in enumerate(t["partitions"])
            )
            self._topics[t["name"]] = TopicInfo(
                t["name"],
                bytes.fromhex(t["topic_id"]),
                parts,
                dict(t["configs"]),
                is_internal(t["name"]),
            )

    def _save(self) -> None:
        import json

        data = {
            "version": 1,
            "next_producer_id": self._next_producer_id,
            "broker_configs": self._broker_configs,
            "acls": sorted((_binding_to_json(b) for b in self._acls), key=str),
            "scram": {
                user: {m: c.to_text() for m, c in creds.items()}
                for user, creds in self._scram.items()
            },
            "topics": [
                {
                    "name": t.name,
                    "topic_id": t.topic_id.hex(),
                    "internal": t.internal,
                    "configs": dict(t.configs),
                    "partitions": [
                        {
                            "leader": p.leader,
                            "leader_epoch": p.leader_epoch,
                            "replicas": list(p.replicas),
                            "isr": list(p.isr),
                        }
                        for p in t.partitions
                    ],
                }
                for t in self._topics.values()
            ],
        }
        atomic_write(self._dirs[0] / META_FILE, json.dumps(data, indent=1))

    def _partition(self, index: int, replicas: tuple[int, ...], leader_epoch: int) -> PartitionInfo:
        """The single broker leads every partition it is a replica of; the ISR is itself."""
        me = self._node_id
        if me in replicas:
            return PartitionInfo(index, me, leader_epoch, replicas, (me,))
        return PartitionInfo(index, -1, leader_epoch, replicas, ())

    def _publish(self) -> None:
        if self._listener is not None:
            self._listener.on_image(self.image())

    # -- MetadataStore ---------------------------------------------------
    @property
    def cluster_id(self) -> str:
        return self._cluster_id

    def start(self, listener: MetadataListener) -> None:
        with self._lock:
            self._listener = listener
            self._publish()

    def close(self) -> None:
        self._listener = None

    def register_broker(self, info: BrokerInfo) -> BrokerInfo:
        with self._lock:
            self._broker = info
            self._publish()
            return info

    def image(self) -> MetadataImage:
        with self._lock:
            me = self._node_id
            return MetadataImage(self._cluster_id, me, {me: self._broker}, self._topics)

    def create_topic(
        self, name: str, assignment: Sequence[tuple[int, ...]], configs: Mapping[str, str]
    ) -> bytes:
        with self._lock:
            if name in self._topics:
                raise StoreError(TOPIC_ALREADY_EXISTS, f"Topic '{name}' already exists.")
            topic_id = random_uuid()
            parts = tuple(self._partition(i, r, 0) for i, r in enumerate(assignment))
            self._topics[name] = TopicInfo(name, topic_id, parts, dict(configs), is_internal(name))
            self._save()
            self._publish()
            return topic_id

    def _topic(self, name: str) -> TopicInfo:
        t = self._topics.get(name)
        if t is None:
            raise StoreError(UNKNOWN_TOPIC_OR_PARTITION, f"The topic '{name}' does not exist.")
        return t

    def delete_topic(self, name: str) -> None:
        with self._lock:
            self._topic(name)
            del self._topics[name]
            self._save()
            self._publish()

    def add_partitions(self, name: str, assignment: Sequence[tuple[int, ...]]) -> None:
        with self._lock:
            t = self._topic(name)
            start = len(t.partitions)
            added = tuple(self._partition(start + i, r, 0) for i, r in enumerate(assignment))
            self._topics[name] = TopicInfo(
                t.name, t.topic_id, t.partitions + added, t.configs, t.internal
            )
            self._save()
            self._publish()

    def topic_configs(self, name: str) -> Mapping[str, str]:
        with self._lock:
            t = self._topics.get(name)
            return dict(t.configs) if t is not None else {}

    def ensure_topic_configs(self, name: str) -> Mapping[str, str]:
        return self.topic_configs(name)

    def set_topic_configs(self, name: str, configs: Mapping[str, str]) -> None:
        with self._lock:
            t = self._topic(name)
            self._topics[name] = TopicInfo(
                t.name, t.topic_id, t.partitions, dict(configs), t.internal
            )
            self._save()
            self._publish()

    def broker_configs(self, entity: str) -> Mapping[str, str]:
        with self._lock:
            return dict(self._broker_configs.get(entity, {}))

    def set_broker_configs(self, entity: str, configs: Mapping[str, str]) -> None:
        with self._lock:
            if configs:
                self._broker_configs[entity] = dict(configs)
            else:
                self._broker_configs.pop(entity, None)
            self._save()
            if self._listener is not None:
                self._listener.on_config_change(BROKERS, entity)

    def allocate_producer_ids(self, count: int) -> int:
        with self._lock:
            first = self._next_producer_id
            self._next_producer_id += count
            self._save()
            return first

    # -- security ------------------------------------------------------------------------
    def acls(self) -> list[AclBinding]:
        with self._lock:
            return list(self._acls)

    def change_acls(
        self, add: Sequence[AclBinding], remove: Sequence[AclBinding]
    ) -> dict[AclBinding, str]:
        with self._lock:
            self._acls = (self._acls | set(add)) - set(remove)
            self._save()
            if self._listener is not None:
                self._listener.on_acls_change()
        return {}

    def scram_credentials(self, user: str) -> Mapping[str, ScramCredential]:
        with self._lock:
            return dict(self._scram.get(user, {}))

    def scram_users(self) -> list[str]:
        with self._lock:
            return sorted(self._scram)

    def alter_scram(
        self,
        upserts: Sequence[tuple[str, str, ScramCredential]],
        deletions: Sequence[tuple[str, str]],
    ) -> None:
        with self._lock:
            for user, mechanism, cred in upserts:
                self._scram.setdefault(user, {})[mechanism] = cred
            for user, mechanism in deletions:
                self._scram.get(user, {}).pop(mechanism, None)
                if not self._scram.get(user, True):
                    del self._scram[user]
            self._save()
            if self._listener is not None:
                for user in {u for u, _, _ in upserts} | {u for u, _ in deletions}:
                    self._listener.on_config_change(USERS, user)


def _binding_to_json(b: AclBinding) -> dict[str, object]:
    p, e = b.pattern, b.entry
    return {
        "resource_type": p.resource_type.name,
        "name": p.name,
        "pattern_type": p.pattern_type.name,
        "principal": e.principal,
        "host": e.host,
        "operation": e.operation.name,
        "permission_type": e.permission_type.name,
    }


def _binding_from_json(obj: dict[str, str]) -> AclBinding:
    # the ACL types are imported only by a store that has ACLs
    from strom.common.acl import (
        AccessControlEntry,
        AclBinding,
        AclOperation,
        AclPermissionType,
        PatternType,
        ResourcePattern,
        ResourceType,
    )

    return AclBinding(
        ResourcePattern(
            ResourceType[obj["resource_type"]], obj["name"], PatternType[obj["pattern_type"]]
        ),
        AccessControlEntry(
            obj["principal"],
            obj["host"],
            AclOperation[obj["operation"]],
            AclPermissionType[obj["permission_type"]],
        ),
    )


def _scram_from_json(
    stored: Mapping[str, Mapping[str, str]],
) -> dict[str, dict[str, ScramCredential]]:
    if not stored:
        return {}
    # the SCRAM types are imported only by a store that has credentials
    from strom.common.scram import ScramCredential

    return {
        user: {m: ScramCredential.from_text(text) for m, text in creds.items()}
        for user, creds in stored.items()
    }
