"""Entry point of the broker layer: the Broker with every request handler registered."""

from __future__ import annotations

from strom.broker import (
    acls,
    authz,
    cluster,
    configs,
    consumer_group_apis,
    control_plane,
    fetch,
    groups,
    init_producer,
    offsets,
    partition_admin,
    produce,
    scram,
    topics,
    transactions,
    txn_offsets,
)
from strom.broker.broker import HANDLERS, Broker

__all__ = [
    "HANDLERS",
    "Broker",
    "acls",
    "authz",
    "cluster",
    "configs",
    "consumer_group_apis",
    "control_plane",
    "fetch",
    "groups",
    "init_producer",
    "offsets",
    "partition_admin",
    "produce",
    "scram",
    "topics",
    "transactions",
    "txn_offsets",
]
