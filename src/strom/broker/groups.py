"""Group APIs: FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit,
OffsetFetch, OffsetDelete, DescribeGroups, ListGroups, DeleteGroups.

Handlers adapt request versions to the coordinator shards (strom.coordinator.group)
and their answers back (the offset APIs' in group_offsets.py); the runtime
(group_runtime.py) owns placement, waiting and appends. JoinGroup records the
connection's ``CLIENT_HOST`` (strom.broker.broker) as the member's host.
"""

from __future__ import annotations

from strom.broker.authorized_ops import authorized_operations
from strom.broker.broker import CLIENT_HOST, Broker
from strom.broker.group_offsets import (
    commit_request,
    commit_response,
    delete_response,
    offset_fetch_response,
    partition_exists,
)
from strom.broker.group_runtime import GroupRuntime
from strom.broker.handlers import handles
from strom.common.acl import ResourceType
from strom.coordinator.group.membership import JoinRequest
from strom.protocol.api_versions import ApiKey
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.frame import RequestHeader
from strom.protocol.generated.delete_groups import DeleteGroupsRequest, DeleteGroupsResponse
from strom.protocol.generated.describe_groups import DescribeGroupsRequest, DescribeGroupsResponse
from strom.protocol.generated.find_coordinator import (
    FindCoordinatorRequest,
    FindCoordinatorResponse,
)
from strom.protocol.generated.heartbeat import HeartbeatRequest, HeartbeatResponse
from strom.protocol.generated.join_group import JoinGroupRequest, JoinGroupResponse
from strom.protocol.generated.leave_group import LeaveGroupRequest, LeaveGroupResponse
from strom.protocol.generated.list_groups import ListGroupsRequest, ListGroupsResponse
from strom.protocol.generated.offset_commit import OffsetCommitRequest, OffsetCommitResponse
from strom.protocol.generated.offset_delete import OffsetDeleteRequest, OffsetDeleteResponse
from strom.protocol.generated.offset_fetch import OffsetFetchRequest, OffsetFetchResponse
from strom.protocol.generated.sync_group import SyncGroupRequest, SyncGroupResponse

KEY_TYPE_GROUP = 0
KEY_TYPE_TRANSACTION = 1


def runtime(broker: Broker) -> GroupRuntime:
    groups: GroupRuntime = broker.groups
    return groups


def _error_message(code: ErrorCode) -> str | None:
    return None if code == ErrorCode.NONE else code.name


# -- FindCoordinator ----------------------------------------------------------------------


async def _find_one(broker: Broker, key: str, key_type: int) -> FindCoordinatorResponse.Coordinator:
    """The coordinator of ``key``: the leader of its partition of the internal topic,
    on whichever broker it is (the endpoint of the listener the client used)."""
    out = FindCoordinatorResponse.Coordinator(key=key, node_id=-1, host="", port=-1)
    if key_type == KEY_TYPE_TRANSACTION:  # the transaction coordinator (txn_runtime.py)
        code, leader = await broker.transactions.find_coordinator(key)
    else:
        code, leader = await runtime(broker).find_coordinator(key)
    if code == ErrorCode.NONE:
        endpoint = broker.broker_endpoint(leader)
        if endpoint is None:
            code = ErrorCode.COORDINATOR_NOT_AVAILABLE
        else:
            out.node_id = leader
            out.host, out.port = endpoint
    out.error_code, out.error_message = code, _error_message(code)
    return out


@handles(ApiKey.FIND_COORDINATOR)
async def handle_find_coordinator(
    broker: Broker, header: RequestHeader, req: FindCoordinatorRequest
) -> FindCoordinatorResponse:
    if req.key_type not in (KEY_TYPE_GROUP, KEY_TYPE_TRANSACTION):
        raise KafkaError(ErrorCode.INVALID_REQUEST, f"unknown key type {req.key_type}")
    if header.api_version >= 4:
        found = [await _find_one(broker, key, req.key_type) for key in req.coordinator_keys]
        return FindCoordinatorResponse(coordinators=found)
    one = await _find_one(broker, req.key, req.key_type)
    return FindCoordinatorResponse(
        error_code=one.error_code,
        error_message=one.error_message,
        node_id=one.node_id,
        host=one.host,
        port=one.port,
    )


