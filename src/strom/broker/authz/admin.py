"""Administrative APIs as KafkaApis authorizes them: CREATE (cluster or topic), DELETE
and ALTER of topics, DESCRIBE_CONFIGS / ALTER_CONFIGS of topics (and of the cluster
for broker configs), DESCRIBE and ALTER of the cluster for log dirs, elections,
reassignments, ACLs and SCRAM credentials."""

from __future__ import annotations

from typing import Any

from strom.broker.acls import refuse_unknown
from strom.broker.authz.common import (
    CLUSTER_DENIED,
    MESSAGES,
    RT,
    TOPIC_DENIED,
    Op,
    allowed,
    cluster_allowed,
    refuse,
    replaced,
    split,
)
from strom.broker.broker import Broker
from strom.broker.handlers import Handler, authorizes
from strom.common.acl import CLUSTER_NAME
from strom.protocol.api_versions import ApiKey
from strom.protocol.errors import ErrorCode
from strom.protocol.frame import RequestHeader
from strom.protocol.generated.alter_user_scram_credentials import (
    AlterUserScramCredentialsResponse,
)
from strom.protocol.generated.describe_log_dirs import DescribeLogDirsResponse
from strom.protocol.generated.describe_user_scram_credentials import (
    DescribeUserScramCredentialsResponse,
)
from strom.protocol.wire import ZERO_UUID

# DescribeConfigs resource types -> the ACL resource they are checked on
CONFIG_RESOURCES = {2: RT.TOPIC, 4: RT.CLUSTER, 8: RT.CLUSTER, 16: RT.CLUSTER, 32: RT.GROUP}
_CODES = {
    RT.TOPIC: TOPIC_DENIED,
    RT.CLUSTER: CLUSTER_DENIED,
    RT.GROUP: ErrorCode.GROUP_AUTHORIZATION_FAILED,
}


@authorizes(ApiKey.CREATE_TOPICS)
async def create_topics(broker: Broker, header: RequestHeader, req: Any, handler: Handler) -> Any:
    every = cluster_allowed(broker, Op.CREATE)
    resp = await split(
        broker,
        header,
        req,
        handler,
        field="topics",
        resp_field="topics",
        ok=lambda t: every or allowed(broker, Op.CREATE, RT.TOPIC, t.name),
        code=TOPIC_DENIED,
        message="Authorization failed.",
    )
    for t in resp.topics:
        if t.error_code == ErrorCode.NONE and not allowed(
            broker, Op.DESCRIBE_CONFIGS, RT.TOPIC, t.name
        ):
            t.configs, t.num_partitions, t.replication_factor = [], -1, -1
            t.topic_config_error_code = TOPIC_DENIED
    return resp


@authorizes(ApiKey.DELETE_TOPICS)
async def delete_topics(broker: Broker, header: RequestHeader, req: Any, handler: Handler) -> Any:
    def may_delete(name: str) -> bool:
        return allowed(broker, Op.DELETE, RT.TOPIC, name)

    if header.api_version < 6:
        return await split(
            broker,
            header,
            req,
            handler,
            field="topic_names",
            resp_field="responses",
            ok=may_delete,
            code=TOPIC_DENIED,
        )
    good, denied = [], []
    Result = refuse(header, replaced(req, topics=[]), 0).__class__.DeletableTopicResult
    for t in req.topics:
        name = t.name
        if name is None:
            info = broker.image.topic_by_id(t.topic_id)
            name = info.name if info is not None else None
        if name is None:
            good.append(t)  # an unknown id: the handler answers UNKNOWN_TOPIC_ID
        elif not allowed(broker, Op.DESCRIBE, RT.TOPIC, name):
            code = TOPIC_DENIED if t.topic_id == ZERO_UUID else ErrorCode.UNKNOWN_TOPIC_ID
            denied.append(
                Result(name=None if t.name is None else name, topic_id=t.topic_id, error_code=code)
            )
        elif not may_delete(name):
            denied.append(Result(name=name, topic_id=t.topic_id, error_code=TOPIC_DENIED))
        else:
            good.append(t)
    if not denied:
        return await handler(broker, header, req)
    resp = refuse(header, replaced(req, topics=[]), 0)
    if good:
        resp = await handler(broker, header, replaced(req, topics=good))
    resp.responses.extend(denied)
    return resp


@authorizes(ApiKey.CREATE_PARTITIONS)
async def create_partitions(
    broker: Broker, header: RequestHeader, req: Any, handler: Handler
) -> Any:
    return await split(
        broker,
        header,
        req,
        handler,
        field="topics",
        resp_field="results",
        ok=lambda t: allowed(broker, Op.ALTER, RT.TOPIC, t.name),
        code=TOPIC_DENIED,
        message="The topic authorization is failed.",
    )


