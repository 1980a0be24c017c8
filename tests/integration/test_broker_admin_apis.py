"""Partition administration and ACL APIs over the raw protocol, with Kafka's exact answers
for a single broker without an authorizer: ElectLeaders, AlterPartitionReassignments,
ListPartitionReassignments, DescribeTopicPartitions, DescribeAcls, CreateAcls and
DeleteAcls; then kafka-python's KafkaAdminClient reading the same answers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from strom.protocol.errors import ErrorCode
from strom.protocol.generated.alter_partition_reassignments import (
    AlterPartitionReassignmentsRequest,
)
from strom.protocol.generated.create_acls import CreateAclsRequest
from strom.protocol.generated.create_topics import CreateTopicsRequest
from strom.protocol.generated.delete_acls import DeleteAclsRequest
from strom.protocol.generated.describe_acls import DescribeAclsRequest
from strom.protocol.generated.describe_topic_partitions import DescribeTopicPartitionsRequest
from strom.protocol.generated.elect_leaders import ElectLeadersRequest
from strom.protocol.generated.list_partition_reassignments import (
    ListPartitionReassignmentsRequest,
)
from strom.protocol.generated.metadata import MetadataRequest
from strom.protocol.wire import ZERO_UUID
from strom.testing.broker import BrokerFactory, BrokerProcess
from strom.testing.wire import RawClient

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("require_strom")]

CT = CreateTopicsRequest
EL = ElectLeadersRequest
APR = AlterPartitionReassignmentsRequest
LPR = ListPartitionReassignmentsRequest
DTP = DescribeTopicPartitionsRequest

NOT_NEEDED = "Leader election not needed for topic partition."
NO_AUTHORIZER_DESCRIBE = "No Authorizer is configured on the broker"
NO_AUTHORIZER = "No Authorizer is configured."
# Every TOPIC operation (READ..ALTER_CONFIGS) as Kafka reports it without an authorizer.
TOPIC_OPS = 3576
OPS_NOT_SET = -2147483648


@pytest.fixture(scope="module")
def broker_overrides() -> dict[str, str]:
    return {"auto.create.topics.enable": "false"}


@pytest.fixture
def raw(broker: BrokerProcess) -> Iterator[RawClient]:
    with RawClient(broker.bootstrap) as client:
        yield client


def create(raw: RawClient, name: str, partitions: int = 1) -> None:
    topic = CT.CreatableTopic(name=name, num_partitions=partitions, replication_factor=1)
    resp = raw.request(CT(topics=[topic], timeout_ms=5000), 7)
    assert resp.topics[0].error_code == 0, resp


def metadata(raw: RawClient, *topics: str) -> Any:
    req = MetadataRequest(
        topics=[MetadataRequest.MetadataRequestTopic(name=t) for t in topics],
        allow_auto_topic_creation=False,
    )
    return raw.request(req, 12)


def node_id(raw: RawClient) -> int:
    return int(metadata(raw).brokers[0].node_id)


def elections(resp: Any) -> list[tuple[str, list[tuple[int, int, str | None]]]]:
    return [
        (r.topic, [(p.partition_id, p.error_code, p.error_message) for p in r.partition_result])
        for r in resp.replica_election_results
    ]


# -- ElectLeaders ------------------------------------------------------------------------


@pytest.mark.parametrize("version", [0, 1, 2])
def test_elect_leaders_named_partitions(raw: RawClient, topic_name: str, version: int) -> None:
    create(raw, topic_name, partitions=2)
    missing = f"missing-{uuid.uuid4().hex[:8]}"
    types = [0] if version == 0 else [0, 1]  # v0 carries no election type: preferred
    for election_type in types:
        req = EL(
            election_type=election_type,
            topic_partitions=[
                EL.TopicPartitions(topic=topic_name, partitions=[1, 0, 5]),
                EL.TopicPartitions(topic=missing, partitions=[0]),
            ],
            timeout_ms=5000,
        )
        resp = raw.request(req, version)
        assert resp.error_code == 0
        assert elections(resp) == [
            (
                topic_name,
                [
                    (1, ErrorCode.ELECTION_NOT_NEEDED, NOT_NEEDED),
                    (0, ErrorCode.ELECTION_NOT_NEEDED, NOT_NEEDED),
                    (
                        5,
                        ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                        f"No such partition as {topic_name}-5",
                    ),
                ],
            ),
            (missing, [(0, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"No such topic as {missing}")]),
        ]


@pytest.mark.parametrize("version", [1, 2])
def test_elect_leaders_unknown_election_type(raw: RawClient, topic_name: str, version: int) -> None:
    create(raw, topic_name)
    message = "Unknown election type 2"
    req = EL(election_type=2, topic_partitions=[EL.TopicPartitions(topic_name, [0, 3])])
    resp = raw.request(req, version)
    assert resp.error_code == ErrorCode.INVALID_REQUEST
    assert elections(resp) == [
        (
            topic_name,
            [(0, ErrorCode.INVALID_REQUEST, message), (3, ErrorCode.INVALID_REQUEST, message)],
        )
    ]
    resp = raw.request(EL(election_type=2, topic_partitions=None), version)
    assert (resp.error_code, elections(resp)) == (ErrorCode.INVALID_REQUEST, [])
    # An empty list asks for nothing: Kafka answers before looking at the type.
    resp = raw.request(EL(election_type=2, topic_partitions=[]), version)
    assert (resp.error_code, elections(resp)) == (0, [])


def test_elect_leaders_every_partition(broker_factory: BrokerFactory) -> None:
    """Null topic_partitions: each topic is listed, but without the partitions that
    need no election, so a broker whose leaders are all preferred lists none."""
    proc = broker_factory({"auto.create.topics.enable": "false"})
    with RawClient(proc.bootstrap) as raw:
        create(raw, "b-topic", partitions=3)
        create(raw, "a-topic", partitions=1)
        for version, election_type in [(0, 0), (1, 0), (1, 1), (2, 0), (2, 1)]:
            resp = raw.request(EL(election_type=election_type, topic_partitions=None), version)
            assert resp.error_code == 0
            assert elections(resp) == [("a-topic", []), ("b-topic", [])]
            resp = raw.request(EL(election_type=election_type, topic_partitions=[]), version)
            assert (resp.error_code, elections(resp)) == (0, [])


# -- partition reassignments ----------------------------------------------------------------


def test_list_partition_reassignments(raw: RawClient, topic_name: str) -> None:
    create(raw, topic_name, partitions=2)
    requests = [
        LPR(topics=None),
        LPR(topics=[]),
        LPR(topics=[LPR.ListPartitionReassignmentsTopics(topic_name, [0, 1, 9])]),
        LPR(topics=[LPR.ListPartitionReassignmentsTopics(f"missing-{topic_name}", [0])]),
    ]
    for req in requests:
        resp = raw.request(req, 0)
        assert (resp.error_code, resp.error_message, resp.topics) == (0, None, [])


def test_alter_partition_reassignments(raw: RawClient, topic_name: str) -> None:
    create(raw, topic_name, partitions=2)
    node = node_id(raw)
    missing = f"missing-{topic_name}"
    rp = APR.ReassignablePartition
    req = APR(
        timeout_ms=5000,
        topics=[
            APR.ReassignableTopic(
                name=topic_name,
                partitions=[
                    rp(0, [node]),
                    rp(1, [node]),
                    rp(0, []),
                    rp(0, [node + 7, node + 3]),
                    rp(0, [node, node]),
                    rp(0, None),
                    rp(7, [node]),
                    rp(7, None),
                ],
            ),
            APR.ReassignableTopic(name=missing, partitions=[rp(0, None), rp(1, [])]),
        ],
    )
    resp = raw.request(req, 0)
    assert (resp.error_code, resp.error_message) == (0, None)
    answers = [
        (t.name, [(p.partition_index, p.error_code, p.error_message) for p in t.partitions])
        for t in resp.responses
    ]
    invalid = ErrorCode.INVALID_REPLICA_ASSIGNMENT
    unknown = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    prefix = "The manual partition assignment includes"
    assert answers == [
        (
            topic_name,
            [
                (0, 0, None),
                (1, 0, None),
                (0, invalid, f"{prefix} an empty replica list."),
                (0, invalid, f"{prefix} broker {node + 3}, but no such broker is registered."),
                (0, invalid, f"{prefix} the broker {node} more than once."),
                (0, ErrorCode.NO_REASSIGNMENT_IN_PROGRESS, None),
                (7, unknown, f"Unable to find partition {topic_name}:7."),
                (7, unknown, f"Unable to find partition {topic_name}:7."),
            ],
        ),
        (
            missing,
            [
                (0, unknown, f"Unable to find a topic named {missing}."),
                (1, unknown, f"Unable to find a topic named {missing}."),
            ],
        ),
    ]
    # Nothing changed: the replicas are the same and nothing is being reassigned.
    part = metadata(raw, topic_name).topics[0].partitions[0]
    assert (part.replica_nodes, part.isr_nodes, part.leader_id) == ([node], [node], node)
    resp = raw.request(LPR(topics=None), 0)
    assert resp.topics == []
    # No topics: Kafka's controller answers fresh response data, whose message is "".
    resp = raw.request(APR(topics=[]), 0)
    assert (resp.error_code, resp.error_message, resp.responses) == (0, "", [])


# -- DescribeTopicPartitions -----------------------------------------------------------


def dtp(raw: RawClient, topics: list[str], limit: int = 2000, cursor: Any = None) -> Any:
    req = DTP(
        topics=[DTP.TopicRequest(name=t) for t in topics],
        response_partition_limit=limit,
        cursor=None if cursor is None else DTP.Cursor(*cursor),
    )
    return raw.request(req, 0)


def page(resp: Any) -> tuple[list[tuple[str | None, int, list[int]]], tuple[str, int] | None]:
    """(topic, error, partition indexes) per topic, and the next cursor."""
    topics = [
        (t.name, t.error_code, [p.partition_index for p in t.partitions]) for t in resp.topics
    ]
    cursor = resp.next_cursor
    return topics, None if cursor is None else (cursor.topic_name, cursor.partition_index)


def test_describe_topic_partitions_fields(raw: RawClient, topic_name: str) -> None:
    create(raw, topic_name, partitions=3)
    node = node_id(raw)
    md = metadata(raw, topic_name).topics[0]
    unknown, invalid = f"{topic_name}-missing", "bad name!"
    resp = dtp(raw, [unknown, topic_name, invalid, topic_name])
    assert resp.throttle_time_ms == 0 and resp.next_cursor is None
    by_name = {t.name: t for t in resp.topics}
    assert [t.name for t in resp.topics] == sorted({unknown, topic_name, invalid})
    found = by_name[topic_name]
    assert (found.error_code, found.topic_id, found.is_internal) == (0, md.topic_id, False)
    assert found.topic_authorized_operations == TOPIC_OPS
    assert [
        (
            p.error_code,
            p.partition_index,
            p.leader_id,
            p.leader_epoch,
            p.replica_nodes,
            p.isr_nodes,
            p.eligible_leader_replicas,
            p.last_known_elr,
            p.offline_replicas,
        )
        for p in found.partitions
    ] == [(0, i, node, md.partitions[i].leader_epoch, [node], [node], [], [], []) for i in range(3)]
    for name, code in [
        (unknown, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION),
        (invalid, ErrorCode.INVALID_TOPIC_EXCEPTION),
    ]:
        t = by_name[name]
        assert (t.error_code, t.topic_id, t.is_internal, t.partitions) == (
            code,
            ZERO_UUID,
            False,
            [],
        )
        assert t.topic_authorized_operations == TOPIC_OPS
    # An internal topic's name is internal even when the topic does not exist yet.
    assert [(t.error_code, t.is_internal) for t in dtp(raw, ["__transaction_state"]).topics] in (
        [(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, True)],
        [(0, True)],
    )


def test_describe_topic_partitions_pagination(raw: RawClient, topic_name: str) -> None:
    a, b, c = f"{topic_name}-a", f"{topic_name}-b", f"{topic_name}-c"  # c does not exist
    create(raw, a, partitions=3)
    create(raw, b, partitions=2)
    unknown = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    cases: list[tuple[list[str], int, Any, Any]] = [
        # the limit cuts a topic: the cursor names its first partition left out
        ([b, a], 2, None, ([(a, 0, [0, 1])], (a, 2))),
        ([a, b], 2, (a, 2), ([(a, 0, [2]), (b, 0, [0])], (b, 1))),
        ([a, b], 2, (b, 1), ([(b, 0, [1])], None)),
        # the limit ends with a topic: the cursor names the next topic at partition 0,
        # even one that does not exist; none when no topic follows
        ([a, b], 3, None, ([(a, 0, [0, 1, 2])], (b, 0))),
        ([a, b], 5, None, ([(a, 0, [0, 1, 2]), (b, 0, [0, 1])], None)),
        ([a, b, c], 5, None, ([(a, 0, [0, 1, 2]), (b, 0, [0, 1])], (c, 0))),
        ([c, a, b], 6, None, ([(a, 0, [0, 1, 2]), (b, 0, [0, 1]), (c, unknown, [])], None)),
        # a limit below 1 is 1
        ([a], 0, None, ([(a, 0, [0])], (a, 1))),
        ([a], -5, None, ([(a, 0, [0])], (a, 1))),
        # topics before the cursor's are left out; a cursor past the topic's end
        ([a, b], 10, (b, 0), ([(b, 0, [0, 1])], None)),
        ([a, b], 10, (a, 7), ([(a, 0, []), (b, 0, [0, 1])], None)),
    ]
    for topics, limit, cursor, expected in cases:
        assert page(dtp(raw, topics, limit, cursor)) == expected, (topics, limit, cursor)


def test_describe_topic_partitions_refused(raw: RawClient, topic_name: str) -> None:
    a, b = f"{topic_name}-a", f"{topic_name}-b"
    create(raw, a)
    bad = ErrorCode.INVALID_REQUEST
    # The cursor's topic must be one of those asked for; its partition must not be < 0.
    for topics, cursor, code in [
        ([b, a, b], (f"{topic_name}-0", 0), bad),
        ([a], (a, -1), bad),
        # Kafka looks up the absent cursor's partition for a topic named "": it fails
        # (NullPointerException) and answers UNKNOWN_SERVER_ERROR.
        ([a, ""], None, ErrorCode.UNKNOWN_SERVER_ERROR),
    ]:
        resp = dtp(raw, topics, 10, cursor)
        assert resp.next_cursor is None
        assert [
            (t.name, t.error_code, t.topic_id, t.is_internal, t.partitions) for t in resp.topics
        ] == [(t, code, ZERO_UUID, False, []) for t in topics]
        assert {t.topic_authorized_operations for t in resp.topics} == {OPS_NOT_SET}


def test_describe_topic_partitions_every_topic(broker_factory: BrokerFactory) -> None:
    """No topics named: every existing topic, in name order, still paginated."""
    proc = broker_factory({"auto.create.topics.enable": "false"})
    with RawClient(proc.bootstrap) as raw:
        create(raw, "y-topic", partitions=1)
        create(raw, "x-topic", partitions=2)
        assert page(dtp(raw, [])) == ([("x-topic", 0, [0, 1]), ("y-topic", 0, [0])], None)
        assert page(dtp(raw, [], 2)) == ([("x-topic", 0, [0, 1])], ("y-topic", 0))
        assert page(dtp(raw, [], 1, ("x-topic", 1))) == ([("x-topic", 0, [1])], ("y-topic", 0))
        assert page(dtp(raw, [], 10, ("y-topic", 0))) == ([("y-topic", 0, [0])], None)
        # The cursor's topic need not exist when every topic is asked for.
        assert page(dtp(raw, [], 10, ("xa", 0))) == ([("y-topic", 0, [0])], None)
        assert page(dtp(raw, [], 10, ("z", 0))) == ([], None)
        assert {t.topic_authorized_operations for t in dtp(raw, []).topics} == {TOPIC_OPS}


# -- ACLs (no authorizer) -----------------------------------------------------------------


def acl_creation(**fields: Any) -> CreateAclsRequest.AclCreation:
    values = {
        "resource_type": 2,  # TOPIC
        "resource_name": "t",
        "resource_pattern_type": 3,  # LITERAL
        "principal": "User:alice",
        "host": "*",
        "operation": 3,  # READ
        "permission_type": 3,  # ALLOW
        **fields,
    }
    return CreateAclsRequest.AclCreation(**values)


def acl_filter(**fields: Any) -> DeleteAclsRequest.DeleteAclsFilter:
    values = {
        "resource_type_filter": 1,  # ANY
        "resource_name_filter": None,
        "pattern_type_filter": 1,  # ANY
        "principal_filter": None,
        "host_filter": None,
        "operation": 1,
        "permission_type": 1,
        **fields,
    }
    return DeleteAclsRequest.DeleteAclsFilter(**values)


@pytest.mark.parametrize("version", [1, 2, 3])
def test_acls_without_an_authorizer(raw: RawClient, version: int) -> None:
    describe = DescribeAclsRequest(
        resource_type_filter=1,
        resource_name_filter=None,
        pattern_type_filter=1,
        principal_filter=None,
        host_filter=None,
        operation=1,
        permission_type=1,
    )
    resp = raw.request(describe, version)
    assert (resp.throttle_time_ms, resp.error_code, resp.error_message, resp.resources) == (
        0,
        ErrorCode.SECURITY_DISABLED,
        NO_AUTHORIZER_DESCRIBE,
        [],
    )
    creations = [acl_creation(), acl_creation(resource_type=3, resource_name="g")]
    resp = raw.request(CreateAclsRequest(creations=creations), version)
    assert [(r.error_code, r.error_message) for r in resp.results] == [
        (ErrorCode.SECURITY_DISABLED, NO_AUTHORIZER)
    ] * 2
    assert raw.request(CreateAclsRequest(creations=[]), version).results == []
    filters = [acl_filter(), acl_filter(resource_type_filter=2, resource_name_filter="t")]
    resp = raw.request(DeleteAclsRequest(filters=filters), version)
    assert [(r.error_code, r.error_message, r.matching_acls) for r in resp.filter_results] == [
        (ErrorCode.SECURITY_DISABLED, NO_AUTHORIZER, [])
    ] * 2
    assert raw.request(DeleteAclsRequest(filters=[]), version).filter_results == []


@pytest.mark.parametrize(
    "request_",
    [
        DescribeAclsRequest(
            resource_type_filter=0, pattern_type_filter=1, operation=1, permission_type=1
        ),
        DescribeAclsRequest(
            resource_type_filter=1, pattern_type_filter=0, operation=1, permission_type=1
        ),
        CreateAclsRequest(creations=[acl_creation(), acl_creation(operation=0)]),
        CreateAclsRequest(creations=[acl_creation(permission_type=0)]),
        DeleteAclsRequest(filters=[acl_filter(pattern_type_filter=0)]),
        DeleteAclsRequest(filters=[acl_filter(permission_type=0)]),
    ],
    ids=[
        "describe-resource",
        "describe-pattern",
        "create-op",
        "create-perm",
        "delete-pattern",
        "delete-perm",
    ],
)
def test_acl_requests_with_unknown_elements_close_the_connection(
    broker: BrokerProcess, request_: Any
) -> None:
    """Kafka refuses such a request while parsing it and closes the connection."""
    with RawClient(broker.bootstrap) as raw:
        raw.send(request_, 3)
        assert raw.is_closed_by_peer()
    with RawClient(broker.bootstrap) as raw:  # the broker keeps serving
        assert node_id(raw) >= 0


# -- kafka-python's KafkaAdminClient -----------------------------------------------------


def test_kafka_python_admin_client(broker: BrokerProcess, raw: RawClient, topic_name: str) -> None:
    from kafka import TopicPartition
    from kafka.admin import (
        ACL,
        ACLFilter,
        ACLOperation,
        ACLPermissionType,
        ACLResourcePatternType,
        KafkaAdminClient,
        ResourcePattern,
        ResourcePatternFilter,
        ResourceType,
    )
    from kafka.errors import SecurityDisabledError

    create(raw, topic_name, partitions=2)
    node = node_id(raw)
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        resp = admin.elect_leaders(0, {topic_name: [0, 1]})
        assert elections(resp) == [
            (topic_name, [(0, 84, NOT_NEEDED), (1, 84, NOT_NEEDED)]),
        ]
        assert admin.list_partition_reassignments() == {}
        assert admin.list_partition_reassignments({topic_name: [0]}) == {}
        tp = TopicPartition(topic_name, 0)
        assert admin.alter_partition_reassignments({tp: [node]}) == {tp: None}

        described = admin.describe_topic_partitions([topic_name], response_partition_limit=1)
        assert described["next_cursor"] == {"topic_name": topic_name, "partition_index": 1}
        (topic,) = described["topics"]
        assert (topic["name"], topic["error_code"], topic["is_internal"]) == (topic_name, 0, False)
        assert topic["topic_authorized_operations"] == TOPIC_OPS
        assert [(p["partition_index"], p["leader_id"]) for p in topic["partitions"]] == [(0, node)]
        rest = admin.describe_topic_partitions([topic_name], cursor=described["next_cursor"])
        assert rest["next_cursor"] is None
        assert [p["partition_index"] for p in rest["topics"][0]["partitions"]] == [1]

        any_topic = ResourcePatternFilter(ResourceType.TOPIC, None, ACLResourcePatternType.ANY)
        acl_filter_ = ACLFilter(None, None, ACLOperation.ANY, ACLPermissionType.ANY, any_topic)
        with pytest.raises(SecurityDisabledError, match=NO_AUTHORIZER_DESCRIBE):
            admin.describe_acls(acl_filter_)
        acl = ACL(
            "User:alice",
            "*",
            ACLOperation.READ,
            ACLPermissionType.ALLOW,
            ResourcePattern(ResourceType.TOPIC, topic_name),
        )
        assert admin.create_acls([acl]) == {"succeeded": [], "failed": [SecurityDisabledError]}
        assert admin.delete_acls([acl_filter_]) == [(acl_filter_, [], SecurityDisabledError)]
    finally:
        admin.close()