# -- JoinGroup / SyncGroup / Heartbeat / LeaveGroup ------------------------------------------


def _join_error(member_id: str, code: ErrorCode) -> JoinGroupResponse:
    return JoinGroupResponse(error_code=code, generation_id=-1, leader="", member_id=member_id)


@handles(ApiKey.JOIN_GROUP)
async def handle_join_group(
    broker: Broker, header: RequestHeader, req: JoinGroupRequest
) -> JoinGroupResponse:
    version = header.api_version
    rt = runtime(broker)
    try:
        partition, shard = rt.shard(req.group_id)
    except KafkaError as e:
        resp = _join_error(req.member_id, e.code)
    else:
        join = JoinRequest(
            group_id=req.group_id,
            member_id=req.member_id,
            group_instance_id=req.group_instance_id if version >= 5 else None,
            protocol_type=req.protocol_type,
            protocols=[(p.name, p.metadata) for p in req.protocols],
            session_timeout_ms=req.session_timeout_ms,
            rebalance_timeout_ms=(
                req.rebalance_timeout_ms if version >= 1 else req.session_timeout_ms
            ),
            client_id=header.client_id or "",
            client_host=CLIENT_HOST.get(),
            require_known_member_id=version >= 4,
            supports_skip_assignment=version >= 9,
        )
        resp = await rt.call(partition, lambda h: shard.join_group(h, join, broker.now_ms()))
    if version < 7 and resp.protocol_name is None:
        resp.protocol_name = ""
    return resp


@handles(ApiKey.SYNC_GROUP)
async def handle_sync_group(
    broker: Broker, header: RequestHeader, req: SyncGroupRequest
) -> SyncGroupResponse:
    rt = runtime(broker)
    try:
        partition, shard = rt.shard(req.group_id)
    except KafkaError as e:
        code = e.code
        if code == ErrorCode.COORDINATOR_LOAD_IN_PROGRESS:
            code = ErrorCode.REBALANCE_IN_PROGRESS
        return SyncGroupResponse(error_code=code)
    resp: SyncGroupResponse = await rt.call(
        partition, lambda h: shard.sync_group(h, req, broker.now_ms())
    )
    return resp


@handles(ApiKey.HEARTBEAT)
async def handle_heartbeat(
    broker: Broker, header: RequestHeader, req: HeartbeatRequest
) -> HeartbeatResponse:
    try:
        _, shard = runtime(broker).shard(req.group_id)
    except KafkaError as e:
        if e.code == ErrorCode.COORDINATOR_LOAD_IN_PROGRESS:
            return HeartbeatResponse()
        return HeartbeatResponse(error_code=e.code)
    return shard.heartbeat(req, broker.now_ms())


@handles(ApiKey.LEAVE_GROUP)
async def handle_leave_group(
    broker: Broker, header: RequestHeader, req: LeaveGroupRequest
) -> LeaveGroupResponse:
    if header.api_version < 3:
        req.members = [LeaveGroupRequest.MemberIdentity(member_id=req.member_id)]
    rt = runtime(broker)
    try:
        partition, shard = rt.shard(req.group_id)
    except KafkaError as e:
        return LeaveGroupResponse(error_code=e.code)
    resp: LeaveGroupResponse = await rt.call(
        partition, lambda h: shard.leave_group(h, req, broker.now_ms())
    )
    if header.api_version < 3 and resp.error_code == ErrorCode.NONE and resp.members:
        resp.error_code = resp.members[0].error_code
    return resp


