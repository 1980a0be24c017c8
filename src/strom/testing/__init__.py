"""Shipped helpers for testing against real strom brokers: processes, records, checks.

Each name below is imported from its module on first use (PEP 562's module
``__getattr__``): ``from strom.testing import EmbeddedBroker`` loads the embedded
broker alone, not the helpers for broker processes, clusters and ZooKeeper.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from strom.testing.broker import (
        BrokerExitedError,
        BrokerFactory,
        BrokerProcess,
        BrokerStartTimeoutError,
        free_port,
        strom_argv,
    )
    from strom.testing.cluster import Cluster
    from strom.testing.embedded import EmbeddedBroker, EmbeddedBrokerError
    from strom.testing.records import (
        Rec,
        assert_acknowledged_read_back,
        assert_same_partitions,
        by_partition,
        check_acknowledged_read_back,
    )
    from strom.testing.zookeeper import ZooKeeperEnsemble, ZooKeeperProcess

_MODULE_OF = {
    "BrokerExitedError": "broker",
    "BrokerFactory": "broker",
    "BrokerProcess": "broker",
    "BrokerStartTimeoutError": "broker",
    "free_port": "broker",
    "strom_argv": "broker",
    "Cluster": "cluster",
    "EmbeddedBroker": "embedded",
    "EmbeddedBrokerError": "embedded",
    "Rec": "records",
    "assert_acknowledged_read_back": "records",
    "assert_same_partitions": "records",
    "by_partition": "records",
    "check_acknowledged_read_back": "records",
    "ZooKeeperEnsemble": "zookeeper",
    "ZooKeeperProcess": "zookeeper",
}

__all__ = [
    "BrokerExitedError",
    "BrokerFactory",
    "BrokerProcess",
    "BrokerStartTimeoutError",
    "Cluster",
    "EmbeddedBroker",
    "EmbeddedBrokerError",
    "Rec",
    "ZooKeeperEnsemble",
    "ZooKeeperProcess",
    "assert_acknowledged_read_back",
    "assert_same_partitions",
    "by_partition",
    "check_acknowledged_read_back",
    "free_port",
    "strom_argv",
]


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later lookups find it without this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
