"""ElectLeaders, AlterPartitionReassignments, ListPartitionReassignments and
DescribeTopicPartitions: partition administration as Kafka's KRaft controller and
metadata cache answer it (ReplicationControlManager, DescribeTopicPartitionsRequestHandler).

strom is a single broker that never moves leadership or replicas: every partition
already has its preferred leader and no reassignment is ever in progress, so the
answers are Kafka's for a cluster in that state, with Kafka's error messages.
"""

from __future__ import annotations

from collections.abc import Iterable

from strom.broker import cluster_admin
from strom.broker.authorized_ops import authorized_operations
from strom.broker.broker import Broker
from strom.broker.handlers import handles
from strom.common.acl import ResourceType
from strom.common.names import INTERNAL_TOPICS, topic_name_problem
from strom.common.types import TopicPartition
from strom.metadata.store import PartitionInfo, TopicInfo
from strom.protocol.api_versions import ApiKey
from strom.protocol.errors import ErrorCode
from strom.protocol.frame import RequestHeader
from strom.protocol.generated.alter_partition_reassignments import (
    AlterPartitionReassignmentsRequest,
    AlterPartitionReassignmentsResponse,
)
from strom.protocol.generated.describe_topic_partitions import (
    DescribeTopicPartitionsRequest,
    DescribeTopicPartitionsResponse,
)
from strom.protocol.generated.elect_leaders import ElectLeadersRequest, ElectLeadersResponse
from strom.protocol.generated.list_partition_reassignments import (
    ListPartitionReassignmentsRequest,
    ListPartitionReassignmentsResponse,
)
from strom.protocol.wire import ZERO_UUID

PREFERRED = 0
UNCLEAN = 1
NO_LEADER = -1
# Errors.message() of the codes Kafka answers with its default text (ApiError(Errors)).
ELECTION_NOT_NEEDED_MESSAGE = "Leader election not needed for topic partition."
PREFERRED_LEADER_NOT_AVAILABLE_MESSAGE = "The preferred leader was not available."
ELIGIBLE_LEADERS_NOT_AVAILABLE_MESSAGE = "Eligible topic partition leaders are not available."
# max.request.partition.size.limit, Kafka's default: the most partitions one answer holds.
MAX_REQUEST_PARTITION_SIZE_LIMIT = 2000
# AuthHelper.authorizedOperations without an authorizer: every operation a TOPIC supports
# (READ 3, WRITE 4, CREATE 5, DELETE 6, ALTER 7, DESCRIBE 8, DESCRIBE_CONFIGS 10,
# ALTER_CONFIGS 11) as a bit field (strom.broker.authorized_ops).
TOPIC_AUTHORIZED_OPERATIONS = sum(1 << op for op in (3, 4, 5, 6, 7, 8, 10, 11))

PartitionResult = ElectLeadersResponse.PartitionResult
ElectionResult = ElectLeadersResponse.ReplicaElectionResult
ReassignResult = AlterPartitionReassignmentsResponse.ReassignablePartitionResponse
DtpTopic = DescribeTopicPartitionsResponse.DescribeTopicPartitionsResponseTopic
DtpPartition = DescribeTopicPartitionsResponse.DescribeTopicPartitionsResponsePartition
DtpCursor = DescribeTopicPartitionsResponse.Cursor


def _partition(topic: TopicInfo, index: int) -> PartitionInfo | None:
    return next((p for p in topic.partitions if p.partition == index), None)


# -- ElectLeaders ---------------------------------------------------------------


def _elect(broker: Broker, topic: str, index: int, election_type: int) -> tuple[int, str | None]:
    """ReplicationControlManager.electLeader: (error code, message) for one partition."""
    info = broker.topic(topic)
    if info is None:
        return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"No such topic as {topic}"
    part = _partition(info, index)
    if part is None:
        return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"No such partition as {topic}-{index}"
    preferred = part.replicas[0] if part.replicas else NO_LEADER
    if (election_type == PREFERRED and part.leader == preferred) or (
        election_type == UNCLEAN and part.leader != NO_LEADER
    ):
        return ErrorCode.ELECTION_NOT_NEEDED, ELECTION_NOT_NEEDED_MESSAGE
    # strom moves no leadership: Kafka's answer when no election record can be built.
    if election_type == PREFERRED:
        return ErrorCode.PREFERRED_LEADER_NOT_AVAILABLE, PREFERRED_LEADER_NOT_AVAILABLE_MESSAGE
    return ErrorCode.ELIGIBLE_LEADERS_NOT_AVAILABLE, ELIGIBLE_LEADERS_NOT_AVAILABLE_MESSAGE


