"""ElectLeaders and partition reassignments in a ZooKeeper cluster: the controller does
them (on its thread); a broker that is not the controller answers NOT_CONTROLLER, and
clients send them to the controller that Metadata names."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from strom.broker.broker import Broker
from strom.common.types import TopicPartition
from strom.protocol.errors import ErrorCode, NotControllerError
from strom.protocol.generated.alter_partition_reassignments import (
    AlterPartitionReassignmentsRequest,
    AlterPartitionReassignmentsResponse,
)
from strom.protocol.generated.elect_leaders import ElectLeadersRequest, ElectLeadersResponse
from strom.protocol.generated.list_partition_reassignments import (
    ListPartitionReassignmentsRequest,
    ListPartitionReassignmentsResponse,
)

if TYPE_CHECKING:
    from strom.controller.reassign import Controller

R = TypeVar("R")
NOT_CONTROLLER_MESSAGE = "This is not the correct controller for this cluster."
PartitionResult = ElectLeadersResponse.PartitionResult
ElectionResult = ElectLeadersResponse.ReplicaElectionResult
LPR = ListPartitionReassignmentsResponse


async def _call(broker: Broker, fn: Callable[[Controller], R]) -> R:
    assert broker.cluster is not None
    return await broker.cluster.runtime.call(fn)


async def elect_leaders(
    broker: Broker, req: ElectLeadersRequest, election_type: int
) -> ElectLeadersResponse:
    tps = (
        None
        if req.topic_partitions is None
        else [TopicPartition(t.topic, p) for t in req.topic_partitions for p in t.partitions]
    )
    try:
        outcomes = await _call(broker, lambda c: c.elect_leaders(tps, election_type))
    except NotControllerError:
        results = [
            ElectionResult(
                topic=t.topic,
                partition_result=[
                    PartitionResult(p, ErrorCode.NOT_CONTROLLER, NOT_CONTROLLER_MESSAGE)
                    for p in t.partitions
                ],
            )
            for t in req.topic_partitions or []
        ]
        return ElectLeadersResponse(
            throttle_time_ms=0,
            error_code=ErrorCode.NOT_CONTROLLER,
            replica_election_results=results,
        )
    by_topic: dict[str, list[PartitionResult]] = {}
    for tp, (code, message) in sorted(outcomes.items()):
        if tps is None and code == ErrorCode.ELECTION_NOT_NEEDED:
            by_topic.setdefault(tp.topic, [])
            continue
        by_topic.setdefault(tp.topic, []).append(PartitionResult(tp.partition, code, message))
    return ElectLeadersResponse(
        throttle_time_ms=0,
        error_code=0,
        replica_election_results=[ElectionResult(t, ps) for t, ps in by_topic.items()],
    )


async def alter_reassignments(
    broker: Broker, req: AlterPartitionReassignmentsRequest
) -> AlterPartitionReassignmentsResponse:
    targets = {
        TopicPartition(t.name, p.partition_index): (
            tuple(p.replicas) if p.replicas is not None else None
        )
        for t in req.topics
        for p in t.partitions
    }
    try:
        outcomes = await _call(broker, lambda c: c.alter_reassignments(targets))
    except NotControllerError:
        return AlterPartitionReassignmentsResponse(
            error_code=ErrorCode.NOT_CONTROLLER, error_message=NOT_CONTROLLER_MESSAGE
        )
    Resp = AlterPartitionReassignmentsResponse
    topics: dict[str, list[AlterPartitionReassignmentsResponse.ReassignablePartitionResponse]] = {}
    for t in req.topics:
        for p in t.partitions:
            code, message = outcomes[TopicPartition(t.name, p.partition_index)]
            topics.setdefault(t.name, []).append(
                Resp.ReassignablePartitionResponse(p.partition_index, code, message)
            )
    return Resp(
        error_code=0,
        error_message=None,
        responses=[Resp.ReassignableTopicResponse(n, ps) for n, ps in topics.items()],
    )


async def list_reassignments(
    broker: Broker, req: ListPartitionReassignmentsRequest
) -> ListPartitionReassignmentsResponse:
    tps = (
        None
        if req.topics is None
        else [TopicPartition(t.name, p) for t in req.topics for p in t.partition_indexes]
    )
    try:
        ongoing = await _call(broker, lambda c: c.list_reassignments(tps))
    except NotControllerError:
        return LPR(error_code=ErrorCode.NOT_CONTROLLER, error_message=NOT_CONTROLLER_MESSAGE)
    by_topic: dict[str, list[LPR.OngoingPartitionReassignment]] = {}
    for tp, a in sorted(ongoing.items()):
        by_topic.setdefault(tp.topic, []).append(
            LPR.OngoingPartitionReassignment(
                tp.partition, list(a.replicas), list(a.adding), list(a.removing)
            )
        )
    return LPR(
        error_code=0,
        error_message=None,
        topics=[LPR.OngoingTopicReassignment(n, ps) for n, ps in by_topic.items()],
    )