def _config_ok(broker: Broker, op: Op, resource: Any) -> bool:
    kind = CONFIG_RESOURCES.get(resource.resource_type)
    if kind is None:
        return True  # an unknown type: the handler refuses it
    name = CLUSTER_NAME if kind == RT.CLUSTER else resource.resource_name
    return allowed(broker, op, kind, name)


async def _configs(
    broker: Broker, header: RequestHeader, req: Any, handler: Handler, op: Op, resp_field: str
) -> Any:
    bad = [r for r in req.resources if not _config_ok(broker, op, r)]
    if not bad:
        return await handler(broker, header, req)
    good = [r for r in req.resources if _config_ok(broker, op, r)]
    resp = refuse(header, replaced(req, resources=[]), 0)
    if good:
        resp = await handler(broker, header, replaced(req, resources=good))
    denied = refuse(header, replaced(req, resources=bad), 0)
    for entry, r in zip(getattr(denied, resp_field), bad, strict=True):
        entry.error_code = _CODES[CONFIG_RESOURCES[r.resource_type]]
        entry.error_message = MESSAGES[entry.error_code]
    order = {(r.resource_type, r.resource_name): i for i, r in enumerate(req.resources)}
    merged = getattr(resp, resp_field) + getattr(denied, resp_field)
    merged.sort(key=lambda e: order.get((e.resource_type, e.resource_name), len(order)))
    setattr(resp, resp_field, merged)
    return resp


@authorizes(ApiKey.DESCRIBE_CONFIGS)
async def describe_configs(
    broker: Broker, header: RequestHeader, req: Any, handler: Handler
) -> Any:
    return await _configs(broker, header, req, handler, Op.DESCRIBE_CONFIGS, "results")


@authorizes(ApiKey.ALTER_CONFIGS, ApiKey.INCREMENTAL_ALTER_CONFIGS)
async def alter_configs(broker: Broker, header: RequestHeader, req: Any, handler: Handler) -> Any:
    return await _configs(broker, header, req, handler, Op.ALTER_CONFIGS, "responses")


@authorizes(ApiKey.DESCRIBE_LOG_DIRS)
async def describe_log_dirs(
    broker: Broker, header: RequestHeader, req: Any, handler: Handler
) -> Any:
    if not cluster_allowed(broker, Op.DESCRIBE):
        return DescribeLogDirsResponse(error_code=CLUSTER_DENIED, results=[])
    return await handler(broker, header, req)


def _cluster_op(op: Op) -> Any:
    async def rule(broker: Broker, header: RequestHeader, req: Any, handler: Handler) -> Any:
        if not cluster_allowed(broker, op):
            return refuse(header, req, CLUSTER_DENIED)
        return await handler(broker, header, req)

    return rule


for _key in (
    ApiKey.ALTER_REPLICA_LOG_DIRS,
    ApiKey.ELECT_LEADERS,
    ApiKey.ALTER_PARTITION_REASSIGNMENTS,
):
    authorizes(_key)(_cluster_op(Op.ALTER))
authorizes(ApiKey.LIST_PARTITION_REASSIGNMENTS)(_cluster_op(Op.DESCRIBE))


def _acl_op(op: Op) -> Any:
    """Kafka parses ACL requests first: one with UNKNOWN elements closes the connection
    before any right is checked."""
    rule = _cluster_op(op)

    async def checked(broker: Broker, header: RequestHeader, req: Any, handler: Handler) -> Any:
        refuse_unknown(req)
        return await rule(broker, header, req, handler)

    return checked


authorizes(ApiKey.CREATE_ACLS, ApiKey.DELETE_ACLS)(_acl_op(Op.ALTER))
authorizes(ApiKey.DESCRIBE_ACLS)(_acl_op(Op.DESCRIBE))


@authorizes(ApiKey.DESCRIBE_USER_SCRAM_CREDENTIALS)
async def describe_scram(broker: Broker, header: RequestHeader, req: Any, handler: Handler) -> Any:
    if not cluster_allowed(broker, Op.DESCRIBE):
        return DescribeUserScramCredentialsResponse(
            error_code=CLUSTER_DENIED, error_message=MESSAGES[CLUSTER_DENIED]
        )
    return await handler(broker, header, req)


@authorizes(ApiKey.ALTER_USER_SCRAM_CREDENTIALS)
async def alter_scram(broker: Broker, header: RequestHeader, req: Any, handler: Handler) -> Any:
    if not cluster_allowed(broker, Op.ALTER):
        users = dict.fromkeys([u.name for u in req.deletions] + [u.name for u in req.upsertions])
        Result = AlterUserScramCredentialsResponse.AlterUserScramCredentialsResult
        return AlterUserScramCredentialsResponse(
            results=[Result(u, CLUSTER_DENIED, MESSAGES[CLUSTER_DENIED]) for u in users]
        )
    return await handler(broker, header, req)