def _elect_all(broker: Broker, election_type: int) -> list[ElectionResult]:
    """Null topic_partitions: every topic gets an entry, listing only the partitions whose
    election did not answer ELECTION_NOT_NEEDED."""
    results = []
    for name in sorted(broker.image.topics):
        info = broker.image.topics[name]
        entry = ElectionResult(topic=name, partition_result=[])
        for part in info.partitions:
            code, message = _elect(broker, name, part.partition, election_type)
            if code != ErrorCode.ELECTION_NOT_NEEDED:
                entry.partition_result.append(
                    PartitionResult(
                        partition_id=part.partition, error_code=code, error_message=message
                    )
                )
        results.append(entry)
    return results


def _elect_failed(req: ElectLeadersRequest, code: int, message: str) -> ElectLeadersResponse:
    """ElectLeadersRequest.getErrorResponse: the error on every requested partition."""
    results = [
        ElectionResult(
            topic=t.topic,
            partition_result=[
                PartitionResult(partition_id=p, error_code=code, error_message=message)
                for p in t.partitions
            ],
        )
        for t in req.topic_partitions or []
    ]
    return ElectLeadersResponse(
        throttle_time_ms=0, error_code=code, replica_election_results=results
    )


@handles(ApiKey.ELECT_LEADERS)
async def handle_elect_leaders(
    broker: Broker, header: RequestHeader, req: ElectLeadersRequest
) -> ElectLeadersResponse:
    election_type = req.election_type if header.api_version >= 1 else PREFERRED
    if req.topic_partitions is not None and not req.topic_partitions:
        return ElectLeadersResponse(throttle_time_ms=0, error_code=0, replica_election_results=[])
    if broker.cluster is not None and election_type in (PREFERRED, UNCLEAN):
        return await cluster_admin.elect_leaders(broker, req, election_type)
    if election_type not in (PREFERRED, UNCLEAN):
        return _elect_failed(
            req, ErrorCode.INVALID_REQUEST, f"Unknown election type {election_type}"
        )
    if req.topic_partitions is None:
        results = _elect_all(broker, election_type)
    else:
        results = []
        for t in req.topic_partitions:
            entry = ElectionResult(topic=t.topic, partition_result=[])
            for p in t.partitions:
                code, message = _elect(broker, t.topic, p, election_type)
                entry.partition_result.append(
                    PartitionResult(partition_id=p, error_code=code, error_message=message)
                )
            results.append(entry)
    return ElectLeadersResponse(throttle_time_ms=0, error_code=0, replica_election_results=results)


# -- partition reassignments -------------------------------------------------------


def _target_problem(target: list[int], registered: set[int]) -> str | None:
    """ReplicationControlManager.validateManualPartitionAssignment, brokers in id order."""
    if not target:
        return "The manual partition assignment includes an empty replica list."
    previous = None
    for broker_id in sorted(target):
        if broker_id not in registered:
            return (
                f"The manual partition assignment includes broker {broker_id}, "
                "but no such broker is registered."
            )
        if broker_id == previous:
            return (
                f"The manual partition assignment includes the broker {broker_id} more than once."
            )
        previous = broker_id
    return None


