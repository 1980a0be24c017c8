"""Synchronous wrappers: each runs its asyncio twin on a private event loop thread.

Part of the client's IO front (it owns a thread and an event loop).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from strom.client.admin_types import (
    AlterConfigOp,
    ClusterDescription,
    ConfigEntry,
    ConfigResource,
    CreatedTopic,
    ElectionType,
    LogDirDescription,
    NewTopic,
    OffsetAndTimestamp,
    PartitionReassignment,
    TopicDescription,
)
from strom.client.aio.admin import AIOAdmin
from strom.client.aio.reader import AIOPartitionReader
from strom.client.config import ConfigDict
from strom.client.fetcher import FetchedRecords
from strom.client.group_types import (
    ConsumerGroupLag,
    GroupDescription,
    GroupListing,
    OffsetAndMetadata,
)
from strom.client.metadata import BrokerMetadata
from strom.common.types import TopicPartition
from strom.protocol.errors import KafkaError

R = TypeVar("R")


class _LoopThread:
    """An event loop running in a daemon thread until :meth:`stop`."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def submit(self, coro: Coroutine[Any, Any, R]) -> concurrent.futures.Future[R]:
        """Schedule ``coro`` on the loop; returns a concurrent Future of its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, R]) -> R:
        """Run ``coro`` on the loop and block for its result (its exception raises here)."""
        return self.submit(coro).result()

    def stop(self) -> None:
        """Stop the loop, join its thread and close it; a no-op once closed."""
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


class _SyncBase:
    _loop: _LoopThread

    def __enter__(self: Any) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release what the wrapper holds; each subclass implements it."""
        raise NotImplementedError


