"""Authorized operations as Kafka reports them (AuthHelper.authorizedOperations): the
bit field of the operations the request's principal may do on a resource; without an
authorizer, every operation the resource type supports."""

from __future__ import annotations

from typing import TYPE_CHECKING

from strom.broker.session import SESSION
from strom.common.acl import (
    CLUSTER_NAME,
    SUPPORTED_OPERATIONS,
    AclOperation,
    ResourceType,
    operations_bitfield,
)

if TYPE_CHECKING:
    from strom.broker.broker import Broker

_ALL = {rt: operations_bitfield(ops) for rt, ops in SUPPORTED_OPERATIONS.items()}


def authorized_operations(broker: Broker, resource_type: ResourceType, name: str) -> int:
    if broker.authorizer is None:
        return _ALL[resource_type]
    return broker.authorizer.authorized_operations(SESSION.get(), resource_type, name)


def cluster_authorized_operations(broker: Broker) -> int:
    """DescribeCluster's and Metadata's: 0 without DESCRIBE on the cluster."""
    authorizer = broker.authorizer
    if authorizer is not None and not authorizer.authorize(
        SESSION.get(), AclOperation.DESCRIBE, ResourceType.CLUSTER, CLUSTER_NAME
    ):
        return 0
    return authorized_operations(broker, ResourceType.CLUSTER, CLUSTER_NAME)
