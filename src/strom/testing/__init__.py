"""Shipped helpers for testing against real strom brokers: processes, records, checks."""

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
