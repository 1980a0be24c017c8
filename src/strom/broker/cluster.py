"""Metadata, DescribeCluster, DescribeLogDirs and AlterReplicaLogDirs."""

from __future__ import annotations

import shutil
from pathlib import Path

from strom.broker.authorized_ops import authorized_operations, cluster_authorized_operations
from strom.broker.broker import LISTENER_NAME, Broker
from strom.broker.handlers import handles
from strom.common.acl import ResourceType
from strom.common.names import INTERNAL_TOPICS, topic_name_problem
from strom.common.types import TopicPartition
from strom.metadata.image import NO_LEADER, PartitionInfo, TopicInfo
from strom.protocol.api_versions import ApiKey
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.frame import RequestHeader
from strom.protocol.generated.alter_replica_log_dirs import (
    AlterReplicaLogDirsRequest,
    AlterReplicaLogDirsResponse,
)
from strom.protocol.generated.describe_cluster import (
    DescribeClusterRequest,
    DescribeClusterResponse,
)
from strom.protocol.generated.describe_log_dirs import (
    DescribeLogDirsRequest,
    DescribeLogDirsResponse,
)
from strom.protocol.generated.metadata import MetadataRequest, MetadataResponse
from strom.protocol.wire import ZERO_UUID


def _listener(broker: Broker) -> str:
    return LISTENER_NAME.get() or broker.inter_broker_listener_name


def _partition_metadata(
    broker: Broker, p: PartitionInfo, listener: str, version: int
) -> MetadataResponse.MetadataResponsePartition:
    """Kafka's getPartitionMetadata: a leader that is not alive is LEADER_NOT_AVAILABLE;
    one without the client's listener is LISTENER_NOT_FOUND (v6+); v0 lists only
    replicas that are alive and answers REPLICA_NOT_AVAILABLE when some are not."""
    brokers = broker.image.brokers
    out = MetadataResponse.MetadataResponsePartition(
        error_code=0,
        partition_index=p.partition,
        leader_id=p.leader,
        leader_epoch=p.leader_epoch,
        replica_nodes=list(p.replicas),
        isr_nodes=list(p.isr),
        offline_replicas=list(p.offline_replicas),
    )
    leader = brokers.get(p.leader)
    if leader is None or leader.endpoint(listener) is None:
        out.leader_id = NO_LEADER
        out.error_code = (
            ErrorCode.LISTENER_NOT_FOUND
            if leader is not None and version >= 6
            else ErrorCode.LEADER_NOT_AVAILABLE
        )
    elif version == 0:
        alive = [r for r in p.replicas if r in brokers]
        if len(alive) < len(p.replicas):
            out.replica_nodes = alive
            out.isr_nodes = [r for r in p.isr if r in brokers]
            out.error_code = ErrorCode.REPLICA_NOT_AVAILABLE
    return out


def _topic_metadata(
    broker: Broker, topic: TopicInfo, listener: str, version: int
) -> MetadataResponse.MetadataResponseTopic:
    return MetadataResponse.MetadataResponseTopic(
        error_code=0,
        name=topic.name,
        topic_id=topic.topic_id,
        is_internal=topic.internal,
        partitions=[_partition_metadata(broker, p, listener, version) for p in topic.partitions],
    )


async def _named_topic(
    broker: Broker, name: str, auto_create: bool, listener: str, version: int
) -> MetadataResponse.MetadataResponseTopic:
    topic = broker.topic(name)
    if topic is not None:
        return _topic_metadata(broker, topic, listener, version)
    problem = topic_name_problem(name)
    if problem:
        return MetadataResponse.MetadataResponseTopic(
            error_code=ErrorCode.INVALID_TOPIC_EXCEPTION, name=name, is_internal=False
        )
    if auto_create and name not in INTERNAL_TOPICS:
        try:
            created = await broker.topics.maybe_auto_create(name)
        except KafkaError as e:
            if e.code != ErrorCode.TOPIC_ALREADY_EXISTS:
                return MetadataResponse.MetadataResponseTopic(error_code=e.code, name=name)
            created = None
        if created is not None:
            return _topic_metadata(broker, created, listener, version)
        if broker.config.get_bool("auto.create.topics.enable"):
            # created, leaders not known yet: Kafka's answer while a topic is created
            return MetadataResponse.MetadataResponseTopic(
                error_code=ErrorCode.LEADER_NOT_AVAILABLE, name=name, is_internal=False
            )
    return MetadataResponse.MetadataResponseTopic(
        error_code=ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
        name=name,
        is_internal=name in INTERNAL_TOPICS,
    )


