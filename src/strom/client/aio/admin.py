"""AIOAdmin: topics, partitions, configs, offsets, records, cluster, log dirs, groups,
elections and reassignments.

Every method raises :class:`KafkaError` with the broker's code when any item
fails; the message names the item.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping

from strom.client.admin_types import (
    AlterConfigOp,
    ClusterDescription,
    ConfigEntry,
    ConfigResource,
    ConfigResourceType,
    ConfigSource,
    ConfigSynonym,
    CreatedTopic,
    LogDirDescription,
    NewTopic,
    OffsetAndTimestamp,
    ReplicaInfo,
    TopicDescription,
)
from strom.client.aio.client import AIOClient
from strom.client.aio.cluster_admin import ClusterAdminMixin, partition_info
from strom.client.aio.controller_admin import ControllerAdminMixin
from strom.client.aio.group_admin import GroupAdminMixin
from strom.client.aio.security_admin import SecurityAdminMixin
from strom.client.aio.txn_admin import TransactionAdminMixin
from strom.client.config import ClientConfig, ConfigDict
from strom.client.errors import raise_for
from strom.client.metadata import BrokerMetadata
from strom.common.types import TopicPartition
from strom.protocol.api_versions import ApiKey
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.generated.create_partitions import CreatePartitionsRequest
from strom.protocol.generated.create_topics import CreateTopicsRequest, CreateTopicsResponse
from strom.protocol.generated.delete_records import DeleteRecordsRequest
from strom.protocol.generated.delete_topics import DeleteTopicsRequest
from strom.protocol.generated.describe_cluster import DescribeClusterRequest
from strom.protocol.generated.describe_configs import DescribeConfigsRequest
from strom.protocol.generated.describe_log_dirs import DescribeLogDirsRequest
from strom.protocol.generated.incremental_alter_configs import IncrementalAlterConfigsRequest
from strom.protocol.generated.list_offsets import ListOffsetsRequest

_TOPIC_REQ = CreateTopicsRequest.CreatableTopic
_LO = ListOffsetsRequest


class AIOAdmin(
    GroupAdminMixin,
    TransactionAdminMixin,
    ClusterAdminMixin,
    ControllerAdminMixin,
    SecurityAdminMixin,
):
    """Admin operations over an :class:`AIOClient` (created from a config dict);
    consumer-group, transaction, cluster, controller (elections, reassignments) and
    security (ACLs, SCRAM credentials) operations come from the mixins."""

    def __init__(self, config: ConfigDict | ClientConfig | AIOClient | None = None) -> None:
        """From a config, or sharing an AIOClient (which close() then leaves open)."""
        self._owns_client = not isinstance(config, AIOClient)
        self.client = config if isinstance(config, AIOClient) else AIOClient(config)
        self._timeout_ms = self.client.config.request_timeout_ms
        self._coordinators: dict[str, BrokerMetadata] = {}

    async def __aenter__(self) -> AIOAdmin:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Bootstrap the client: connect to a bootstrap server and load the broker list."""
        await self.client.bootstrap()

    async def close(self) -> None:
        """Close the client's connections, unless the client was passed in (shared)."""
        if self._owns_client:
            await self.client.close()

    # -- topics --------------------------------------------------------------

    async def create_topics(
        self, new_topics: Iterable[NewTopic], *, validate_only: bool = False
    ) -> dict[str, CreatedTopic]:
        """CreateTopics on the controller; returns the created topics by name.

        ``validate_only`` checks without creating. The first topic error raises, e.g.
        TOPIC_ALREADY_EXISTS, INVALID_PARTITIONS or INVALID_REPLICATION_FACTOR."""
        topics = [
            _TOPIC_REQ(
                name=t.name,
                num_partitions=-1 if t.assignments else t.num_partitions,
                replication_factor=-1 if t.assignments else t.replication_factor,
                assignments=[
                    CreateTopicsRequest.CreatableReplicaAssignment(p, list(ids))
                    for p, ids in (t.assignments or {}).items()
                ],
                configs=[
                    CreateTopicsRequest.CreatableTopicConfig(k, v) for k, v in t.configs.items()
                ],
            )
            for t in new_topics
        ]
        request = CreateTopicsRequest(topics, self._timeout_ms, validate_only)
        conn = await self.client.controller_connection()
        response: CreateTopicsResponse = await conn.send(request)
        out: dict[str, CreatedTopic] = {}
        for r in response.topics:
            raise_for(r.error_code, f"topic {r.name!r}", r.error_message)
            out[r.name] = CreatedTopic(r.name, r.topic_id, r.num_partitions, r.replication_factor)
        return out

    async def delete_topics(self, names: Iterable[str]) -> None:
        """DeleteTopics on the controller; the first topic error raises
        (e.g. UNKNOWN_TOPIC_OR_PARTITION)."""
        names = list(names)
        request = DeleteTopicsRequest(
            topics=[DeleteTopicsRequest.DeleteTopicState(name=n) for n in names],
            topic_names=names,
            timeout_ms=self._timeout_ms,
        )
        conn = await self.client.controller_connection()
        response = await conn.send(request)
        for r in response.responses:
            raise_for(r.error_code, f"topic {r.name!r}", r.error_message)

    async def list_topics(self, *, include_internal: bool = False) -> list[str]:
        """Topic names in the cluster, sorted (internal ones only with ``include_internal``)."""
        await self.client.refresh_metadata(None)
        topics = self.client.cluster.topics.values()
        return sorted(t.name for t in topics if include_internal or not t.is_internal)

    async def describe_topics(
        self, names: Iterable[str] | None = None
    ) -> dict[str, TopicDescription]:
        """Describe ``names`` (None: every topic)."""
        wanted = None if names is None else list(names)
        response = await self.client.refresh_metadata(wanted)
        out: dict[str, TopicDescription] = {}
        for t in response.topics:
            if t.name is None:
                continue
            raise_for(t.error_code, f"topic {t.name!r}")
            parts = [
                partition_info(p) for p in sorted(t.partitions, key=lambda p: p.partition_index)
            ]
            out[t.name] = TopicDescription(t.name, t.topic_id, t.is_internal, parts)
        return out

    async def create_partitions(
        self, new_counts: Mapping[str, int], *, validate_only: bool = False
    ) -> None:
        """CreatePartitions on the controller: grow each topic to ``new_counts[topic]``
        partitions; the first topic error raises (e.g. INVALID_PARTITIONS)."""
        request = CreatePartitionsRequest(
            topics=[
                CreatePartitionsRequest.CreatePartitionsTopic(name, count, None)
                for name, count in new_counts.items()
            ],
            timeout_ms=self._timeout_ms,
            validate_only=validate_only,
        )
        conn = await self.client.controller_connection()
        response = await conn.send(request)
        for r in response.results:
            raise_for(r.error_code, f"topic {r.name!r}", r.error_message)

    # -- configs -------------------------------------------------------------

    async def describe_configs(
        self, resources: Iterable[ConfigResource], *, include_synonyms: bool = False
    ) -> dict[ConfigResource, list[ConfigEntry]]:
        """DescribeConfigs for these resources; entries per resource, with synonyms when
        ``include_synonyms``. A broker's configs are asked of that broker (as Kafka's
        admin does), the rest of any broker. The first resource error raises."""
        out: dict[ConfigResource, list[ConfigEntry]] = {}
        for node, group in _by_config_node(resources).items():
            request = DescribeConfigsRequest(
                resources=[
                    DescribeConfigsRequest.DescribeConfigsResource(int(r.type), r.name, None)
                    for r in group
                ],
                include_synonyms=include_synonyms,
            )
            response = await self.client.send(node, request)
            for r in response.results:
                resource = ConfigResource(ConfigResourceType(r.resource_type), r.resource_name)
                raise_for(
                    r.error_code,
                    f"{resource.type.name.lower()} {r.resource_name!r}",
                    r.error_message,
                )
                out[resource] = [
                    ConfigEntry(
                        c.name,
                        c.value,
                        _source(c.config_source),
                        c.is_default or c.config_source == ConfigSource.DEFAULT_CONFIG,
                        c.read_only,
                        c.is_sensitive,
                        tuple(
                            ConfigSynonym(s.name, s.value, _source(s.source)) for s in c.synonyms
                        ),
                    )
                    for c in r.configs
                ]
        return out

    async def incremental_alter_configs(
        self,
        changes: Mapping[ConfigResource, Iterable[AlterConfigOp]],
        *,
        validate_only: bool = False,
    ) -> None:
        """IncrementalAlterConfigs: apply the ops per resource (``validate_only``: check
        only); a broker's configs go to that broker. The first resource error raises
        (e.g. INVALID_CONFIG)."""
        req = IncrementalAlterConfigsRequest
        for node, group in _by_config_node(changes).items():
            request = req(
                resources=[
                    req.AlterConfigsResource(
                        int(res.type),
                        res.name,
                        [req.AlterableConfig(op.name, int(op.op), op.value) for op in changes[res]],
                    )
                    for res in group
                ],
                validate_only=validate_only,
            )
            response = await self.client.send(node, request)
            for r in response.responses:
                raise_for(r.error_code, f"resource {r.resource_name!r}", r.error_message)

    # -- offsets and records -------------------------------------------------

    async def _by_leader(self, tps: Iterable[TopicPartition]) -> dict[int, list[TopicPartition]]:
        groups: dict[int, list[TopicPartition]] = defaultdict(list)
        for tp in tps:
            groups[await self.client.leader_for(tp)].append(tp)
        return groups

    async def list_offsets(
        self, specs: Mapping[TopicPartition, int], *, isolation_level: int = 0
    ) -> dict[TopicPartition, OffsetAndTimestamp]:
        """Offsets for OffsetSpec values (-1 latest, -2 earliest, -3 max timestamp)
        or timestamps in ms (the first offset whose timestamp is >= it; -1 if none)."""
        out: dict[TopicPartition, OffsetAndTimestamp] = {}
        for leader, tps in (await self._by_leader(specs)).items():
            by_topic: dict[str, list[_LO.ListOffsetsPartition]] = defaultdict(list)
            for tp in tps:
                by_topic[tp.topic].append(
                    _LO.ListOffsetsPartition(partition_index=tp.partition, timestamp=specs[tp])
                )
            request = _LO(
                replica_id=-1,
                isolation_level=isolation_level,
                topics=[_LO.ListOffsetsTopic(name, parts) for name, parts in by_topic.items()],
                timeout_ms=self._timeout_ms,
            )
            conn = await self.client.node_connection(leader)
            if any(specs[tp] == -3 for tp in tps) and conn.versions.get(ApiKey.LIST_OFFSETS, 0) < 7:
                raise KafkaError(
                    ErrorCode.UNSUPPORTED_VERSION, "max timestamp needs ListOffsets v7"
                )
            response = await conn.send(request)
            for t in response.topics:
                for p in t.partitions:
                    tp = TopicPartition(t.name, p.partition_index)
                    raise_for(p.error_code, f"partition {tp}")
                    out[tp] = OffsetAndTimestamp(p.offset, p.timestamp, p.leader_epoch)
        return out

    async def delete_records(
        self, before: Mapping[TopicPartition, int]
    ) -> dict[TopicPartition, int]:
        """Delete records before the given offsets (-1: the high watermark);
        returns the new low watermarks."""
        out: dict[TopicPartition, int] = {}
        req = DeleteRecordsRequest
        for leader, tps in (await self._by_leader(before)).items():
            by_topic: dict[str, list[DeleteRecordsRequest.DeleteRecordsPartition]] = defaultdict(
                list
            )
            for tp in tps:
                by_topic[tp.topic].append(req.DeleteRecordsPartition(tp.partition, before[tp]))
            request = req(
                topics=[req.DeleteRecordsTopic(name, parts) for name, parts in by_topic.items()],
                timeout_ms=self._timeout_ms,
            )
            response = await self.client.send(leader, request)
            for t in response.topics:
                for p in t.partitions:
                    tp = TopicPartition(t.name, p.partition_index)
                    raise_for(p.error_code, f"partition {tp}")
                    out[tp] = p.low_watermark
        return out

    # -- cluster -------------------------------------------------------------

    async def describe_cluster(self) -> ClusterDescription:
        """DescribeCluster: cluster id, controller and brokers (from Metadata when the
        broker does not support DescribeCluster)."""
        conn = await self.client.any_connection()
        if ApiKey.DESCRIBE_CLUSTER not in conn.versions:
            await self.client.refresh_metadata([])
            c = self.client.cluster
            return ClusterDescription(c.cluster_id, c.controller_id, list(c.brokers.values()))
        response = await conn.send(DescribeClusterRequest())
        raise_for(response.error_code, "describe cluster", response.error_message)
        brokers = [BrokerMetadata(b.broker_id, b.host, b.port, b.rack) for b in response.brokers]
        return ClusterDescription(response.cluster_id, response.controller_id, brokers)

    async def describe_log_dirs(
        self, broker_ids: Iterable[int] | None = None
    ) -> dict[int, list[LogDirDescription]]:
        """DescribeLogDirs on each broker (None: every known broker); log dirs by broker.

        A broker-level error raises; a log dir's own error stays in its ``error_code``."""
        if broker_ids is None:
            await self.client.refresh_metadata([])
            broker_ids = sorted(self.client.cluster.brokers)
        out: dict[int, list[LogDirDescription]] = {}
        for node_id in broker_ids:
            response = await self.client.send(node_id, DescribeLogDirsRequest(topics=None))
            raise_for(response.error_code, f"broker {node_id}")
            out[node_id] = [
                LogDirDescription(
                    r.log_dir,
                    r.error_code,
                    {
                        TopicPartition(t.name, p.partition_index): ReplicaInfo(
                            p.partition_size, p.offset_lag, p.is_future_key
                        )
                        for t in r.topics
                        for p in t.partitions
                    },
                    r.total_bytes,
                    r.usable_bytes,
                )
                for r in response.results
            ]
        return out


def _source(value: int) -> ConfigSource:
    try:
        return ConfigSource(value)
    except ValueError:
        return ConfigSource.UNKNOWN


def _by_config_node(resources: Iterable[ConfigResource]) -> dict[int | None, list[ConfigResource]]:
    """Resources by the broker to ask: a broker (or broker logger) resource named by a
    node id goes to that node; everything else to any broker (None)."""
    out: dict[int | None, list[ConfigResource]] = defaultdict(list)
    for r in resources:
        named = r.type in (ConfigResourceType.BROKER, ConfigResourceType.BROKER_LOGGER)
        out[int(r.name) if named and r.name.isdecimal() else None].append(r)
    return out
