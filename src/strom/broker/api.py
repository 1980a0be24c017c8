"""The Broker with every request handler and authorization rule registered at once.

A broker imports each API's handler on the API's first request
(:data:`strom.broker.handlers.HANDLER_MODULES`), and the authorization rules with an
authorizer; import this module to have them all (tests of the tables, tools)."""

from __future__ import annotations

from strom.broker import (
    acls,
    api_versions,
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
from strom.broker.broker import Broker
from strom.broker.handlers import HANDLERS

__all__ = [
    "HANDLERS",
    "Broker",
    "acls",
    "api_versions",
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