def _reassign(
    broker: Broker, topic: str, target: AlterPartitionReassignmentsRequest.ReassignablePartition
) -> tuple[int, str | None]:
    """ReplicationControlManager.alterPartitionReassignment: (error code, message)."""
    info = broker.topic(topic)
    if info is None:
        return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"Unable to find a topic named {topic}."
    part = _partition(info, target.partition_index)
    if part is None:
        return (
            ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
            f"Unable to find partition {topic}:{target.partition_index}.",
        )
    if target.replicas is None:
        # NoReassignmentInProgressException with the default text: ApiError drops it.
        return ErrorCode.NO_REASSIGNMENT_IN_PROGRESS, None
    problem = _target_problem(target.replicas, _registered(broker))
    if problem is not None:
        return ErrorCode.INVALID_REPLICA_ASSIGNMENT, problem
    if list(target.replicas) != list(part.replicas):
        # Only reachable when the stored replicas name a broker id no longer registered.
        return (
            ErrorCode.INVALID_REPLICA_ASSIGNMENT,
            f"strom cannot move partition {topic}:{target.partition_index} from replicas "
            f"{list(part.replicas)} to {list(target.replicas)}.",
        )
    return ErrorCode.NONE, None  # already so: Kafka writes no record and answers NONE


def _registered(broker: Broker) -> set[int]:
    return set(broker.image.brokers) or {broker.node_id}


@handles(ApiKey.ALTER_PARTITION_REASSIGNMENTS)
async def handle_alter_partition_reassignments(
    broker: Broker, header: RequestHeader, req: AlterPartitionReassignmentsRequest
) -> AlterPartitionReassignmentsResponse:
    if not req.topics:
        # QuorumController answers a fresh response data: its error message is "" not null.
        return AlterPartitionReassignmentsResponse(throttle_time_ms=0, error_code=0)
    if broker.cluster is not None:
        return await cluster_admin.alter_reassignments(broker, req)
    responses = []
    for t in req.topics:
        partitions = []
        for p in t.partitions:
            code, message = _reassign(broker, t.name, p)
            partitions.append(
                ReassignResult(
                    partition_index=p.partition_index, error_code=code, error_message=message
                )
            )
        responses.append(
            AlterPartitionReassignmentsResponse.ReassignableTopicResponse(
                name=t.name, partitions=partitions
            )
        )
    return AlterPartitionReassignmentsResponse(
        throttle_time_ms=0, error_code=0, error_message=None, responses=responses
    )


@handles(ApiKey.LIST_PARTITION_REASSIGNMENTS)
async def handle_list_partition_reassignments(
    broker: Broker, header: RequestHeader, req: ListPartitionReassignmentsRequest
) -> ListPartitionReassignmentsResponse:
    if broker.cluster is not None:
        return await cluster_admin.list_reassignments(broker, req)
    # No reassignment is ever in progress on a single node; Kafka skips unknown topics
    # and partitions.
    return ListPartitionReassignmentsResponse(
        throttle_time_ms=0, error_code=0, error_message=None, topics=[]
    )


# -- DescribeTopicPartitions (KIP-966) ---------------------------------------------------


def _java_order(name: str) -> bytes:
    """Java's String.compareTo order: UTF-16 code units."""
    return name.encode("utf-16-be", "surrogatepass")


def _int32(n: int) -> int:
    return (n + 2**31) % 2**32 - 2**31


def _dtp_failed(req: DescribeTopicPartitionsRequest, code: int) -> DescribeTopicPartitionsResponse:
    """DescribeTopicPartitionsRequest.getErrorResponse: every requested topic, in order."""
    return DescribeTopicPartitionsResponse(
        throttle_time_ms=0,
        topics=[
            DtpTopic(error_code=code, name=t.name, is_internal=False, partitions=[])
            for t in req.topics
        ],
    )


def _dtp_partitions(
    broker: Broker, topic: TopicInfo, start: int, max_count: int
) -> tuple[list[DtpPartition], int]:
    """KRaftMetadataCache.getPartitionMetadataForDescribeTopicResponse: the partitions from
    ``start`` (at most ``max_count``) and the next index left out (-1 when none is)."""
    size = len(topic.partitions)
    upper = min(size, _int32(start + max_count))
    next_index = upper if upper < size else -1
    registered = _registered(broker)
    parts = []
    for index in range(start, upper):
        p = _partition(topic, index)
        if p is None:
            continue
        parts.append(
            DtpPartition(
                error_code=0,
                partition_index=index,
                leader_id=p.leader if p.leader in registered else NO_LEADER,
                leader_epoch=p.leader_epoch,
                replica_nodes=list(p.replicas),
                isr_nodes=list(p.isr),
                eligible_leader_replicas=[],
                last_known_elr=[],
                offline_replicas=_offline_replicas(broker, topic.name, p, registered),
            )
        )
    return parts, next_index


