"""The group APIs as KafkaApis authorizes them: READ of the group to join, sync,
heartbeat, leave and commit; DESCRIBE to find its coordinator, describe it and fetch
its offsets; DELETE to delete it or its offsets; the topics' READ / DESCRIBE for
their offsets."""

from __future__ import annotations

from typing import Any

from strom.broker.authorized_ops import authorized_operations
from strom.broker.authz.common import (
    CLUSTER_DENIED,
    GROUP_DENIED,
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
from strom.protocol.api_versions import ApiKey
from strom.protocol.frame import RequestHeader
from strom.protocol.generated.offset_delete import OffsetDeleteResponse
from strom.protocol.generated.offset_fetch import OffsetFetchResponse

OFR = OffsetFetchResponse
GROUP_KEY, TRANSACTION_KEY = 0, 1


def _group_ok(broker: Broker, op: Op, group: str) -> bool:
    return allowed(broker, op, RT.GROUP, group)


@authorizes(ApiKey.FIND_COORDINATOR)
async def find_coordinator(
    broker: Broker, header: RequestHeader, req: Any, handler: Handler
) -> Any:
    if req.key_type == TRANSACTION_KEY:
        kind, code = RT.TRANSACTIONAL_ID, TXN_DENIED
    else:
        kind, code = RT.GROUP, GROUP_DENIED

    def ok(key: str) -> bool:
        return allowed(broker, Op.DESCRIBE, kind, key)

    if header.api_version < 4:
        return await handler(broker, header, req) if ok(req.key) else refuse(header, req, code)
    return await split(
        broker,
        header,
        req,
        handler,
        field="coordinator_keys",
        resp_field="coordinators",
        ok=ok,
        code=code,
    )


@authorizes(ApiKey.JOIN_GROUP, ApiKey.SYNC_GROUP, ApiKey.HEARTBEAT, ApiKey.LEAVE_GROUP)
async def group_member(broker: Broker, header: RequestHeader, req: Any, handler: Handler) -> Any:
    if not _group_ok(broker, Op.READ, req.group_id):
        return refuse(header, req, GROUP_DENIED)
    return await handler(broker, header, req)


@authorizes(ApiKey.OFFSET_COMMIT)
async def offset_commit(broker: Broker, header: RequestHeader, req: Any, handler: Handler) -> Any:
    if not _group_ok(broker, Op.READ, req.group_id):
        return refuse(header, req, GROUP_DENIED)
    return await split(
        broker,
        header,
        req,
        handler,
        field="topics",
        resp_field="topics",
        ok=topic_check(broker, Op.READ, lambda t: t.name),
        code=TOPIC_DENIED,
    )


def _fetch_group(
    broker: Broker, topics: list[Any] | None
) -> tuple[list[Any] | None, list[tuple[str, list[int]]]]:
    """The requested topics the principal may describe, and the (topic, partitions)
    it may not (None: every topic, filtered in the answer)."""
    if topics is None:
        return None, []
    ok = topic_check(broker, Op.DESCRIBE, lambda t: t.name)
    return [t for t in topics if ok(t)], [
        (t.name, list(t.partition_indexes)) for t in topics if not ok(t)
    ]


def _denied_offsets(
    denied: list[tuple[str, list[int]]], topic_cls: Any, part_cls: Any
) -> list[Any]:
    """Topics of OffsetFetch answered TOPIC_AUTHORIZATION_FAILED, every partition."""
    return [
        topic_cls(name, [part_cls(p, -1, -1, "", TOPIC_DENIED) for p in parts])
        for name, parts in denied
    ]


def _visible(broker: Broker, topics: list[Any]) -> list[Any]:
    return [t for t in topics if allowed(broker, Op.DESCRIBE, RT.TOPIC, t.name)]


@authorizes(ApiKey.OFFSET_FETCH)
async def offset_fetch(broker: Broker, header: RequestHeader, req: Any, handler: Handler) -> Any:
    if header.api_version >= 8:
        return await _offset_fetch_groups(broker, header, req, handler)
    if not _group_ok(broker, Op.DESCRIBE, req.group_id):
        return refuse(header, req, GROUP_DENIED)
    good, denied = _fetch_group(broker, req.topics)
    resp = await handler(broker, header, replaced(req, topics=good))
    if good is None:
        resp.topics = _visible(broker, resp.topics)
    resp.topics += _denied_offsets(
        denied, OFR.OffsetFetchResponseTopic, OFR.OffsetFetchResponsePartition
    )
    return resp


async def _offset_fetch_groups(
    broker: Broker, header: RequestHeader, req: Any, handler: Handler
) -> Any:
    results: dict[str, Any] = {}
    allowed_groups, filters = [], {}
    for g in req.groups:
        if not _group_ok(broker, Op.DESCRIBE, g.group_id):
            results[g.group_id] = OFR.OffsetFetchResponseGroup(g.group_id, [], GROUP_DENIED)
            continue
        good, denied = _fetch_group(broker, g.topics)
        filters[g.group_id] = (good is None, denied)
        allowed_groups.append(replaced(g, topics=good))
    resp = refuse(header, replaced(req, groups=[]), 0)
    if allowed_groups:
        resp = await handler(broker, header, replaced(req, groups=allowed_groups))
    for group in resp.groups:
        every, denied = filters.get(group.group_id, (False, []))
        if every:
            group.topics = _visible(broker, group.topics)
        group.topics += _denied_offsets(
            denied, OFR.OffsetFetchResponseTopics, OFR.OffsetFetchResponsePartitions
        )
        results[group.group_id] = group
    resp.groups = [results[g.group_id] for g in req.groups if g.group_id in results]
    return resp


@authorizes(ApiKey.OFFSET_DELETE)
async def offset_delete(broker: Broker, header: RequestHeader, req: Any, handler: Handler) -> Any:
    if not _group_ok(broker, Op.DELETE, req.group_id):
        return refuse(header, req, GROUP_DENIED)
    ok = topic_check(broker, Op.READ, lambda t: t.name)
    good = [t for t in req.topics if ok(t)]
    if len(good) == len(req.topics):
        return await handler(broker, header, req)
    resp = await handler(broker, header, replaced(req, topics=good))
    for t in req.topics:
        if not ok(t):
            resp.topics.append(
                OffsetDeleteResponse.OffsetDeleteResponseTopic(
                    t.name,
                    [
                        OffsetDeleteResponse.OffsetDeleteResponsePartition(
                            p.partition_index, TOPIC_DENIED
                        )
                        for p in t.partitions
                    ],
                )
            )
    return resp


@authorizes(ApiKey.DESCRIBE_GROUPS)
async def describe_groups(broker: Broker, header: RequestHeader, req: Any, handler: Handler) -> Any:
    return await split(
        broker,
        header,
        req,
        handler,
        field="groups",
        resp_field="groups",
        ok=lambda g: _group_ok(broker, Op.DESCRIBE, g),
        code=GROUP_DENIED,
    )


@authorizes(ApiKey.LIST_GROUPS)
async def list_groups(broker: Broker, header: RequestHeader, req: Any, handler: Handler) -> Any:
    resp = await handler(broker, header, req)
    if not cluster_allowed(broker, Op.DESCRIBE):
        resp.groups = [g for g in resp.groups if _group_ok(broker, Op.DESCRIBE, g.group_id)]
    return resp


@authorizes(ApiKey.DELETE_GROUPS)
async def delete_groups(broker: Broker, header: RequestHeader, req: Any, handler: Handler) -> Any:
    return await split(
        broker,
        header,
        req,
        handler,
        field="groups_names",
        resp_field="results",
        ok=lambda g: _group_ok(broker, Op.DELETE, g),
        code=GROUP_DENIED,
    )


__all__ = ["CLUSTER_DENIED"]


# -- KIP-848 ------------------------------------------------------------------------------
DESCRIBED_UNAUTHORIZED = (
    "The described group uses topics that the client is not authorized to describe."
)


@authorizes(ApiKey.CONSUMER_GROUP_HEARTBEAT)
async def consumer_group_heartbeat(
    broker: Broker, header: RequestHeader, req: Any, handler: Handler
) -> Any:
    """READ of the group; every subscribed topic name must be DESCRIBE-able (clients
    may not learn of topics they cannot describe)."""
    if not _group_ok(broker, Op.READ, req.group_id):
        return refuse(header, req, GROUP_DENIED)
    names = req.subscribed_topic_names or []
    if any(not allowed(broker, Op.DESCRIBE, RT.TOPIC, n) for n in names):
        return refuse(header, req, TOPIC_DENIED)
    return await handler(broker, header, req)


@authorizes(ApiKey.CONSUMER_GROUP_DESCRIBE)
async def consumer_group_describe(
    broker: Broker, header: RequestHeader, req: Any, handler: Handler
) -> Any:
    """DESCRIBE of each group; a group whose members are assigned topics the client may
    not describe is answered TOPIC_AUTHORIZATION_FAILED, without its members."""
    good = [g for g in req.group_ids if _group_ok(broker, Op.DESCRIBE, g)]
    resp = await handler(broker, header, replaced(req, group_ids=good))
    Described = type(resp).DescribedGroup
    for group_id in req.group_ids:
        if group_id not in good:
            resp.groups.append(Described(error_code=GROUP_DENIED, group_id=group_id))
    for group in resp.groups:
        if group.error_code != 0:
            continue
        topics = {
            tp.topic_name
            for m in group.members
            for a in (m.assignment, m.target_assignment)
            for tp in a.topic_partitions
        }
        if any(not allowed(broker, Op.DESCRIBE, RT.TOPIC, t) for t in topics):
            group.error_code, group.error_message = TOPIC_DENIED, DESCRIBED_UNAUTHORIZED
            group.members = []
        elif req.include_authorized_operations:
            group.authorized_operations = authorized_operations(broker, RT.GROUP, group.group_id)
    return resp
