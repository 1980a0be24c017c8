"""The ZooKeeper-mode APIs between brokers and the controller.

Controller to broker: LeaderAndIsr (make local replicas leaders or followers),
UpdateMetadata (the new cluster image), StopReplica (stop, and maybe delete,
local replicas). Each is fenced twice: a request from an older controller epoch
is STALE_CONTROLLER_EPOCH, one meant for an earlier registration of this broker
(an older broker epoch) is STALE_BROKER_EPOCH; a newer broker epoch is accepted, as
Kafka does: the controller can see a re-registration before the broker has learnt
its own new epoch; a partition state older than the
local one (leader epoch, then partition epoch) is refused for that partition.

Broker to controller: AlterPartition (a leader's ISR change) and
ControlledShutdown, handled here when this broker is the controller and answered
NOT_CONTROLLER otherwise.
"""

from __future__ import annotations

import logging

from strom.broker.broker import Broker
from strom.broker.handlers import handles
from strom.common.types import TopicPartition
from strom.metadata.image import (
    SECURITY_PROTOCOL_NAMES,
    BrokerInfo,
    Endpoint,
    MetadataImage,
    PartitionInfo,
    TopicInfo,
    is_internal,
)
from strom.protocol.api_versions import ApiKey
from strom.protocol.errors import ErrorCode, NotControllerError
from strom.protocol.frame import RequestHeader
from strom.protocol.generated.alter_partition import AlterPartitionRequest, AlterPartitionResponse
from strom.protocol.generated.controlled_shutdown import (
    ControlledShutdownRequest,
    ControlledShutdownResponse,
)
from strom.protocol.generated.leader_and_isr import LeaderAndIsrRequest, LeaderAndIsrResponse
from strom.protocol.generated.stop_replica import StopReplicaRequest, StopReplicaResponse
from strom.protocol.generated.update_metadata import UpdateMetadataRequest, UpdateMetadataResponse

log = logging.getLogger(__name__)
LEADER_DURING_DELETE = -2
LAIResp = LeaderAndIsrResponse


def _fence(broker: Broker, controller_epoch: int, broker_epoch: int) -> ErrorCode:
    """STALE_CONTROLLER_EPOCH for an older controller, STALE_BROKER_EPOCH for a request
    meant for an earlier registration of this broker; else NONE (and the epoch is noted)."""
    cluster = broker.cluster
    if cluster is None:
        return ErrorCode.STALE_CONTROLLER_EPOCH  # a single node has no controller
    if controller_epoch < cluster.controller_epoch:
        return ErrorCode.STALE_CONTROLLER_EPOCH
    # Kafka refuses only an older broker epoch: a newer one is this broker's new
    # registration, which the controller may see (and use) before the broker does
    if broker_epoch != -1 and broker_epoch < cluster.broker_epoch:
        return ErrorCode.STALE_BROKER_EPOCH
    cluster.controller_epoch = controller_epoch
    return ErrorCode.NONE


def _topic_info(broker: Broker, name: str, topic_id: bytes) -> TopicInfo:
    current = broker.image.topic(name)
    configs = broker.store.topic_configs(name)
    return TopicInfo(
        name, topic_id, current.partitions if current else (), configs, is_internal(name)
    )


# -- LeaderAndIsr ---------------------------------------------------------------------------


@handles(ApiKey.LEADER_AND_ISR)
async def handle_leader_and_isr(
    broker: Broker, header: RequestHeader, req: LeaderAndIsrRequest
) -> LeaderAndIsrResponse:
    code = _fence(broker, req.controller_epoch, req.broker_epoch)
    if code != ErrorCode.NONE:
        log.info(
            "ignoring LeaderAndIsr from controller epoch %d: %s", req.controller_epoch, code.name
        )
        return LeaderAndIsrResponse(error_code=code)
    topics = []
    for ts in req.topic_states:
        # a topic created elsewhere: its configs (min.insync.replicas...) before its logs
        await broker.store_call(broker.store.ensure_topic_configs, ts.topic_name)
        topic = _topic_info(broker, ts.topic_name, ts.topic_id)
        errors = []
        for ps in ts.partition_states:
            state = PartitionInfo(
                ps.partition_index,
                ps.leader,
                ps.leader_epoch,
                tuple(ps.replicas),
                tuple(ps.isr),
                ps.partition_epoch,
                (),
                tuple(ps.adding_replicas),
                tuple(ps.removing_replicas),
            )
            errors.append(
                LAIResp.LeaderAndIsrPartitionError(
                    ts.topic_name, ps.partition_index, _apply(broker, topic, state)
                )
            )
        topics.append(LAIResp.LeaderAndIsrTopicError(ts.topic_id, errors))
    return LeaderAndIsrResponse(error_code=0, topics=topics)


def _apply(broker: Broker, topic: TopicInfo, state: PartitionInfo) -> int:
    tp = TopicPartition(topic.name, state.partition)
    if broker.node_id not in state.replicas:
        return ErrorCode.NONE
    current = broker.replicas.partitions.get(tp)
    if current is not None and current.leader_epoch >= 0:
        mine = (current.leader_epoch, current.partition_epoch)
        theirs = (state.leader_epoch, state.partition_epoch)
        if theirs < mine:
            log.info("ignoring LeaderAndIsr for %s: epochs %s older than %s", tp, theirs, mine)
            return ErrorCode.STALE_CONTROLLER_EPOCH
        if theirs == mine and current.leader_id == state.leader:
            return ErrorCode.NONE  # already so
    try:
        broker.apply_partition_state(topic, state)
    except OSError as exc:
        log.error("cannot open the log of %s: %s", tp, exc)
        return ErrorCode.KAFKA_STORAGE_ERROR
    return ErrorCode.NONE


