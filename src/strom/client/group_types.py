"""Values the admin client returns for consumer groups, and their pure helpers.

Sans-IO: decoding a member's assignment bytes and the lag arithmetic live here
so that they are testable without a broker.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from strom.client.metadata import BrokerMetadata
from strom.common.types import TopicPartition
from strom.protocol.errors import DecodeError
from strom.protocol.generated.consumer_protocol_assignment import ConsumerProtocolAssignment
from strom.protocol.wire import Reader

CONSUMER_PROTOCOL_TYPE = "consumer"

# The states of classic and consumer groups, as DescribeGroups, ConsumerGroupDescribe and
# ListGroups spell them (Kafka's GroupState for the consumer type).
GROUP_STATES = (
    "PreparingRebalance",
    "CompletingRebalance",
    "Stable",
    "Dead",
    "Empty",
    "Assigning",
    "Reconciling",
)
INACTIVE_STATES = frozenset({"Empty", "Dead"})
REBALANCING_STATES = frozenset(
    {"PreparingRebalance", "CompletingRebalance", "Assigning", "Reconciling"}
)
# Group types (ListGroups v5, KIP-848) as Kafka's GroupType prints them
GROUP_TYPES = ("Classic", "Consumer")


@dataclass(frozen=True, slots=True)
class GroupListing:
    """A group as ListGroups reports it (``state`` needs v4+, ``group_type`` v5+)."""

    group_id: str
    protocol_type: str
    state: str | None = None  # ListGroups v4+ only
    group_type: str | None = None  # ListGroups v5+ only

    @property
    def is_consumer_group(self) -> bool:
        """Whether the protocol type is ``consumer`` or empty (offsets only)."""
        return self.protocol_type in ("", CONSUMER_PROTOCOL_TYPE)


@dataclass(frozen=True, slots=True)
class MemberDescription:
    """A member from DescribeGroups with its assigned partitions (consumer groups only);
    members of KIP-848 consumer groups (ConsumerGroupDescribe) also have their epoch,
    their target assignment and whether they use the consumer protocol (``upgraded``)."""

    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    assignment: tuple[TopicPartition, ...] = ()
    member_epoch: int | None = None
    target_assignment: tuple[TopicPartition, ...] | None = None
    upgraded: bool | None = None


@dataclass(frozen=True, slots=True)
class GroupDescription:
    """A group from DescribeGroups or ConsumerGroupDescribe: state, protocol, members and
    its coordinator; consumer groups also have their epochs."""

    group_id: str
    state: str
    protocol_type: str
    partition_assignor: str  # DescribeGroups' protocol_data; a consumer group's assignor
    members: tuple[MemberDescription, ...]
    coordinator: BrokerMetadata
    group_type: str = "Classic"  # "Consumer": a KIP-848 group (ConsumerGroupDescribe)
    group_epoch: int | None = None
    target_assignment_epoch: int | None = None

    @property
    def exists(self) -> bool:
        """False for state ``Dead``, which DescribeGroups reports for an unknown group."""
        return self.state != "Dead"

    @property
    def is_active(self) -> bool:
        """Whether the state is neither ``Empty`` nor ``Dead``."""
        return self.state not in INACTIVE_STATES


@dataclass(frozen=True, slots=True)
class OffsetAndMetadata:
    """A committed offset with its metadata string and leader epoch (-1: unknown)."""

    offset: int
    metadata: str | None = ""
    leader_epoch: int = -1


@dataclass(frozen=True, slots=True)
class PartitionLag:
    """One row of a group's lag: committed offset, log end offset, lag, owner."""

    topic_partition: TopicPartition
    committed_offset: int | None
    log_end_offset: int | None
    lag: int | None
    leader_epoch: int | None = None
    member_id: str | None = None
    client_host: str | None = None
    client_id: str | None = None


@dataclass(frozen=True, slots=True)
class ConsumerGroupLag:
    """A group's description and its lag rows (see :func:`lag_rows`)."""

    description: GroupDescription
    partitions: list[PartitionLag]


def decode_assignment(data: bytes) -> tuple[TopicPartition, ...]:
    """A consumer member's assignment bytes (int16 version + body) -> partitions.

    Empty bytes (no assignment yet) give (); newer versions are read with the
    newest layout we know, as Kafka's ConsumerProtocol does.
    """
    if not data:
        return ()
    r = Reader(data)
    version = r.int16()
    if version < 0:
        raise DecodeError(f"consumer assignment version {version} is negative")
    decoded = ConsumerProtocolAssignment.decode(
        r, min(version, ConsumerProtocolAssignment.MAX_VERSION)
    )
    return tuple(
        TopicPartition(tp.topic, p) for tp in decoded.assigned_partitions for p in tp.partitions
    )


def lag_of(committed: int | None, log_end_offset: int | None) -> int | None:
    """Log end offset minus committed offset, exactly; None when either is unknown.

    A committed offset of -1 means "no commit" (Kafka's OffsetFetch sentinel).
    """
    if committed is None or committed < 0 or log_end_offset is None:
        return None
    return log_end_offset - committed


def lag_rows(
    description: GroupDescription | None,
    committed: Mapping[TopicPartition, OffsetAndMetadata],
    log_end_offsets: Mapping[TopicPartition, int],
) -> list[PartitionLag]:
    """Rows as kafka-consumer-groups.sh --describe collects them.

    Members with partitions first (most partitions first), each member's rows
    sorted by topic and partition; then committed partitions that no member
    owns, with no owner columns. Members without partitions give no rows.
    """
    rows: list[PartitionLag] = []
    assigned: set[TopicPartition] = set()
    members = [] if description is None else [m for m in description.members if m.assignment]
    for member in sorted(members, key=lambda m: -len(m.assignment)):
        tps = sorted(set(member.assignment))
        assigned.update(tps)
        rows.extend(
            _row(
                tp,
                committed,
                log_end_offsets,
                member.member_id,
                member.client_host,
                member.client_id,
            )
            for tp in tps
        )
    rest = sorted(tp for tp in committed if tp not in assigned)
    rows.extend(_row(tp, committed, log_end_offsets, None, None, None) for tp in rest)
    return rows


def _row(
    tp: TopicPartition,
    committed: Mapping[TopicPartition, OffsetAndMetadata],
    ends: Mapping[TopicPartition, int],
    member_id: str | None,
    host: str | None,
    client_id: str | None,
) -> PartitionLag:
    c = committed.get(tp)
    offset = None if c is None or c.offset < 0 else c.offset
    epoch = None if c is None or c.leader_epoch < 0 else c.leader_epoch
    end = ends.get(tp)
    return PartitionLag(tp, offset, end, lag_of(offset, end), epoch, member_id, host, client_id)


def group_partitions(tps: Iterable[TopicPartition]) -> dict[str, list[int]]:
    """topic -> sorted partitions (request building)."""
    out: dict[str, list[int]] = {}
    for tp in tps:
        out.setdefault(tp.topic, []).append(tp.partition)
    return {t: sorted(ps) for t, ps in out.items()}