def _brokers(broker: Broker, listener: str) -> list[MetadataResponse.MetadataResponseBroker]:
    """The live brokers that have the client's listener, with its endpoint."""
    out = []
    for info in sorted(broker.image.brokers.values(), key=lambda b: b.node_id):
        ep = info.endpoint(listener)
        if ep is not None:
            out.append(
                MetadataResponse.MetadataResponseBroker(
                    node_id=info.node_id, host=ep.host, port=ep.port, rack=info.rack
                )
            )
    return out


@handles(ApiKey.METADATA)
async def handle_metadata(
    broker: Broker, header: RequestHeader, req: MetadataRequest
) -> MetadataResponse:
    version = header.api_version
    listener = _listener(broker)
    auto_create = req.allow_auto_topic_creation if version >= 4 else True
    topics: list[MetadataResponse.MetadataResponseTopic] = []
    if req.topics is None or (version == 0 and not req.topics):
        topics = [
            _topic_metadata(broker, t, listener, version) for t in broker.image.topics.values()
        ]
    else:
        for rt in req.topics:
            if rt.name is None:
                info = broker.image.topic_by_id(rt.topic_id)
                if info is None:
                    topics.append(
                        MetadataResponse.MetadataResponseTopic(
                            error_code=ErrorCode.UNKNOWN_TOPIC_ID, name=None, topic_id=rt.topic_id
                        )
                    )
                else:
                    topics.append(_topic_metadata(broker, info, listener, version))
            else:
                topics.append(await _named_topic(broker, rt.name, auto_create, listener, version))
    if version >= 8 and req.include_topic_authorized_operations:
        for t in topics:  # unknown topics too, as Kafka (not those it refuses)
            if t.name:
                t.topic_authorized_operations = authorized_operations(
                    broker, ResourceType.TOPIC, t.name
                )
    resp = MetadataResponse(
        throttle_time_ms=0,
        brokers=_brokers(broker, listener),
        cluster_id=broker.image.cluster_id,
        controller_id=broker.image.controller_id,
        topics=topics,
    )
    if 8 <= version <= 10 and req.include_cluster_authorized_operations:
        resp.cluster_authorized_operations = cluster_authorized_operations(broker)
    return resp


@handles(ApiKey.DESCRIBE_CLUSTER)
async def handle_describe_cluster(
    broker: Broker, header: RequestHeader, req: DescribeClusterRequest
) -> DescribeClusterResponse:
    if req.endpoint_type not in (1,):
        return DescribeClusterResponse(
            error_code=ErrorCode.UNSUPPORTED_ENDPOINT_TYPE,
            error_message=f"endpoint type {req.endpoint_type} is not served by this broker",
            endpoint_type=req.endpoint_type,
            cluster_id=broker.image.cluster_id,
        )
    listener = _listener(broker)
    ops = (
        cluster_authorized_operations(broker)
        if req.include_cluster_authorized_operations
        else -(2**31)
    )
    return DescribeClusterResponse(
        cluster_authorized_operations=ops,
        error_code=0,
        error_message=None,
        endpoint_type=1,
        cluster_id=broker.image.cluster_id,
        controller_id=broker.image.controller_id,
        brokers=[
            DescribeClusterResponse.DescribeClusterBroker(
                broker_id=b.node_id, host=b.host, port=b.port, rack=b.rack
            )
            for b in _brokers(broker, listener)
        ],
    )