# -- UpdateMetadata ------------------------------------------------------------------------


@handles(ApiKey.UPDATE_METADATA)
async def handle_update_metadata(
    broker: Broker, header: RequestHeader, req: UpdateMetadataRequest
) -> UpdateMetadataResponse:
    code = _fence(broker, req.controller_epoch, req.broker_epoch)
    if code != ErrorCode.NONE:
        return UpdateMetadataResponse(error_code=code)
    broker.set_image(updated_image(broker, req))
    return UpdateMetadataResponse(error_code=0)


def updated_image(broker: Broker, req: UpdateMetadataRequest) -> MetadataImage:
    """The broker's image with the request's live brokers and partition states merged
    in (a partition whose leader is -2 is being deleted: it leaves the image)."""
    brokers = {
        b.id: BrokerInfo(
            b.id,
            tuple(
                Endpoint(
                    e.listener,
                    e.host,
                    e.port,
                    SECURITY_PROTOCOL_NAMES.get(e.security_protocol, "PLAINTEXT"),
                )
                for e in b.endpoints
            ),
            b.rack,
        )
        for b in req.live_brokers
    }
    topics = dict(broker.image.topics)
    for ts in req.topic_states:
        current = topics.get(ts.topic_name)
        parts = {p.partition: p for p in current.partitions} if current is not None else {}
        for ps in ts.partition_states:
            if ps.leader == LEADER_DURING_DELETE:
                parts.pop(ps.partition_index, None)
                continue
            parts[ps.partition_index] = PartitionInfo(
                ps.partition_index,
                ps.leader,
                ps.leader_epoch,
                tuple(ps.replicas),
                tuple(ps.isr),
                ps.zk_version,
                tuple(ps.offline_replicas),
            )
        if not parts:
            topics.pop(ts.topic_name, None)
            continue
        topic_id = ts.topic_id if any(ts.topic_id) else (current.topic_id if current else bytes(16))
        topics[ts.topic_name] = TopicInfo(
            ts.topic_name,
            topic_id,
            tuple(parts[i] for i in sorted(parts)),
            broker.store.topic_configs(ts.topic_name),
            is_internal(ts.topic_name),
        )
    return MetadataImage(broker.image.cluster_id, req.controller_id, brokers, topics)


# -- StopReplica ------------------------------------------------------------------------------


@handles(ApiKey.STOP_REPLICA)
async def handle_stop_replica(
    broker: Broker, header: RequestHeader, req: StopReplicaRequest
) -> StopReplicaResponse:
    code = _fence(broker, req.controller_epoch, req.broker_epoch)
    if code != ErrorCode.NONE:
        return StopReplicaResponse(error_code=code)
    errors = []
    for ts in req.topic_states:
        for ps in ts.partition_states:
            tp = TopicPartition(ts.topic_name, ps.partition_index)
            error = ErrorCode.NONE
            current = broker.replicas.partitions.get(tp)
            if (
                current is not None
                and ps.leader_epoch >= 0
                and ps.leader_epoch < current.leader_epoch
            ):
                error = ErrorCode.FENCED_LEADER_EPOCH
            else:
                try:
                    broker.stop_replica(tp, ps.delete_partition)
                except OSError as exc:
                    log.error("cannot delete the log of %s: %s", tp, exc)
                    error = ErrorCode.KAFKA_STORAGE_ERROR
            errors.append(
                StopReplicaResponse.StopReplicaPartitionError(
                    ts.topic_name, ps.partition_index, error
                )
            )
    return StopReplicaResponse(error_code=0, partition_errors=errors)


# -- to the controller --------------------------------------------------------------------------


@handles(ApiKey.ALTER_PARTITION)
async def handle_alter_partition(
    broker: Broker, header: RequestHeader, req: AlterPartitionRequest
) -> AlterPartitionResponse:
    runtime = broker.cluster.runtime if broker.cluster is not None else None
    if runtime is None:
        return AlterPartitionResponse(error_code=ErrorCode.NOT_CONTROLLER)
    version = header.api_version
    try:
        return await runtime.call(lambda c: c.alter_partition(req, version))
    except NotControllerError:
        return AlterPartitionResponse(error_code=ErrorCode.NOT_CONTROLLER)


@handles(ApiKey.CONTROLLED_SHUTDOWN)
async def handle_controlled_shutdown(
    broker: Broker, header: RequestHeader, req: ControlledShutdownRequest
) -> ControlledShutdownResponse:
    runtime = broker.cluster.runtime if broker.cluster is not None else None
    if runtime is None:
        return ControlledShutdownResponse(error_code=ErrorCode.NOT_CONTROLLER)
    try:
        code, remaining = await runtime.call(
            lambda c: c.controlled_shutdown(req.broker_id, req.broker_epoch)
        )
    except NotControllerError:
        return ControlledShutdownResponse(error_code=ErrorCode.NOT_CONTROLLER)
    return ControlledShutdownResponse(
        error_code=code,
        remaining_partitions=[
            ControlledShutdownResponse.RemainingPartition(tp.topic, tp.partition)
            for tp in remaining
        ],
    )
