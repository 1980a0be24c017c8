"""Entry point of the broker layer: the Broker with every request handler registered."""

from __future__ import annotations

from strom.broker import (
    acls,
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
    topics,
    transactions,
    txn_offsets,
)
from strom.broker.broker import HANDLERS, Broker

__all__ = [
    "HANDLERS",
    "Broker",
    "acls",
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
    "topics",
    "transactions",
    "txn_offsets",
]