@handles(ApiKey.DESCRIBE_LOG_DIRS)
async def handle_describe_log_dirs(
    broker: Broker, header: RequestHeader, req: DescribeLogDirsRequest
) -> DescribeLogDirsResponse:
    wanted: dict[str, set[int]] | None = None
    if req.topics is not None:
        wanted = {t.topic: set(t.partitions) for t in req.topics}
    results = []
    for d in broker.log_dirs:
        by_topic: dict[str, list[DescribeLogDirsResponse.DescribeLogDirsPartition]] = {}
        offline = d in broker.logs.offline_dirs
        for tp, part in sorted(broker.replicas.partitions.items()):
            if wanted is not None and tp.partition not in wanted.get(tp.topic, set()):
                continue
            if offline or broker.logs.dir_of(tp) != d:
                continue
            by_topic.setdefault(tp.topic, []).append(
                DescribeLogDirsResponse.DescribeLogDirsPartition(
                    partition_index=tp.partition,
                    partition_size=part.log.size_in_bytes,
                    offset_lag=0,
                    is_future_key=False,
                )
            )
        try:
            usage = shutil.disk_usage(d)
            total, usable = usage.total, usage.free
        except OSError:
            total, usable = -1, -1
        results.append(
            DescribeLogDirsResponse.DescribeLogDirsResult(
                error_code=ErrorCode.KAFKA_STORAGE_ERROR if offline else 0,
                log_dir=str(d.resolve()),
                topics=[
                    DescribeLogDirsResponse.DescribeLogDirsTopic(name=n, partitions=ps)
                    for n, ps in by_topic.items()
                ],
                total_bytes=total,
                usable_bytes=usable,
            )
        )
    return DescribeLogDirsResponse(throttle_time_ms=0, error_code=0, results=results)


def _move_replica(broker: Broker, tp: TopicPartition, path: str) -> int:
    """Kafka's alterReplicaLogDirs for one partition: the directory must be a
    configured log dir (LOG_DIR_NOT_FOUND) that is online (KAFKA_STORAGE_ERROR); a
    partition without a local replica is REPLICA_NOT_AVAILABLE. The log moves at
    once (Kafka copies it in the background through a future replica)."""
    dest = next((d for d in broker.log_dirs if d.resolve() == Path(path).resolve()), None)
    try:
        if dest is None or not Path(path).is_absolute():
            raise KafkaError(
                ErrorCode.LOG_DIR_NOT_FOUND, f"Log dir {path} is not found in the config."
            )
        if dest in broker.logs.offline_dirs:
            raise KafkaError(ErrorCode.KAFKA_STORAGE_ERROR, f"Log directory {path} is offline")
        if tp not in broker.replicas.partitions:
            raise KafkaError(ErrorCode.REPLICA_NOT_AVAILABLE, f"{tp} has no replica here")
        broker.replicas.move_replica(tp, dest, broker.now_ms())
    except KafkaError as e:
        code = (
            ErrorCode.REPLICA_NOT_AVAILABLE
            if e.code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
            else e.code
        )
        return code
    return ErrorCode.NONE


@handles(ApiKey.ALTER_REPLICA_LOG_DIRS)
async def handle_alter_replica_log_dirs(
    broker: Broker, header: RequestHeader, req: AlterReplicaLogDirsRequest
) -> AlterReplicaLogDirsResponse:
    results: dict[str, list[AlterReplicaLogDirsResponse.AlterReplicaLogDirPartitionResult]] = {}
    for d in req.dirs:
        for t in d.topics:
            for p in t.partitions:
                code = _move_replica(broker, TopicPartition(t.name, p), d.path)
                results.setdefault(t.name, []).append(
                    AlterReplicaLogDirsResponse.AlterReplicaLogDirPartitionResult(p, code)
                )
    return AlterReplicaLogDirsResponse(
        throttle_time_ms=0,
        results=[
            AlterReplicaLogDirsResponse.AlterReplicaLogDirTopicResult(name, parts)
            for name, parts in results.items()
        ],
    )


__all__ = ["ZERO_UUID"]