class Admin(_SyncBase):
    """Blocking version of :class:`AIOAdmin`; same methods and results."""

    def __init__(self, config: ConfigDict | None = None) -> None:
        self._loop = _LoopThread("strom-admin")
        try:
            self._admin: AIOAdmin = self._loop.run(_make(AIOAdmin, config))
        except BaseException:
            self._loop.stop()
            raise

    def close(self) -> None:
        """Close the AIOAdmin (and its client) and stop the loop thread; idempotent."""
        if self._loop.loop.is_closed():
            return
        try:
            self._loop.run(self._admin.close())
        finally:
            self._loop.stop()

    def create_topics(
        self, new_topics: Iterable[NewTopic], *, validate_only: bool = False
    ) -> dict[str, CreatedTopic]:
        """CreateTopics; the created topics by name (blocking :meth:`AIOAdmin.create_topics`)."""
        return self._loop.run(self._admin.create_topics(new_topics, validate_only=validate_only))

    def delete_topics(self, names: Iterable[str]) -> None:
        """DeleteTopics (blocking :meth:`AIOAdmin.delete_topics`)."""
        self._loop.run(self._admin.delete_topics(names))

    def list_topics(self, *, include_internal: bool = False) -> list[str]:
        """Topic names in the cluster, sorted (blocking :meth:`AIOAdmin.list_topics`)."""
        return self._loop.run(self._admin.list_topics(include_internal=include_internal))

    def describe_topics(self, names: Iterable[str] | None = None) -> dict[str, TopicDescription]:
        """Topics from Metadata, None: all (blocking :meth:`AIOAdmin.describe_topics`)."""
        return self._loop.run(self._admin.describe_topics(names))

    def describe_topic_partitions(
        self, names: Iterable[str], *, partition_limit: int = 2000
    ) -> dict[str, TopicDescription]:
        """Topics with their partitions' ELR, from DescribeTopicPartitions
        (blocking :meth:`AIOAdmin.describe_topic_partitions`)."""
        return self._loop.run(
            self._admin.describe_topic_partitions(names, partition_limit=partition_limit)
        )

    def create_partitions(
        self, new_counts: Mapping[str, int], *, validate_only: bool = False
    ) -> None:
        """CreatePartitions: grow topics to ``new_counts``
        (blocking :meth:`AIOAdmin.create_partitions`)."""
        self._loop.run(self._admin.create_partitions(new_counts, validate_only=validate_only))

    def describe_configs(
        self, resources: Iterable[ConfigResource], *, include_synonyms: bool = False
    ) -> dict[ConfigResource, list[ConfigEntry]]:
        """DescribeConfigs; entries per resource (blocking :meth:`AIOAdmin.describe_configs`)."""
        return self._loop.run(
            self._admin.describe_configs(resources, include_synonyms=include_synonyms)
        )

    def incremental_alter_configs(
        self,
        changes: Mapping[ConfigResource, Iterable[AlterConfigOp]],
        *,
        validate_only: bool = False,
    ) -> None:
        """IncrementalAlterConfigs (blocking :meth:`AIOAdmin.incremental_alter_configs`)."""
        self._loop.run(self._admin.incremental_alter_configs(changes, validate_only=validate_only))

    def list_offsets(
        self, specs: Mapping[TopicPartition, int], *, isolation_level: int = 0
    ) -> dict[TopicPartition, OffsetAndTimestamp]:
        """ListOffsets by OffsetSpec or timestamp (blocking :meth:`AIOAdmin.list_offsets`)."""
        return self._loop.run(self._admin.list_offsets(specs, isolation_level=isolation_level))

    def delete_records(self, before: Mapping[TopicPartition, int]) -> dict[TopicPartition, int]:
        """DeleteRecords; the new low watermarks (blocking :meth:`AIOAdmin.delete_records`)."""
        return self._loop.run(self._admin.delete_records(before))

    def describe_cluster(self) -> ClusterDescription:
        """DescribeCluster: cluster id, controller and brokers
        (blocking :meth:`AIOAdmin.describe_cluster`)."""
        return self._loop.run(self._admin.describe_cluster())

    def describe_log_dirs(
        self, broker_ids: Iterable[int] | None = None
    ) -> dict[int, list[LogDirDescription]]:
        """DescribeLogDirs; log dirs by broker (blocking :meth:`AIOAdmin.describe_log_dirs`)."""
        return self._loop.run(self._admin.describe_log_dirs(broker_ids))

    def unregister_broker(self, broker_id: int) -> None:
        """UnregisterBroker, KRaft clusters only
        (blocking :meth:`AIOAdmin.unregister_broker`)."""
        self._loop.run(self._admin.unregister_broker(broker_id))

    # -- the controller: elections and reassignments --------------------------

    def elect_leaders(
        self,
        election_type: ElectionType | int,
        partitions: Iterable[TopicPartition] | None = None,
    ) -> dict[TopicPartition, KafkaError | None]:
        """ElectLeaders; each partition's error or None
        (blocking :meth:`AIOAdmin.elect_leaders`)."""
        return self._loop.run(self._admin.elect_leaders(election_type, partitions))

    def alter_partition_reassignments(
        self, reassignments: Mapping[TopicPartition, Sequence[int] | None]
    ) -> dict[TopicPartition, KafkaError | None]:
        """AlterPartitionReassignments (None cancels); each partition's error or None
        (blocking :meth:`AIOAdmin.alter_partition_reassignments`)."""
        return self._loop.run(self._admin.alter_partition_reassignments(reassignments))

    def list_partition_reassignments(
        self, partitions: Iterable[TopicPartition] | None = None
    ) -> dict[TopicPartition, PartitionReassignment]:
        """ListPartitionReassignments: the ongoing ones by partition
        (blocking :meth:`AIOAdmin.list_partition_reassignments`)."""
        return self._loop.run(self._admin.list_partition_reassignments(partitions))

    # -- consumer groups -----------------------------------------------------

    def find_coordinator(self, group: str) -> BrokerMetadata:
        """FindCoordinator for one group (blocking :meth:`AIOAdmin.find_coordinator`)."""
        return self._loop.run(self._admin.find_coordinator(group))

    def find_coordinators(self, groups: Iterable[str]) -> dict[str, BrokerMetadata]:
        """FindCoordinator; the coordinator of each group
        (blocking :meth:`AIOAdmin.find_coordinators`)."""
        return self._loop.run(self._admin.find_coordinators(groups))

    def list_groups(
        self, states: Iterable[str] | None = None, types: Iterable[str] | None = None
    ) -> list[GroupListing]:
        """ListGroups on every broker, optionally by state and type
        (blocking :meth:`AIOAdmin.list_groups`)."""
        return self._loop.run(self._admin.list_groups(states, types))

    def describe_groups(self, groups: Iterable[str]) -> dict[str, GroupDescription]:
        """DescribeGroups; descriptions by group (blocking :meth:`AIOAdmin.describe_groups`)."""
        return self._loop.run(self._admin.describe_groups(groups))

    def delete_groups(self, groups: Iterable[str]) -> dict[str, KafkaError | None]:
        """DeleteGroups; each group's error or None (blocking :meth:`AIOAdmin.delete_groups`)."""
        return self._loop.run(self._admin.delete_groups(groups))

    def list_group_offsets(
        self,
        group: str,
        partitions: Iterable[TopicPartition] | None = None,
        *,
        require_stable: bool = False,
    ) -> dict[TopicPartition, OffsetAndMetadata]:
        """OffsetFetch: committed offsets of one group
        (blocking :meth:`AIOAdmin.list_group_offsets`)."""
        return self._loop.run(
            self._admin.list_group_offsets(group, partitions, require_stable=require_stable)
        )

    def list_groups_offsets(
        self,
        groups: Mapping[str, Iterable[TopicPartition] | None],
        *,
        require_stable: bool = False,
    ) -> dict[str, dict[TopicPartition, OffsetAndMetadata]]:
        """OffsetFetch: committed offsets of several groups
        (blocking :meth:`AIOAdmin.list_groups_offsets`)."""
        return self._loop.run(
            self._admin.list_groups_offsets(groups, require_stable=require_stable)
        )

    def alter_group_offsets(
        self, group: str, offsets: Mapping[TopicPartition, OffsetAndMetadata | int]
    ) -> None:
        """OffsetCommit as an admin (the group must be empty)
        (blocking :meth:`AIOAdmin.alter_group_offsets`)."""
        self._loop.run(self._admin.alter_group_offsets(group, offsets))

    def delete_group_offsets(
        self, group: str, partitions: Iterable[TopicPartition]
    ) -> dict[TopicPartition, KafkaError | None]:
        """OffsetDelete; each partition's error or None
        (blocking :meth:`AIOAdmin.delete_group_offsets`)."""
        return self._loop.run(self._admin.delete_group_offsets(group, partitions))

    def log_end_offsets(
        self, partitions: Iterable[TopicPartition], *, isolation_level: int | None = None
    ) -> dict[TopicPartition, int]:
        """Log end offsets (high watermark or last stable offset)
        (blocking :meth:`AIOAdmin.log_end_offsets`)."""
        return self._loop.run(
            self._admin.log_end_offsets(partitions, isolation_level=isolation_level)
        )

    def consumer_group_lag(
        self, group: str, *, isolation_level: int | None = None
    ) -> ConsumerGroupLag:
        """Committed offset, log end offset and lag per partition
        (blocking :meth:`AIOAdmin.consumer_group_lag`)."""
        return self._loop.run(
            self._admin.consumer_group_lag(group, isolation_level=isolation_level)
        )


