"""The seam between coordinators and the log: a PartitionWriter appends records.

Coordinators never import storage or replication (see shared/ARCHITECTURE.md).
The broker implements this protocol over its ReplicaManager; unit tests use an
in-memory list. ``append`` completes when the records are committed (with
replication: the partition's high watermark passed them) and returns the offset
of the last record written, or raises ``KafkaError`` (NOT_LEADER_OR_FOLLOWER when
leadership is lost meanwhile, REQUEST_TIMED_OUT, KAFKA_STORAGE_ERROR, ...).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from strom.coordinator.group.records import CoordinatorRecord


class PartitionWriter(Protocol):
    async def append(self, partition: int, records: Sequence[CoordinatorRecord]) -> int:
        """Append ``records`` to ``partition`` of the coordinator's internal topic (acks=all)
        and wait until they are committed."""
        ...
