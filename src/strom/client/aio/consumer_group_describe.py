"""ConsumerGroupDescribe (KIP-848) for the admin client, as Kafka's admin describes
consumer groups: ConsumerGroupDescribe first, then DescribeGroups for the groups the
broker does not know as consumer groups (GROUP_ID_NOT_FOUND: classic groups, unknown
ones) or when the broker has no ConsumerGroupDescribe."""

from __future__ import annotations

from strom.client.aio.connection import BrokerConnection
from strom.client.group_types import CONSUMER_PROTOCOL_TYPE, GroupDescription, MemberDescription
from strom.client.metadata import BrokerMetadata
from strom.common.types import TopicPartition
from strom.protocol.api_versions import ApiKey
from strom.protocol.errors import ErrorCode
from strom.protocol.generated.consumer_group_describe import (
    ConsumerGroupDescribeRequest,
    ConsumerGroupDescribeResponse,
)

R = ConsumerGroupDescribeResponse
MEMBER_TYPE_CONSUMER = 1
MEMBER_TYPE_CLASSIC = 0


def supports_consumer_group_describe(conn: BrokerConnection) -> bool:
    """Whether the broker answers ConsumerGroupDescribe (Kafka 3.7+ brokers)."""
    return conn.versions.get(ApiKey.CONSUMER_GROUP_DESCRIBE, -1) >= 0


async def describe_consumer_groups(
    conn: BrokerConnection, names: list[str], node: BrokerMetadata
) -> dict[str, tuple[int, GroupDescription]]:
    """(error code, description) of the groups that are consumer groups; groups the
    coordinator answered GROUP_ID_NOT_FOUND for are left out."""
    response: R = await conn.send(ConsumerGroupDescribeRequest(group_ids=names))
    out: dict[str, tuple[int, GroupDescription]] = {}
    for g in response.groups:
        if g.error_code == ErrorCode.GROUP_ID_NOT_FOUND:
            continue
        out[g.group_id] = (g.error_code, _description(g, node))
    return out


def _partitions(a: R.Assignment) -> tuple[TopicPartition, ...]:
    return tuple(
        sorted(TopicPartition(t.topic_name, p) for t in a.topic_partitions for p in t.partitions)
    )


def _member(m: R.Member) -> MemberDescription:
    upgraded = None if m.member_type < 0 else m.member_type == MEMBER_TYPE_CONSUMER
    return MemberDescription(
        m.member_id,
        m.instance_id,
        m.client_id,
        m.client_host,
        _partitions(m.assignment),
        m.member_epoch,
        _partitions(m.target_assignment),
        upgraded,
    )


def _description(g: R.DescribedGroup, node: BrokerMetadata) -> GroupDescription:
    return GroupDescription(
        g.group_id,
        g.group_state,
        CONSUMER_PROTOCOL_TYPE,
        g.assignor_name,
        tuple(_member(m) for m in g.members),
        node,
        group_type="Consumer",
        group_epoch=g.group_epoch,
        target_assignment_epoch=g.assignment_epoch,
    )
