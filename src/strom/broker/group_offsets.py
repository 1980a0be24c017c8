"""The offset APIs of groups (OffsetCommit, OffsetDelete, OffsetFetch) in the group
coordinator's terms: each request version adapted to the coordinator shard and its
answers built back for that version. The handlers are in groups.py; this module
registers none.
"""

from __future__ import annotations

from typing import Any

from strom.broker.broker import Broker
from strom.broker.group_runtime import GroupRuntime
from strom.coordinator.group.base import OffsetAndMetadata
from strom.coordinator.group.offsets import CommitRequest, OffsetCommit
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.generated.offset_commit import OffsetCommitRequest, OffsetCommitResponse
from strom.protocol.generated.offset_delete import OffsetDeleteRequest, OffsetDeleteResponse
from strom.protocol.generated.offset_fetch import OffsetFetchRequest, OffsetFetchResponse

FetchTopics = list[tuple[str, list[int]]] | None
FetchRows = list[tuple[str, list[tuple[int, OffsetAndMetadata | None]]]]


def partition_exists(broker: Broker, topic: str, partition: int) -> bool:
    info = broker.topic(topic)
    return info is not None and 0 <= partition < len(info.partitions)


# -- OffsetCommit / OffsetDelete -----------------------------------------------------------


def commit_request(req: OffsetCommitRequest, version: int) -> CommitRequest:
    return CommitRequest(
        group_id=req.group_id,
        generation_id=req.generation_id_or_member_epoch,
        member_id=req.member_id,
        group_instance_id=req.group_instance_id if version >= 7 else None,
        retention_time_ms=req.retention_time_ms if 2 <= version <= 4 else -1,
        partitions=[
            OffsetCommit(
                t.name,
                p.partition_index,
                p.committed_offset,
                p.committed_leader_epoch if version >= 6 else -1,
                p.committed_metadata,
                p.commit_timestamp if version == 1 else -1,
            )
            for t in req.topics
            for p in t.partitions
        ],
        api_version=version,
    )


def commit_response(
    req: OffsetCommitRequest, errors: dict[tuple[str, int], Any]
) -> OffsetCommitResponse:
    Topic, Partition = (
        OffsetCommitResponse.OffsetCommitResponseTopic,
        (OffsetCommitResponse.OffsetCommitResponsePartition),
    )
    return OffsetCommitResponse(
        topics=[
            Topic(
                t.name,
                [
                    Partition(p.partition_index, errors[(t.name, p.partition_index)])
                    for p in t.partitions
                ],
            )
            for t in req.topics
        ]
    )


def delete_response(
    req: OffsetDeleteRequest, errors: dict[tuple[str, int], ErrorCode]
) -> OffsetDeleteResponse:
    Topic = OffsetDeleteResponse.OffsetDeleteResponseTopic
    Partition = OffsetDeleteResponse.OffsetDeleteResponsePartition
    return OffsetDeleteResponse(
        topics=[
            Topic(
                t.name,
                [
                    Partition(
                        p.partition_index,
                        errors.get(
                            (t.name, p.partition_index), ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                        ),
                    )
                    for p in t.partitions
                ],
            )
            for t in req.topics
        ]
    )


# -- OffsetFetch -----------------------------------------------------------------------------


def _fetch(
    rt: GroupRuntime,
    group_id: str,
    topics: FetchTopics,
    member: tuple[str | None, int] = (None, -1),
) -> tuple[ErrorCode, FetchRows]:
    """``member``: the member id and epoch of OffsetFetch v9+ (checked in consumer groups)."""
    try:
        _, shard = rt.shard(group_id)
    except KafkaError as e:
        return e.code, []
    member_error = shard.fetch_member_error(group_id, *member)
    if member_error is not None:
        return member_error, []
    wanted = None if topics is None else [(t, p) for t, parts in topics for p in parts]
    found = shard.fetch_offsets(group_id, wanted)
    rows: FetchRows = []
    for (topic, partition), committed in found.items():
        if not rows or rows[-1][0] != topic:
            rows.append((topic, []))
        rows[-1][1].append((partition, committed))
    return ErrorCode.NONE, rows


def _partition_fields(partition: int, o: OffsetAndMetadata | None, code: int) -> dict[str, Any]:
    return {
        "partition_index": partition,
        "committed_offset": o.offset if o is not None else -1,
        "committed_leader_epoch": o.leader_epoch if o is not None else -1,
        "metadata": o.metadata if o is not None else "",
        "error_code": code,
    }


def _fetch_group(rt: GroupRuntime, group: OffsetFetchRequest.OffsetFetchRequestGroup) -> Any:
    R = OffsetFetchResponse
    topics = None if group.topics is None else [(t.name, t.partition_indexes) for t in group.topics]
    error, rows = _fetch(rt, group.group_id, topics, (group.member_id, group.member_epoch))
    return R.OffsetFetchResponseGroup(
        group_id=group.group_id,
        error_code=error,
        topics=[
            R.OffsetFetchResponseTopics(
                topic,
                [R.OffsetFetchResponsePartitions(**_partition_fields(p, o, 0)) for p, o in parts],
            )
            for topic, parts in rows
        ],
    )


def offset_fetch_response(
    rt: GroupRuntime, req: OffsetFetchRequest, version: int
) -> OffsetFetchResponse:
    R = OffsetFetchResponse
    if version >= 8:
        return R(groups=[_fetch_group(rt, g) for g in req.groups])
    topics = None if req.topics is None else [(t.name, t.partition_indexes) for t in req.topics]
    error, rows = _fetch(rt, req.group_id, topics)
    if error != ErrorCode.NONE:
        if version >= 2:
            return R(error_code=error)
        rows = [(t, [(p, None) for p in parts]) for t, parts in topics or []]
    return R(
        error_code=error,
        topics=[
            R.OffsetFetchResponseTopic(
                topic,
                [
                    R.OffsetFetchResponsePartition(**_partition_fields(p, o, error))
                    for p, o in parts
                ],
            )
            for topic, parts in rows
        ],
    )
