"""Entry point of the broker layer: the Broker with every request handler registered."""

from __future__ import annotations

from strom.broker import cluster, configs, fetch, init_producer, offsets, produce, topics
from strom.broker.broker import HANDLERS, Broker

__all__ = [
    "HANDLERS",
    "Broker",
    "cluster",
    "configs",
    "fetch",
    "init_producer",
    "offsets",
    "produce",
    "topics",
]
