"""API version negotiation (sans-IO).

The client knows a range per API; after ApiVersions it uses, per API,
``min(broker max, our max)`` provided that is not below either minimum.
Fetch stops at v12: v13 and later address topics by id only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from strom.net import versions as _net
from strom.net.versions import api_name, version_for
from strom.protocol.api_versions import ApiKey

# API keys that strom's broker does not implement (no ApiKey member), asked by the admin.
DESCRIBE_CLIENT_QUOTAS = 48
ALTER_CLIENT_QUOTAS = 49
DESCRIBE_USER_SCRAM_CREDENTIALS = 50
UNREGISTER_BROKER = 64  # KRaft only: ZooKeeper clusters (strom's) answer without it

# api key -> (min, max) versions this client can speak.
CLIENT_API_VERSIONS: dict[int, tuple[int, int]] = {
    ApiKey.PRODUCE: (3, 11),
    ApiKey.FETCH: (4, 12),
    ApiKey.LIST_OFFSETS: (1, 10),
    # Groups. OffsetFetch v0 reads ZooKeeper-stored offsets; FindCoordinator v5+
    # adds transaction/share keys this client never asks for.
    ApiKey.OFFSET_COMMIT: (2, 9),
    ApiKey.OFFSET_FETCH: (1, 9),
    ApiKey.FIND_COORDINATOR: (0, 4),
    ApiKey.JOIN_GROUP: (0, 9),
    ApiKey.HEARTBEAT: (0, 4),
    ApiKey.LEAVE_GROUP: (0, 5),
    ApiKey.SYNC_GROUP: (0, 5),
    ApiKey.DESCRIBE_GROUPS: (0, 5),
    ApiKey.LIST_GROUPS: (0, 5),
    ApiKey.DELETE_GROUPS: (0, 2),
    ApiKey.OFFSET_DELETE: (0, 0),
    # KIP-848 consumer groups: v1 of the heartbeat has client-made member ids and regexes
    ApiKey.CONSUMER_GROUP_HEARTBEAT: (1, 1),
    ApiKey.CONSUMER_GROUP_DESCRIBE: (0, 1),
    ApiKey.METADATA: (1, 12),
    ApiKey.API_VERSIONS: (0, 3),
    ApiKey.CREATE_TOPICS: (2, 7),
    ApiKey.DELETE_TOPICS: (1, 6),
    ApiKey.DELETE_RECORDS: (0, 2),
    ApiKey.DESCRIBE_CONFIGS: (1, 4),
    ApiKey.ALTER_CONFIGS: (0, 2),
    ApiKey.DESCRIBE_LOG_DIRS: (1, 4),
    ApiKey.CREATE_PARTITIONS: (0, 3),
    ApiKey.INCREMENTAL_ALTER_CONFIGS: (0, 1),
    ApiKey.DESCRIBE_CLUSTER: (0, 1),
    # The controller's operations: elections and partition reassignments.
    ApiKey.ELECT_LEADERS: (0, 2),
    ApiKey.ALTER_PARTITION_REASSIGNMENTS: (0, 0),
    ApiKey.LIST_PARTITION_REASSIGNMENTS: (0, 0),
    # Idempotent and transactional producers. AddPartitionsToTxn v4+ is broker-only.
    ApiKey.INIT_PRODUCER_ID: (0, 4),
    ApiKey.ADD_PARTITIONS_TO_TXN: (0, 3),
    ApiKey.ADD_OFFSETS_TO_TXN: (0, 3),
    ApiKey.END_TXN: (0, 3),
    ApiKey.TXN_OFFSET_COMMIT: (0, 3),
    # Admin: partitions with ELR, transactions, client quotas, SCRAM users.
    ApiKey.DESCRIBE_TOPIC_PARTITIONS: (0, 0),
    ApiKey.LIST_TRANSACTIONS: (0, 1),
    ApiKey.DESCRIBE_TRANSACTIONS: (0, 0),
    ApiKey.DESCRIBE_PRODUCERS: (0, 0),
    ApiKey.WRITE_TXN_MARKERS: (0, 1),
    DESCRIBE_CLIENT_QUOTAS: (0, 1),
    ALTER_CLIENT_QUOTAS: (0, 1),
    DESCRIBE_USER_SCRAM_CREDENTIALS: (0, 0),
    UNREGISTER_BROKER: (0, 0),
}

API_VERSIONS_MAX = CLIENT_API_VERSIONS[ApiKey.API_VERSIONS][1]


__all__ = ["API_VERSIONS_MAX", "CLIENT_API_VERSIONS", "api_name", "negotiate", "version_for"]


def negotiate(
    broker: Iterable[tuple[int, int, int]],
    ours: Mapping[int, tuple[int, int]] = CLIENT_API_VERSIONS,
) -> dict[int, int]:
    """(api_key, broker min, broker max) triples -> api_key -> version to use (the
    client's table by default). APIs whose ranges do not overlap are left out."""
    return _net.negotiate(broker, ours)
