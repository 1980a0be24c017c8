"""Consumer groups seen from the other group APIs: ConsumerGroupDescribe, ListGroups,
DeleteGroups, and the member epoch checks of OffsetCommit / TxnOffsetCommit /
OffsetFetch (Kafka's ConsumerGroup.validateOffsetCommit and validateOffsetFetch)."""

from __future__ import annotations

from strom.coordinator.group.base import ShardBase
from strom.coordinator.group.consumer.group import ConsumerGroup
from strom.coordinator.group.consumer.leave import ConsumerLeaveOps
from strom.coordinator.group.consumer.member import Assignment, ConsumerGroupMember, MemberState
from strom.coordinator.group.consumer.operation import Operation
from strom.coordinator.group.consumer.target import preferred_assignor
from strom.coordinator.group.records import CoordinatorRecord
from strom.protocol import consumer_group_records as cg
from strom.protocol.errors import ErrorCode
from strom.protocol.generated.consumer_group_describe import ConsumerGroupDescribeResponse
from strom.protocol.generated.list_groups import ListGroupsResponse

R = ConsumerGroupDescribeResponse
GROUP_TYPE_CONSUMER = "consumer"
MEMBER_TYPE_CLASSIC = 0
MEMBER_TYPE_CONSUMER = 1
# READ, DELETE, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS: every operation on a group
# (Kafka reports them all when no authorizer is configured)
GROUP_AUTHORIZED_OPERATIONS = sum(1 << op for op in (3, 6, 8, 10, 11))


def member_epoch_error(received: int, expected: int, classic: bool) -> ErrorCode | None:
    if received == expected:
        return None
    return ErrorCode.ILLEGAL_GENERATION if classic else ErrorCode.STALE_MEMBER_EPOCH


def commit_error(
    group: ConsumerGroup, member_id: str, member_epoch: int, api_version: int, transactional: bool
) -> ErrorCode | None:
    """An admin (or a consumer without group management: epoch -1) commits only to an
    empty group; members commit with their current epoch, with OffsetCommit v9+ when
    they use the consumer protocol."""
    if member_epoch < 0 and group.is_empty():
        return None
    member = group.members.get(member_id)
    if member is None:
        return ErrorCode.UNKNOWN_MEMBER_ID
    if not transactional and not member.uses_classic_protocol and api_version < 9:
        return ErrorCode.UNSUPPORTED_VERSION
    return member_epoch_error(member_epoch, member.member_epoch, member.uses_classic_protocol)


def fetch_error(group: ConsumerGroup, member_id: str | None, member_epoch: int) -> ErrorCode | None:
    if member_id is None and member_epoch < 0:
        return None
    member = group.members.get(member_id or "")
    if member is None:
        return ErrorCode.UNKNOWN_MEMBER_ID
    return member_epoch_error(member_epoch, member.member_epoch, member.uses_classic_protocol)


def group_tombstones(op: Operation) -> None:
    """Tombstones for everything a consumer group wrote (Kafka's createGroupTombstoneRecords)."""
    group = op.group
    member_ids = sorted(group.members)
    for member_id in member_ids:
        op.write(cg.CURRENT_MEMBER_ASSIGNMENT, member_id, None)
    for member_id in member_ids:
        op.write(cg.TARGET_ASSIGNMENT_MEMBER, member_id, None)
    op.write(cg.TARGET_ASSIGNMENT_METADATA, "", None)
    for member_id in member_ids:
        op.write(cg.MEMBER_METADATA, member_id, None)
    op.write(cg.PARTITION_METADATA, "", None)
    for regex in sorted(group.resolved_regexes):
        op.write(cg.REGULAR_EXPRESSION, regex, None)
    op.write(cg.GROUP_METADATA, "", None)


def give_way_to_classic(shard: ShardBase, group_id: str) -> list[CoordinatorRecord] | None:
    """A classic JoinGroup for an empty consumer group deletes it (its offsets stay):
    the tombstones; None when the consumer group has members."""
    group = shard.consumer_groups.get(group_id)
    if group is None:
        return []
    if not group.is_empty():
        return None
    op = Operation(shard, group_id)
    group_tombstones(op)
    return op.records


class ConsumerAdminOps(ConsumerLeaveOps):
    def consumer_group_describe(self, group_id: str, with_operations: bool) -> R.DescribedGroup:
        group = self.consumer_groups.get(group_id)
        if group is None:
            message = (
                f"Group {group_id} is not a consumer group."
                if self.live_group(group_id) is not None
                else f"Group {group_id} not found."
            )
            return R.DescribedGroup(
                error_code=ErrorCode.GROUP_ID_NOT_FOUND, error_message=message, group_id=group_id
            )
        return R.DescribedGroup(
            group_id=group_id,
            group_state=group.state.value,
            group_epoch=group.group_epoch,
            assignment_epoch=group.assignment_epoch,
            assignor_name=preferred_assignor(
                group.members.values(), self.config.consumer_assignors
            ),
            members=[self._described_member(group, m) for _, m in sorted(group.members.items())],
            authorized_operations=GROUP_AUTHORIZED_OPERATIONS if with_operations else -(2**31),
        )

    def _described_member(self, group: ConsumerGroup, m: ConsumerGroupMember) -> R.Member:
        return R.Member(
            member_id=m.member_id,
            instance_id=m.instance_id,
            rack_id=m.rack_id,
            member_epoch=m.member_epoch,
            client_id=m.client_id,
            client_host=m.client_host,
            subscribed_topic_names=sorted(m.subscribed_topic_names),
            subscribed_topic_regex=m.subscribed_topic_regex or None,
            assignment=self._described_assignment(m.assigned),
            target_assignment=self._described_assignment(group.target_of(m.member_id)),
            member_type=MEMBER_TYPE_CLASSIC if m.uses_classic_protocol else MEMBER_TYPE_CONSUMER,
        )

    def _described_assignment(self, a: Assignment) -> R.Assignment:
        image = self.image()
        topics = []
        for topic_id, partitions in a.items():
            topic = image.topic_by_id(topic_id)
            if topic is not None:
                topics.append(R.TopicPartitions(topic_id, topic.name, sorted(partitions)))
        topics.sort(key=lambda t: t.topic_name)
        return R.Assignment(topics)

    def consumer_listed_groups(
        self, states: set[str], types: set[str]
    ) -> list[ListGroupsResponse.ListedGroup]:
        if types and GROUP_TYPE_CONSUMER not in types:
            return []
        return [
            ListGroupsResponse.ListedGroup(
                group_id=g.group_id,
                protocol_type=GROUP_TYPE_CONSUMER,
                group_state=g.state.value,
                group_type=GROUP_TYPE_CONSUMER,
            )
            for g in self.consumer_groups.values()
            if not states or g.state.value.lower() in states
        ]

    def delete_consumer_group(self, group_id: str) -> list[CoordinatorRecord]:
        """DeleteGroups of an empty consumer group: tombstones for everything it wrote."""
        op = Operation(self, group_id)
        group_tombstones(op)
        return op.records

    def on_consumer_groups_loaded(self, now_ms: int) -> None:
        """After load: every member must heartbeat within its session; a member revoking
        partitions within its rebalance timeout; metadata is checked on the next heartbeat."""
        for group in self.consumer_groups.values():
            group.metadata_image = None
            for member in group.members.values():
                self.schedule_consumer_session(group.group_id, member, now_ms)
                if member.state is MemberState.UNREVOKED_PARTITIONS:
                    self.schedule_consumer_rebalance(group.group_id, member, now_ms)
