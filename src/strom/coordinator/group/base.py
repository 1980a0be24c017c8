"""State shared by the parts of one coordinator shard (one ``__consumer_offsets`` partition).

Responses are built here as the generated protocol classes; the broker's
handlers adapt them to the request version.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from strom.coordinator.group.config import GroupConfig
from strom.coordinator.group.consumer.group import ConsumerGroup
from strom.coordinator.group.records import (
    CoordinatorRecord,
    group_metadata_record,
)
from strom.coordinator.group.result import Timers
from strom.coordinator.group.state import ClassicGroup, GroupState, Member
from strom.metadata.image import MetadataImage
from strom.protocol import consumer_group_records as cg
from strom.protocol.errors import ErrorCode
from strom.protocol.generated.join_group import JoinGroupResponse
from strom.protocol.generated.sync_group import SyncGroupResponse
from strom.protocol.group_records import (
    GroupMetadataValue,
    MemberMetadataValue,
)

HEARTBEAT = "heartbeat"
PENDING = "pending"
JOIN = "join"
SYNC = "sync"


@dataclass(frozen=True, slots=True)
class OffsetAndMetadata:
    offset: int
    leader_epoch: int
    metadata: str
    commit_timestamp_ms: int
    expire_timestamp_ms: int = -1


def random_member_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4()}"


def random_uuid_member_id() -> str:
    """A consumer group member id as Kafka makes one: a random Uuid's string form."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


_EMPTY_IMAGE = MetadataImage.empty()


def join_error(member_id: str, code: ErrorCode) -> JoinGroupResponse:
    return JoinGroupResponse(
        error_code=code,
        generation_id=-1,
        protocol_type=None,
        protocol_name=None,
        leader="",
        member_id=member_id,
    )


def sync_error(code: ErrorCode) -> SyncGroupResponse:
    return SyncGroupResponse(error_code=code, assignment=b"")


class ShardBase:
    """Groups, committed offsets and timers of one shard."""

    def __init__(
        self,
        config: GroupConfig,
        member_id_factory: Callable[[str], str] = random_member_id,
        image: Callable[[], MetadataImage] = lambda: _EMPTY_IMAGE,
        uuid_factory: Callable[[], str] = random_uuid_member_id,
    ) -> None:
        self.config = config
        self.new_member_id = member_id_factory
        self.new_uuid = uuid_factory
        self.image = image  # the broker's current metadata image (topics, brokers' racks)
        self.groups: dict[str, ClassicGroup] = {}
        self.consumer_groups: dict[str, ConsumerGroup] = {}  # KIP-848 groups (consumer/)
        self.rebalance_epochs: dict[tuple[str, str], int] = {}  # consumer members revoking
        self._topic_names: tuple[MetadataImage, frozenset[str]] | None = None
        self.offsets: dict[str, dict[tuple[str, int], OffsetAndMetadata]] = {}
        self.timers = Timers()
        # TxnOffsetCommit: producer id -> group -> offsets awaiting the marker (txn_offsets.py)
        self.pending_txn_offsets: dict[int, dict[str, dict[tuple[str, int], OffsetAndMetadata]]]
        self.pending_txn_offsets = {}

    # -- groups ---------------------------------------------------------------------

    def get_or_create_group(self, group_id: str, now_ms: int) -> ClassicGroup:
        group = self.groups.get(group_id)
        if group is None:
            group = ClassicGroup(group_id, state_timestamp_ms=now_ms)
            self.groups[group_id] = group
        return group

    def live_group(self, group_id: str) -> ClassicGroup | None:
        group = self.groups.get(group_id)
        return None if group is None or group.is_(GroupState.DEAD) else group

    def replay_consumer_record(
        self, key: cg.ConsumerGroupKey, value: cg.ConsumerGroupValue | None
    ) -> None:
        """Apply one consumer group record (live as it is written, and at load). The
        group's first record replaces a simple classic group that only held offsets."""
        group = self.consumer_groups.get(key.group)
        if group is None:
            if value is None:
                return
            group = self.adopt_consumer_group(ConsumerGroup(key.group))
        group.replay(key, value)
        if key.record_type == cg.GROUP_METADATA and value is None:
            del self.consumer_groups[key.group]

    def group_metadata_record(
        self, group: ClassicGroup, assignment: dict[str, bytes]
    ) -> CoordinatorRecord:
        members = tuple(
            MemberMetadataValue(
                m.member_id,
                m.group_instance_id,
                m.client_id,
                m.client_host,
                m.rebalance_timeout_ms,
                m.session_timeout_ms,
                m.metadata(group.protocol_name),
                assignment.get(m.member_id, b""),
            )
            for m in group.members.values()
        )
        value = GroupMetadataValue(
            group.protocol_type or "",
            group.generation_id,
            group.protocol_name,
            group.leader_id,
            group.state_timestamp_ms,
            members,
        )
        return group_metadata_record(group.group_id, value)

    def adopt_consumer_group(self, group: ConsumerGroup) -> ConsumerGroup:
        self.consumer_groups[group.group_id] = group
        classic = self.groups.get(group.group_id)
        if classic is not None and classic.is_simple():
            del self.groups[group.group_id]
        return group

    # -- heartbeats -------------------------------------------------------------------

    def schedule_heartbeat(self, group: ClassicGroup, member: Member, now_ms: int) -> None:
        timeout = (
            self.config.new_member_join_timeout_ms if member.is_new else member.session_timeout_ms
        )
        self.timers.schedule((HEARTBEAT, group.group_id, member.member_id), now_ms + timeout)

    def cancel_heartbeat(self, group: ClassicGroup, member_id: str) -> None:
        self.timers.cancel((HEARTBEAT, group.group_id, member_id))

    def validate_current_member(
        self, group: ClassicGroup, member_id: str, instance_id: str | None
    ) -> ErrorCode | None:
        if instance_id is not None:
            current = group.static_members.get(instance_id)
            if current is None:
                return ErrorCode.UNKNOWN_MEMBER_ID
            if current != member_id:
                return ErrorCode.FENCED_INSTANCE_ID
        if member_id not in group.members:
            return ErrorCode.UNKNOWN_MEMBER_ID
        return None

    def classic_commit_error(
        self,
        group: ClassicGroup,
        generation_id: int,
        member_id: str,
        instance_id: str | None,
        transactional: bool,
    ) -> ErrorCode | None:
        """Kafka's checks of an (Txn)OffsetCommit to a classic group (validateOffsetCommit)."""
        if group.is_(GroupState.DEAD):
            return ErrorCode.COORDINATOR_NOT_AVAILABLE
        if generation_id < 0 and group.is_(GroupState.EMPTY):
            # an admin client, or a consumer without group management (whatever member
            # id it sends): it may commit while the group is empty
            return None
        if generation_id >= 0 or member_id or instance_id is not None:
            error = self.validate_current_member(group, member_id, instance_id)
            if error is not None:
                return error
            if generation_id != group.generation_id:
                return ErrorCode.ILLEGAL_GENERATION
        elif not transactional and not group.is_(GroupState.EMPTY):
            # only members commit to a group with members (a transactional commit of an
            # older version names no member)
            return ErrorCode.UNKNOWN_MEMBER_ID
        return None
