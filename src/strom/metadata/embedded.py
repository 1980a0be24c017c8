"""Embedded metadata store: one broker, no ZooKeeper.

On disk, in the first log directory:
- ``meta.properties`` (Kafka's format: ``version``, ``node.id``,
  ``cluster.id``), also written to every other log directory;
- ``strom-metadata.json``: the topics (name, topic id, partition replicas,
  leader epochs, config overrides), rewritten whole on each change through a
  temporary file, fsync and rename, so a crash leaves the old or the new image,
  never a torn one.
"""

from __future__ import annotations

import base64
import json
import os
import uuid
from collections.abc import Mapping
from pathlib import Path

from strom.common.config import parse_properties
from strom.metadata.store import BrokerInfo, PartitionInfo, TopicInfo

META_FILE = "strom-metadata.json"


def new_cluster_id() -> str:
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class EmbeddedMetadataStore:
    """The whole cluster image of a single broker, kept in its log directory."""

    def __init__(
        self, log_dirs: list[Path], broker: BrokerInfo, cluster_id: str | None = None
    ) -> None:
        self._dirs = log_dirs
        self._broker = broker
        self._topics: dict[str, TopicInfo] = {}
        self._next_producer_id = 0
        self._broker_configs: dict[str, dict[str, str]] = {}
        self._cluster_id = self._load_meta_properties(cluster_id)
        self._load()

    def _load_meta_properties(self, wanted: str | None) -> str:
        found: str | None = None
        for d in self._dirs:
            p = d / "meta.properties"
            if p.exists():
                props = parse_properties(p.read_text())
                found = found or props.get("cluster.id")
                nid = props.get("node.id") or props.get("broker.id")
                if nid is not None and int(nid) != self._broker.node_id:
                    raise ValueError(
                        f"node.id {self._broker.node_id} does not match node.id {nid} in {p}"
                    )
        if wanted and found and wanted != found:
            raise ValueError(f"cluster.id {wanted} does not match {found} in meta.properties")
        cid = found or wanted or new_cluster_id()
        for d in self._dirs:
            d.mkdir(parents=True, exist_ok=True)
            p = d / "meta.properties"
            if not p.exists():
                _atomic_write(p, f"version=1\nnode.id={self._broker.node_id}\ncluster.id={cid}\n")
        return cid

    def _load(self) -> None:
        p = self._dirs[0] / META_FILE
        if not p.exists():
            return
        data = json.loads(p.read_text())
        self._next_producer_id = int(data.get("next_producer_id", 0))
        self._broker_configs = {str(k): dict(v) for k, v in data.get("broker_configs", {}).items()}
        for t in data["topics"]:
            parts = tuple(
                PartitionInfo(
                    i, pa["leader"], pa["leader_epoch"], tuple(pa["replicas"]), tuple(pa["isr"])
                )
                for i, pa in enumerate(t["partitions"])
            )
            self._topics[t["name"]] = TopicInfo(
                t["name"],
                bytes.fromhex(t["topic_id"]),
                parts,
                dict(t["configs"]),
                t.get("internal", False),
            )

    def _save(self) -> None:
        data = {
            "version": 1,
            "next_producer_id": self._next_producer_id,
            "broker_configs": self._broker_configs,
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
        _atomic_write(self._dirs[0] / META_FILE, json.dumps(data, indent=1))

    # -- MetadataStore ---------------------------------------------------
    @property
    def cluster_id(self) -> str:
        return self._cluster_id

    def brokers(self) -> list[BrokerInfo]:
        return [self._broker]

    def controller_id(self) -> int:
        return self._broker.node_id

    def topics(self) -> Mapping[str, TopicInfo]:
        return self._topics

    def topic_by_id(self, topic_id: bytes) -> TopicInfo | None:
        for t in self._topics.values():
            if t.topic_id == topic_id:
                return t
        return None

    @staticmethod
    def _partitions(start: int, assignment: list[tuple[int, ...]]) -> tuple[PartitionInfo, ...]:
        return tuple(
            PartitionInfo(start + i, replicas[0], 0, replicas, replicas)
            for i, replicas in enumerate(assignment)
        )

    def create_topic(
        self,
        name: str,
        assignment: list[tuple[int, ...]],
        configs: Mapping[str, str],
        internal: bool = False,
    ) -> TopicInfo:
        if name in self._topics:
            raise KeyError(name)
        topic_id = uuid.uuid4().bytes
        info = TopicInfo(name, topic_id, self._partitions(0, assignment), dict(configs), internal)
        self._topics[name] = info
        self._save()
        return info

    def delete_topic(self, name: str) -> None:
        del self._topics[name]
        self._save()

    def add_partitions(self, name: str, assignment: list[tuple[int, ...]]) -> TopicInfo:
        t = self._topics[name]
        parts = t.partitions + self._partitions(len(t.partitions), assignment)
        info = TopicInfo(t.name, t.topic_id, parts, t.configs, t.internal)
        self._topics[name] = info
        self._save()
        return info

    def broker_configs(self, entity: str) -> Mapping[str, str]:
        return dict(self._broker_configs.get(entity, {}))

    def set_broker_configs(self, entity: str, configs: Mapping[str, str]) -> None:
        if configs:
            self._broker_configs[entity] = dict(configs)
        else:
            self._broker_configs.pop(entity, None)
        self._save()

    def allocate_producer_ids(self, count: int) -> int:
        first = self._next_producer_id
        self._next_producer_id += count
        self._save()
        return first

    def set_topic_configs(self, name: str, configs: Mapping[str, str]) -> TopicInfo:
        t = self._topics[name]
        info = TopicInfo(t.name, t.topic_id, t.partitions, dict(configs), t.internal)
        self._topics[name] = info
        self._save()
        return info
