"""Entry point of the broker layer: the Broker with every request handler registered."""

from __future__ import annotations

from strom.broker import (
    cluster,
    configs,
    fetch,
    groups,
    init_producer,
    offsets,
    produce,
    topics,
    transactions,
    txn_offsets,
)
from strom.broker.broker import HANDLERS, Broker

__all__ = [
    "HANDLERS",
    "Broker",
    "cluster",
    "configs",
    "fetch",
    "groups",
    "init_producer",
    "offsets",
    "produce",
    "topics",
    "transactions",
    "txn_offsets",
]
