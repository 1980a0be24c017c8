"""Consumer group APIs of KIP-848: ConsumerGroupHeartbeat (68) and ConsumerGroupDescribe
(69), at Kafka 4.0's versions (v1 of the heartbeat: the client makes its member id and
may subscribe by regex; v1 of describe: each member's type, classic or consumer).

Both go to the shard of the group's ``__consumer_offsets`` partition
(strom.coordinator.group.consumer); the heartbeat is answered once its records are
committed. With "consumer" left out of group.coordinator.rebalance.protocols the
heartbeat answers UNSUPPORTED_VERSION, as Kafka does.
"""

from __future__ import annotations

from strom.broker.broker import CLIENT_HOST, Broker
from strom.broker.groups import runtime
from strom.broker.handlers import handles
from strom.coordinator.group.consumer.heartbeat import RequestContext
from strom.protocol.api_versions import ApiKey
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.frame import RequestHeader
from strom.protocol.generated.consumer_group_describe import (
    ConsumerGroupDescribeRequest,
    ConsumerGroupDescribeResponse,
)
from strom.protocol.generated.consumer_group_heartbeat import (
    ConsumerGroupHeartbeatRequest,
    ConsumerGroupHeartbeatResponse,
)


@handles(ApiKey.CONSUMER_GROUP_HEARTBEAT)
async def handle_consumer_group_heartbeat(
    broker: Broker, header: RequestHeader, req: ConsumerGroupHeartbeatRequest
) -> ConsumerGroupHeartbeatResponse:
    rt = runtime(broker)
    if "consumer" not in rt.config.rebalance_protocols:
        return ConsumerGroupHeartbeatResponse(
            error_code=ErrorCode.UNSUPPORTED_VERSION,
            error_message="The consumer rebalance protocol is not enabled on this broker.",
        )
    if not req.group_id:
        return ConsumerGroupHeartbeatResponse(error_code=ErrorCode.INVALID_GROUP_ID)
    try:
        partition, shard = rt.shard(req.group_id)
    except KafkaError as e:
        return ConsumerGroupHeartbeatResponse(error_code=e.code)
    ctx = RequestContext(header.client_id or "", CLIENT_HOST.get(), header.api_version)
    resp: ConsumerGroupHeartbeatResponse = await rt.call(
        partition, lambda h: shard.consumer_group_heartbeat(h, req, ctx, broker.now_ms())
    )
    return resp


@handles(ApiKey.CONSUMER_GROUP_DESCRIBE)
async def handle_consumer_group_describe(
    broker: Broker, header: RequestHeader, req: ConsumerGroupDescribeRequest
) -> ConsumerGroupDescribeResponse:
    Described = ConsumerGroupDescribeResponse.DescribedGroup
    rt = runtime(broker)
    out = []
    for group_id in req.group_ids:
        if not group_id:
            out.append(Described(error_code=ErrorCode.INVALID_GROUP_ID, group_id=group_id))
            continue
        try:
            _, shard = rt.shard(group_id)
        except KafkaError as e:
            out.append(Described(error_code=e.code, group_id=group_id))
            continue
        out.append(shard.consumer_group_describe(group_id, req.include_authorized_operations))
    return ConsumerGroupDescribeResponse(groups=out)
