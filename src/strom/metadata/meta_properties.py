"""``meta.properties``: which broker and which cluster a log directory belongs to.

Kafka's format (``version=0``, ``broker.id``, ``cluster.id`` in ZooKeeper
mode; ``version=1``, ``node.id`` for the embedded single broker, as KRaft):
written into every log directory at the first start, checked at every later
one, so that a directory moved to another broker, or a broker pointed
at another cluster, refuses to start instead of mixing data.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Sequence
from pathlib import Path

from strom.common.config import parse_properties
from strom.common.types import random_uuid

META_PROPERTIES = "meta.properties"


class MetaPropertiesError(ValueError):
    """A log directory belongs to another broker or another cluster."""


def new_cluster_id() -> str:
    """A random cluster id in Kafka's form (a URL-safe base64 UUID, no padding)."""
    return base64.urlsafe_b64encode(random_uuid()).decode().rstrip("=")


def atomic_write(path: Path, text: str) -> None:
    """Write through a temporary file, fsync and rename: the old or the new, never torn."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_meta_properties(log_dirs: Sequence[Path]) -> tuple[int | None, str | None]:
    """(node id, cluster id) stored in the log directories, None where absent; a
    MetaPropertiesError when two directories disagree."""
    node: int | None = None
    cluster: str | None = None
    for d in log_dirs:
        p = d / META_PROPERTIES
        if not p.exists():
            continue
        props = parse_properties(p.read_text())
        nid_text = props.get("node.id") or props.get("broker.id")
        nid = int(nid_text) if nid_text is not None and nid_text.strip() else None
        cid = props.get("cluster.id") or None
        if nid is not None and node is not None and nid != node:
            raise MetaPropertiesError(f"the log directories hold different broker ids: {p}")
        if cid is not None and cluster is not None and cid != cluster:
            raise MetaPropertiesError(f"the log directories hold different cluster ids: {p}")
        node, cluster = nid if nid is not None else node, cid or cluster
    return node, cluster


def check_meta_properties(
    log_dirs: Sequence[Path],
    node_id: int,
    configured_cluster_id: str | None,
    cluster_cluster_id: str | None,
    *,
    zookeeper: bool = False,
) -> str:
    """Check the stored ids against this broker's and return the cluster id to use:
    ``cluster_cluster_id`` (from ZooKeeper) when given, else the stored one, else
    ``configured_cluster_id``, else a new one. Writes meta.properties where missing."""
    stored_node, stored_cluster = read_meta_properties(log_dirs)
    if stored_node is not None and stored_node != node_id:
        raise MetaPropertiesError(
            f"Configured broker.id {node_id} doesn't match stored broker.id Some({stored_node}) "
            "in meta.properties. If you moved your data, make sure your configured broker.id "
            "matches. If you intend to create a new broker, you should remove all data in your "
            "data directories (log.dirs)."
        )
    if cluster_cluster_id is not None and stored_cluster not in (None, cluster_cluster_id):
        raise MetaPropertiesError(
            f"The Cluster ID {cluster_cluster_id} doesn't match stored clusterId "
            f"Some({stored_cluster}) in meta.properties. The broker is trying to join the wrong "
            "cluster. Configured zookeeper.connect may be wrong."
        )
    if configured_cluster_id and stored_cluster and configured_cluster_id != stored_cluster:
        raise MetaPropertiesError(
            f"cluster.id {configured_cluster_id} does not match the stored cluster id "
            f"{stored_cluster} in meta.properties"
        )
    cid = cluster_cluster_id or stored_cluster or configured_cluster_id or new_cluster_id()
    for d in log_dirs:
        d.mkdir(parents=True, exist_ok=True)
        p = d / META_PROPERTIES
        if not p.exists():
            ids = (
                f"version=0\nbroker.id={node_id}" if zookeeper else f"version=1\nnode.id={node_id}"
            )
            atomic_write(p, f"{ids}\ncluster.id={cid}\n")
    return cid
