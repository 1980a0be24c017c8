"""CreateTopics, DeleteTopics and CreatePartitions."""

from __future__ import annotations

import logging

from strom.broker.broker import Broker
from strom.broker.handlers import handles
from strom.broker.topic_admin import internal_topic_problem
from strom.common.config import format_value
from strom.protocol.api_versions import ApiKey
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.frame import RequestHeader
from strom.protocol.generated.create_partitions import (
    CreatePartitionsRequest,
    CreatePartitionsResponse,
)
from strom.protocol.generated.create_topics import CreateTopicsRequest, CreateTopicsResponse
from strom.protocol.generated.delete_topics import DeleteTopicsRequest, DeleteTopicsResponse

log = logging.getLogger(__name__)
TopicResult = CreateTopicsResponse.CreatableTopicResult


def _wait_s(req: CreateTopicsRequest | DeleteTopicsRequest | CreatePartitionsRequest) -> float:
    """How long to wait for the result: the request's timeout_ms (0 or less: no wait)."""
    return max(req.timeout_ms, 0) / 1000


async def _create_one(
    broker: Broker,
    t: CreateTopicsRequest.CreatableTopic,
    validate_only: bool,
    version: int,
    wait_s: float,
) -> TopicResult:
    res = TopicResult(name=t.name, error_code=0, error_message=None)
    assignments = None
    if t.assignments:
        if t.num_partitions != -1 or t.replication_factor != -1:
            res.error_code = ErrorCode.INVALID_REQUEST
            res.error_message = (
                "Both numPartitions or replicationFactor and replicasAssignments were set. "
                "Both cannot be used at the same time."
            )
            return res
        ordered = sorted(t.assignments, key=lambda a: a.partition_index)
        if [a.partition_index for a in ordered] != list(range(len(ordered))):
            res.error_code = ErrorCode.INVALID_REPLICA_ASSIGNMENT
            res.error_message = "Partitions should be a consecutive 0-based integer sequence"
            return res
        assignments = [tuple(a.broker_ids) for a in ordered]
    configs = {c.name: c.value for c in t.configs}
    try:
        if validate_only:
            assignment, _ = broker.topics.check_new_topic(
                t.name, t.num_partitions, t.replication_factor, assignments, configs
            )
            num, rf = len(assignment), len(assignment[0])
            overrides = {k: v for k, v in configs.items() if v is not None}
            topic_id = None
        else:
            topic = await broker.topics.create(
                t.name, t.num_partitions, t.replication_factor, assignments, configs, wait_s=wait_s
            )
            num, rf = len(topic.partitions), topic.replication_factor
            overrides = dict(topic.configs)
            topic_id = topic.topic_id
    except KafkaError as e:
        res.error_code = e.code
        res.error_message = e.message
        res.configs = None if version >= 5 else []
        return res
    res.num_partitions, res.replication_factor = num, rf
    if topic_id is not None:
        res.topic_id = topic_id
    resolved = broker.config.resolve_topic(overrides)
    res.configs = [
        CreateTopicsResponse.CreatableTopicConfigs(
            name=r.name,
            value=format_value(r.value),
            read_only=False,
            config_source=r.source,
            is_sensitive=False,
        )
        for r in resolved.values()
    ]
    return res


@handles(ApiKey.CREATE_TOPICS)
async def handle_create_topics(
    broker: Broker, header: RequestHeader, req: CreateTopicsRequest
) -> CreateTopicsResponse:
    names = [t.name for t in req.topics]
    results = []
    for t in req.topics:
        if names.count(t.name) > 1:
            results.append(
                TopicResult(
                    name=t.name,
                    error_code=ErrorCode.INVALID_REQUEST,
                    error_message="Create topics request from client contains a "
                    "duplicate topic with name " + t.name,
                    configs=None,
                )
            )
            continue
        results.append(
            await _create_one(broker, t, req.validate_only, header.api_version, _wait_s(req))
        )
    return CreateTopicsResponse(throttle_time_ms=0, topics=results)


@handles(ApiKey.DELETE_TOPICS)
async def handle_delete_topics(
    broker: Broker, header: RequestHeader, req: DeleteTopicsRequest
) -> DeleteTopicsResponse:
    wanted: list[tuple[str | None, bytes]] = (
        [(t.name, t.topic_id) for t in req.topics]
        if header.api_version >= 6
        else [(n, b"\x00" * 16) for n in req.topic_names]
    )
    out = []
    for name, topic_id in wanted:
        res = DeleteTopicsResponse.DeletableTopicResult(
            name=name, topic_id=topic_id, error_message=None
        )
        topic = broker.topic(name) if name is not None else broker.image.topic_by_id(topic_id)
        if topic is None:
            res.error_code = (
                ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                if name is not None
                else ErrorCode.UNKNOWN_TOPIC_ID
            )
        elif not broker.config.get_bool("delete.topic.enable"):
            res.error_code = ErrorCode.TOPIC_DELETION_DISABLED
            res.name, res.topic_id = topic.name, topic.topic_id
        else:
            res.name, res.topic_id = topic.name, topic.topic_id
            try:
                await broker.topics.delete(topic.name, _wait_s(req))
            except KafkaError as e:
                res.error_code, res.error_message = e.code, e.message
            except OSError as e:
                log.error("deleting %s: %s", topic.name, e)
                res.error_code = ErrorCode.KAFKA_STORAGE_ERROR
        out.append(res)
    return DeleteTopicsResponse(throttle_time_ms=0, responses=out)


async def _create_partitions(
    broker: Broker,
    t: CreatePartitionsRequest.CreatePartitionsTopic,
    validate_only: bool,
    wait_s: float,
) -> None:
    topic = broker.topic(t.name)
    if topic is None:
        raise KafkaError(
            ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"The topic '{t.name}' does not exist."
        )
    current = len(topic.partitions)
    if t.count < current:
        raise KafkaError(
            ErrorCode.INVALID_PARTITIONS,
            f"Topic currently has {current} partitions, which is higher than the requested "
            f"{t.count}.",
        )
    if t.count == current:
        raise KafkaError(ErrorCode.INVALID_PARTITIONS, f"Topic already has {current} partitions.")
    extra = t.count - current
    if t.assignments:
        if len(t.assignments) != extra:
            raise KafkaError(
                ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                f"Increasing the number of partitions by {extra} but {len(t.assignments)} "
                "assignments provided.",
            )
        assignment = [tuple(a.broker_ids) for a in t.assignments]
        for replicas in assignment:
            broker.topics.check_manual_assignment(replicas)
    else:
        brokers = broker.image.live_broker_ids()
        first = topic.partitions[0].preferred_leader if topic.partitions else -1
        start = next((i for i, b in enumerate(brokers) if b >= first), 0)
        assignment = broker.topics.assign_replicas(
            extra, topic.replication_factor, current, start_index=start
        )
    if validate_only:
        return
    await broker.topics.add_partitions(t.name, assignment, wait_s)


@handles(ApiKey.CREATE_PARTITIONS)
async def handle_create_partitions(
    broker: Broker, header: RequestHeader, req: CreatePartitionsRequest
) -> CreatePartitionsResponse:
    results = []
    for t in req.topics:
        res = CreatePartitionsResponse.CreatePartitionsTopicResult(
            name=t.name, error_code=0, error_message=None
        )
        try:
            refused = internal_topic_problem(t.name, "get new partitions")
            if refused is not None:
                raise refused
            await _create_partitions(broker, t, req.validate_only, _wait_s(req))
        except KafkaError as e:
            res.error_code, res.error_message = e.code, e.message
        results.append(res)
    return CreatePartitionsResponse(throttle_time_ms=0, results=results)
