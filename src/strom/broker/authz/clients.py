"""Produce, Fetch, ListOffsets, OffsetForLeaderEpoch, DeleteRecords, DescribeProducers,
Metadata and DescribeTopicPartitions, as KafkaApis authorizes them."""

from __future__ import annotations

import struct
from typing import Any

from strom.broker.authz.common import (
    CLUSTER_DENIED,
    RT,
    TOPIC_DENIED,
    TXN_DENIED,
    Op,
    allowed,
    cluster_allowed,
    refuse,
    replaced,
    split,
    topic_check,
)
from strom.broker.broker import Broker
from strom.broker.handlers import Handler, authorizes
from strom.common.names import INTERNAL_TOPICS
from strom.protocol.api_versions import ApiKey
from strom.protocol.frame import RequestHeader
from strom.protocol.generated.metadata import MetadataRequest, MetadataResponse

_ATTRIBUTES = struct.Struct(">h")
_LENGTH = struct.Struct(">i")
TRANSACTIONAL_FLAG = 0x10


def has_transactional_records(req: Any) -> bool:
    """Whether any batch is transactional (attributes bit 4), from the batch headers."""
    for topic in req.topic_data:
        for part in topic.partition_data:
            data = part.records or b""
            pos = 0
            while pos + 23 <= len(data):
                if _ATTRIBUTES.unpack_from(data, pos + 21)[0] & TRANSACTIONAL_FLAG:
                    return True
                pos += 12 + _LENGTH.unpack_from(data, pos + 8)[0]
    return False


@authorizes(ApiKey.PRODUCE)
async def produce(broker: Broker, header: RequestHeader, req: Any, handler: Handler) -> Any:
    if has_transactional_records(req) and (
        req.transactional_id is None
        or not allowed(broker, Op.WRITE, RT.TRANSACTIONAL_ID, req.transactional_id)
    ):
        return refuse(header, req, TXN_DENIED)
    ok = topic_check(broker, Op.WRITE, lambda t: t.name)
    return await split(
        broker,
        header,
        req,
        handler,
        field="topic_data",
        resp_field="responses",
        ok=ok,
        code=TOPIC_DENIED,
    )


@authorizes(ApiKey.FETCH)
async def fetch(broker: Broker, header: RequestHeader, req: Any, handler: Handler) -> Any:
    version = header.api_version
    replica_id = req.replica_state.replica_id if version >= 15 else req.replica_id
    if replica_id >= 0:
        if cluster_allowed(broker, Op.CLUSTER_ACTION):
            return await handler(broker, header, req)
        return refuse(header, req, TOPIC_DENIED)

    def name_of(topic: Any) -> str | None:
        if version < 13:
            return str(topic.topic)
        info = broker.image.topic_by_id(topic.topic_id)
        return info.name if info is not None else None

    return await split(
        broker,
        header,
        req,
        handler,
        field="topics",
        resp_field="responses",
        ok=topic_check(broker, Op.READ, name_of),
        code=TOPIC_DENIED,
    )


def _by_topic(field: str, name: str, op: Op, resp_field: str = "topics") -> Any:
    async def rule(broker: Broker, header: RequestHeader, req: Any, handler: Handler) -> Any:
        ok = topic_check(broker, op, lambda t: getattr(t, name))
        return await split(
            broker,
            header,
            req,
            handler,
            field=field,
            resp_field=resp_field,
            ok=ok,
            code=TOPIC_DENIED,
        )

    return rule


authorizes(ApiKey.LIST_OFFSETS)(_by_topic("topics", "name", Op.DESCRIBE))
authorizes(ApiKey.DELETE_RECORDS)(_by_topic("topics", "name", Op.DELETE))
authorizes(ApiKey.DESCRIBE_PRODUCERS)(_by_topic("topics", "name", Op.READ))


@authorizes(ApiKey.OFFSET_FOR_LEADER_EPOCH)
async def offset_for_leader_epoch(
    broker: Broker, header: RequestHeader, req: Any, handler: Handler
) -> Any:
    """Followers need CLUSTER_ACTION; consumers (KIP-320) DESCRIBE of the topic."""
    if cluster_allowed(broker, Op.CLUSTER_ACTION):
        return await handler(broker, header, req)
    return await _by_topic("topics", "topic", Op.DESCRIBE)(broker, header, req, handler)


# -- Metadata -----------------------------------------------------------------------------
def _denied_topic(name: str | None, topic_id: bytes | None = None) -> Any:
    t = MetadataResponse.MetadataResponseTopic(error_code=TOPIC_DENIED, name=name)
    if topic_id is not None:
        t.topic_id = topic_id
    t.is_internal = name in INTERNAL_TOPICS if topic_id is None else False
    return t


def _may_create(broker: Broker, name: str) -> bool:
    return cluster_allowed(broker, Op.CREATE) or allowed(broker, Op.CREATE, RT.TOPIC, name)


@authorizes(ApiKey.METADATA)
async def metadata(
    broker: Broker, header: RequestHeader, req: MetadataRequest, handler: Handler
) -> Any:
    """Topics the principal may not describe are left out of an all-topics answer and
    answered TOPIC_AUTHORIZATION_FAILED when named; a topic that would be created
    automatically needs CREATE (on the cluster or the topic)."""
    version = header.api_version
    if req.topics is None or (version == 0 and not req.topics):
        resp = await handler(broker, header, req)
        resp.topics = [t for t in resp.topics if allowed(broker, Op.DESCRIBE, RT.TOPIC, t.name)]
        return resp
    auto_create = (req.allow_auto_topic_creation if version >= 4 else True) and (
        broker.config.get_bool("auto.create.topics.enable")
    )
    good, denied = [], []
    for rt in req.topics:
        if rt.name is None:
            info = broker.image.topic_by_id(rt.topic_id)
            if info is not None and not allowed(broker, Op.DESCRIBE, RT.TOPIC, info.name):
                denied.append(_denied_topic(None, rt.topic_id))
            else:
                good.append(rt)
        elif not allowed(broker, Op.DESCRIBE, RT.TOPIC, rt.name) or (
            auto_create and broker.topic(rt.name) is None and not _may_create(broker, rt.name)
        ):
            denied.append(_denied_topic(rt.name))
        else:
            good.append(rt)
    if not denied:
        return await handler(broker, header, req)
    resp = await handler(broker, header, replaced(req, topics=good))
    if not good:  # (v0: an empty list would have meant every topic)
        resp.topics = []
    resp.topics.extend(denied)
    return resp


@authorizes(ApiKey.DESCRIBE_TOPIC_PARTITIONS)
async def describe_topic_partitions(
    broker: Broker, header: RequestHeader, req: Any, handler: Handler
) -> Any:
    if not req.topics:
        resp = await handler(broker, header, req)
        resp.topics = [t for t in resp.topics if allowed(broker, Op.DESCRIBE, RT.TOPIC, t.name)]
        return resp
    ok = topic_check(broker, Op.DESCRIBE, lambda t: t.name)
    if all(ok(t) for t in req.topics):
        return await handler(broker, header, req)
    good = [t for t in req.topics if ok(t)]
    resp = refuse(header, replaced(req, topics=[]), 0)
    if good:
        resp = await handler(broker, header, replaced(req, topics=good))
    denied = refuse(
        header, replaced(req, topics=[t for t in req.topics if not ok(t)]), TOPIC_DENIED
    )
    resp.topics = sorted(resp.topics + denied.topics, key=lambda t: t.name or "")
    return resp


__all__ = ["CLUSTER_DENIED"]