def _offline_replicas(
    broker: Broker, topic: str, p: PartitionInfo, registered: set[int]
) -> list[int]:
    """Replicas on no registered broker, or on this broker in an offline log directory."""
    log_dir = broker.logs.dir_of(TopicPartition(topic, p.partition))
    dir_offline = log_dir is not None and log_dir in broker.logs.offline_dirs
    return [r for r in p.replicas if r not in registered or (r == broker.node_id and dir_offline)]


def _unknown_topic(name: str) -> DtpTopic:
    code = (
        ErrorCode.INVALID_TOPIC_EXCEPTION
        if topic_name_problem(name)
        else ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    )
    return DtpTopic(
        error_code=code,
        name=name,
        topic_id=ZERO_UUID,
        is_internal=name in INTERNAL_TOPICS,
        partitions=[],
    )


def _describe_topics(
    broker: Broker,
    names: Iterable[str],
    cursor: DescribeTopicPartitionsRequest.Cursor | None,
    limit: int,
    fetch_all: bool,
) -> DescribeTopicPartitionsResponse:
    """KRaftMetadataCache.describeTopicResponse: topics in name order until ``limit``
    partitions are out; next_cursor names the first partition left out."""
    resp = DescribeTopicPartitionsResponse(throttle_time_ms=0, topics=[], next_cursor=None)
    remaining = limit
    for name in names:
        if remaining == 0:
            resp.next_cursor = DtpCursor(topic_name=name, partition_index=0)
            break
        info = broker.topic(name)
        if info is None:
            if not fetch_all:
                resp.topics.append(_unknown_topic(name))
            continue
        start = cursor.partition_index if cursor is not None and name == cursor.topic_name else 0
        parts, next_index = _dtp_partitions(broker, info, start, remaining)
        resp.topics.append(
            DtpTopic(
                error_code=0,
                name=name,
                topic_id=info.topic_id,
                is_internal=name in INTERNAL_TOPICS,
                partitions=parts,
            )
        )
        if next_index != -1:
            resp.next_cursor = DtpCursor(topic_name=name, partition_index=next_index)
            break
        remaining -= len(parts)
    return resp


@handles(ApiKey.DESCRIBE_TOPIC_PARTITIONS)
async def handle_describe_topic_partitions(
    broker: Broker, header: RequestHeader, req: DescribeTopicPartitionsRequest
) -> DescribeTopicPartitionsResponse:
    cursor = req.cursor
    floor = _java_order(cursor.topic_name if cursor is not None else "")
    fetch_all = not req.topics
    candidates = broker.image.topics if fetch_all else [t.name for t in req.topics]
    names = {n for n in candidates if _java_order(n) >= floor}
    if not fetch_all and cursor is not None and cursor.topic_name not in names:
        return _dtp_failed(req, ErrorCode.INVALID_REQUEST)
    if cursor is not None and cursor.partition_index < 0:
        return _dtp_failed(req, ErrorCode.INVALID_REQUEST)
    if cursor is None and "" in names:
        # Kafka reads the absent cursor's partition for the topic named "" (the cursor
        # name it assumes): a NullPointerException, answered as UNKNOWN_SERVER_ERROR.
        return _dtp_failed(req, ErrorCode.UNKNOWN_SERVER_ERROR)
    limit = max(min(MAX_REQUEST_PARTITION_SIZE_LIMIT, req.response_partition_limit), 1)
    resp = _describe_topics(broker, sorted(names, key=_java_order), cursor, limit, fetch_all)
    for topic in resp.topics:  # Kafka fills them for unknown topics too
        topic.topic_authorized_operations = authorized_operations(
            broker, ResourceType.TOPIC, topic.name or ""
        )
    return resp