# -- OffsetCommit / OffsetDelete / OffsetFetch (adapted in group_offsets.py) ------------------


@handles(ApiKey.OFFSET_COMMIT)
async def handle_offset_commit(
    broker: Broker, header: RequestHeader, req: OffsetCommitRequest
) -> OffsetCommitResponse:
    commit = commit_request(req, header.api_version)
    rt = runtime(broker)
    try:
        partition, shard = rt.shard(req.group_id)
    except KafkaError as e:
        code = e.code
        return commit_response(req, {(p.topic, p.partition): code for p in commit.partitions})
    errors = await rt.call(
        partition,
        lambda h: shard.commit_offsets(
            h, commit, broker.now_ms(), lambda t, p: partition_exists(broker, t, p)
        ),
    )
    return commit_response(req, errors)


@handles(ApiKey.OFFSET_DELETE)
async def handle_offset_delete(
    broker: Broker, header: RequestHeader, req: OffsetDeleteRequest
) -> OffsetDeleteResponse:
    rt = runtime(broker)
    try:
        partition, shard = rt.shard(req.group_id)
    except KafkaError as e:
        return OffsetDeleteResponse(error_code=e.code)
    known = [
        (t.name, p.partition_index)
        for t in req.topics
        for p in t.partitions
        if partition_exists(broker, t.name, p.partition_index)
    ]
    error, errors, result = shard.offset_delete(req.group_id, known)
    if error != ErrorCode.NONE:
        return OffsetDeleteResponse(error_code=error)
    await rt.execute(partition, result)
    return delete_response(req, errors)


@handles(ApiKey.OFFSET_FETCH)
async def handle_offset_fetch(
    broker: Broker, header: RequestHeader, req: OffsetFetchRequest
) -> OffsetFetchResponse:
    return offset_fetch_response(runtime(broker), req, header.api_version)


# -- DescribeGroups / ListGroups / DeleteGroups ------------------------------------------------


@handles(ApiKey.DESCRIBE_GROUPS)
async def handle_describe_groups(
    broker: Broker, header: RequestHeader, req: DescribeGroupsRequest
) -> DescribeGroupsResponse:
    out = []
    for group_id in req.groups:
        try:
            _, shard = runtime(broker).shard(group_id)
        except KafkaError as e:
            out.append(DescribeGroupsResponse.DescribedGroup(error_code=e.code, group_id=group_id))
            continue
        out.append(shard.describe_group(group_id))
    if req.include_authorized_operations:
        for group in out:
            if group.error_code == ErrorCode.NONE:
                group.authorized_operations = authorized_operations(
                    broker, ResourceType.GROUP, group.group_id
                )
    return DescribeGroupsResponse(groups=out)


@handles(ApiKey.LIST_GROUPS)
async def handle_list_groups(
    broker: Broker, header: RequestHeader, req: ListGroupsRequest
) -> ListGroupsResponse:
    rt = runtime(broker)
    groups = []
    for shard in rt.shards.values():
        groups += shard.list_groups(req.states_filter, req.types_filter)
    code = ErrorCode.COORDINATOR_LOAD_IN_PROGRESS if rt.loading else ErrorCode.NONE
    return ListGroupsResponse(error_code=code, groups=groups)


@handles(ApiKey.DELETE_GROUPS)
async def handle_delete_groups(
    broker: Broker, header: RequestHeader, req: DeleteGroupsRequest
) -> DeleteGroupsResponse:
    rt = runtime(broker)
    results = []
    for group_id in req.groups_names:
        try:
            partition, shard = rt.shard(group_id)
        except KafkaError as e:
            code = e.code
        else:
            errors, result = shard.delete_groups([group_id], broker.now_ms())
            await rt.execute(partition, result)
            code = errors[group_id]
        results.append(DeleteGroupsResponse.DeletableGroupResult(group_id, code))
    return DeleteGroupsResponse(results=results)