class PartitionReader(_SyncBase):
    """Blocking front of :class:`AIOPartitionReader`."""

    def __init__(self, config: ConfigDict | None = None) -> None:
        self._loop = _LoopThread("strom-reader")
        try:
            self._reader: AIOPartitionReader = self._loop.run(_make(AIOPartitionReader, config))
        except BaseException:
            self._loop.stop()
            raise

    def fetch(
        self, topic: str, partition: int, offset: int, *, max_wait_ms: int | None = None
    ) -> FetchedRecords:
        """Fetch one partition from ``offset``; a partition error raises
        (blocking :meth:`AIOPartitionReader.fetch`)."""
        return self._loop.run(self._reader.fetch(topic, partition, offset, max_wait_ms=max_wait_ms))

    def fetch_many(
        self, positions: Mapping[TopicPartition, int], *, max_wait_ms: int | None = None
    ) -> dict[TopicPartition, FetchedRecords]:
        """Fetch partitions from their offsets; partition errors are returned in
        ``error_code`` (blocking :meth:`AIOPartitionReader.fetch_many`)."""
        return self._loop.run(self._reader.fetch_many(positions, max_wait_ms=max_wait_ms))

    def close(self) -> None:
        """Close the AIOPartitionReader (and its client) and stop the loop thread;
        idempotent."""
        if self._loop.loop.is_closed():
            return
        try:
            self._loop.run(self._reader.close())
        finally:
            self._loop.stop()


async def _make(cls: Any, config: ConfigDict | None) -> Any:
    obj = cls(config)
    try:
        await obj.start()
    except BaseException:
        await obj.close()
        raise
    return obj
