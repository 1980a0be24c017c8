"""Classic consumer-group membership as a state machine (sans-IO).

Kafka's AbstractCoordinator without the network: the IO front asks for the next
request, sends it, and feeds the response back; every decision (rejoin, reset
the member id or generation, wait for the coordinator, fail) is made here.

    UNJOINED --join--> JOINING --JoinGroup ok--> SYNCING --SyncGroup ok--> STABLE
    STABLE --heartbeat REBALANCE_IN_PROGRESS--> UNJOINED (rejoin, same member id)
    ILLEGAL_GENERATION -> the generation is reset; UNKNOWN_MEMBER_ID -> member id
    and generation are reset; MEMBER_ID_REQUIRED -> JoinGroup again with the
    member id the broker gave; FENCED_INSTANCE_ID -> fatal; coordinator errors
    (NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE, network) -> find it again.

Subscriptions and assignments travel as ConsumerProtocolSubscription v0-3 and
ConsumerProtocolAssignment v0-3 (a big-endian int16 version, then the fields).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from strom.client.assignors import Subscription
from strom.common.types import TopicPartition
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.generated.consumer_protocol_assignment import ConsumerProtocolAssignment
from strom.protocol.generated.consumer_protocol_subscription import (
    ConsumerProtocolSubscription,
)
from strom.protocol.generated.heartbeat import HeartbeatRequest
from strom.protocol.generated.join_group import JoinGroupRequest, JoinGroupResponse
from strom.protocol.generated.leave_group import LeaveGroupRequest
from strom.protocol.generated.sync_group import SyncGroupRequest, SyncGroupResponse
from strom.protocol.group_records import encode_consumer_assignment
from strom.protocol.wire import Reader, Writer

SUBSCRIPTION_VERSION = 3
ASSIGNMENT_VERSION = 3
UNKNOWN_MEMBER_ID = ""
NO_GENERATION = -1

COORDINATOR_ERRORS = frozenset(
    {
        ErrorCode.NOT_COORDINATOR,
        ErrorCode.COORDINATOR_NOT_AVAILABLE,
        ErrorCode.NETWORK_EXCEPTION,
        ErrorCode.REQUEST_TIMED_OUT,
    }
)


class MemberState(Enum):
    """Where a member stands in the join protocol."""

    UNJOINED = "UNJOINED"
    JOINING = "JOINING"
    SYNCING = "SYNCING"
    STABLE = "STABLE"


class Next(Enum):
    """What the IO front does after a response."""

    JOIN = "join"  # (re)send JoinGroup
    SYNC = "sync"  # send SyncGroup (the leader computes assignments first)
    DONE = "done"  # the assignment is known
    FIND_COORDINATOR = "find_coordinator"
    BACKOFF = "backoff"  # wait retry.backoff.ms, then JoinGroup again


def encode_subscription(sub: Subscription, version: int = SUBSCRIPTION_VERSION) -> bytes:
    """ConsumerProtocolSubscription bytes (JoinGroup protocol metadata) for ``sub``."""
    by_topic: dict[str, list[int]] = {}
    for tp in sorted(sub.owned_partitions):
        by_topic.setdefault(tp.topic, []).append(tp.partition)
    msg = ConsumerProtocolSubscription(
        topics=list(sub.topics),
        user_data=sub.user_data,
        owned_partitions=[
            ConsumerProtocolSubscription.TopicPartition(t, ps) for t, ps in by_topic.items()
        ],
        generation_id=sub.generation_id,
        rack_id=sub.rack_id,
    )
    w = Writer()
    w.int16(version)
    msg.encode(w, version)
    return w.getvalue()


def decode_subscription(data: bytes, group_instance_id: str | None = None) -> Subscription:
    """A member's JoinGroup metadata as a Subscription (versions above 3 read as 3)."""
    r = Reader(data)
    version = r.int16()
    msg = ConsumerProtocolSubscription.decode(r, min(max(version, 0), 3))
    owned = tuple(TopicPartition(t.topic, p) for t in msg.owned_partitions for p in t.partitions)
    return Subscription(
        tuple(msg.topics), owned, msg.generation_id, group_instance_id, msg.user_data, msg.rack_id
    )


def encode_assignment(tps: list[TopicPartition], version: int = ASSIGNMENT_VERSION) -> bytes:
    """ConsumerProtocolAssignment bytes (a SyncGroup assignment) for ``tps``."""
    return encode_consumer_assignment(tps, version)


def decode_assignment(data: bytes) -> list[TopicPartition]:
    """The partitions in SyncGroup assignment bytes (none for empty bytes)."""
    if not data:
        return []
    r = Reader(data)
    version = r.int16()
    msg = ConsumerProtocolAssignment.decode(r, min(max(version, 0), 3))
    return [TopicPartition(t.topic, p) for t in msg.assigned_partitions for p in t.partitions]


@dataclass(frozen=True, slots=True)
class JoinResult:
    """A JoinGroup answer: the leader gets every member's subscription."""

    generation_id: int
    protocol: str
    leader_id: str
    member_id: str
    members: dict[str, Subscription]

    @property
    def is_leader(self) -> bool:
        """True when this member leads the group (it computes the assignment)."""
        return self.leader_id == self.member_id


class GroupMember:
    """One consumer's membership in a classic group; pure, driven by ``now_ms``."""

    def __init__(
        self,
        group_id: str,
        *,
        session_timeout_ms: int,
        rebalance_timeout_ms: int,
        heartbeat_interval_ms: int,
        group_instance_id: str | None = None,
    ) -> None:
        self.group_id = group_id
        self.session_timeout_ms = session_timeout_ms
        self.rebalance_timeout_ms = rebalance_timeout_ms
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.group_instance_id = group_instance_id
        self.member_id = UNKNOWN_MEMBER_ID
        self.generation_id = NO_GENERATION
        self.protocol: str | None = None
        self.state = MemberState.UNJOINED
        self.rejoin_needed = True
        self.last_heartbeat_ms = -1
        self.last_heartbeat_ok_ms = -1
        self.join_result: JoinResult | None = None

    # -- join ------------------------------------------------------------------

    def join_request(
        self, protocols: list[tuple[str, bytes]], reason: str = ""
    ) -> JoinGroupRequest:
        """A JoinGroup request offering ``protocols`` (assignor name, subscription bytes);
        the member becomes JOINING."""
        self.state = MemberState.JOINING
        return JoinGroupRequest(
            group_id=self.group_id,
            session_timeout_ms=self.session_timeout_ms,
            rebalance_timeout_ms=self.rebalance_timeout_ms,
            member_id=self.member_id,
            group_instance_id=self.group_instance_id,
            protocol_type="consumer",
            protocols=[JoinGroupRequest.JoinGroupRequestProtocol(n, m) for n, m in protocols],
            reason=reason or None,
        )

    def on_join_response(self, response: JoinGroupResponse) -> Next:
        """SYNC when joined (see :attr:`join_result`), else JOIN, BACKOFF or
        FIND_COORDINATOR to retry; other error codes raise KafkaError."""
        code = response.error_code
        if code == ErrorCode.NONE:
            self.member_id = response.member_id
            self.generation_id = response.generation_id
            self.protocol = response.protocol_name
            members = {
                m.member_id: decode_subscription(m.metadata, m.group_instance_id)
                for m in response.members
            }
            self.join_result = JoinResult(
                response.generation_id,
                response.protocol_name or "",
                response.leader,
                response.member_id,
                members,
            )
            self.state = MemberState.SYNCING
            return Next.SYNC
        self.state = MemberState.UNJOINED
        if code == ErrorCode.MEMBER_ID_REQUIRED:
            self.member_id = response.member_id
            return Next.JOIN
        if code == ErrorCode.UNKNOWN_MEMBER_ID:
            self.reset_member()
            return Next.JOIN
        if code in (ErrorCode.ILLEGAL_GENERATION, ErrorCode.REBALANCE_IN_PROGRESS):
            return Next.JOIN
        if code == ErrorCode.COORDINATOR_LOAD_IN_PROGRESS:
            return Next.BACKOFF
        if code in COORDINATOR_ERRORS:
            return Next.FIND_COORDINATOR
        raise _error(code, f"JoinGroup {self.group_id!r}")

    # -- sync ------------------------------------------------------------------

    def sync_request(self, assignments: dict[str, bytes]) -> SyncGroupRequest:
        """A SyncGroup request; ``assignments`` (member id -> bytes) is empty unless leader."""
        return SyncGroupRequest(
            group_id=self.group_id,
            generation_id=self.generation_id,
            member_id=self.member_id,
            group_instance_id=self.group_instance_id,
            protocol_type="consumer",
            protocol_name=self.protocol,
            assignments=[
                SyncGroupRequest.SyncGroupRequestAssignment(m, a) for m, a in assignments.items()
            ],
        )

    def on_sync_response(self, response: SyncGroupResponse, now_ms: int) -> Next:
        """DONE (the member is STABLE) on success, else JOIN or FIND_COORDINATOR; other
        error codes raise KafkaError."""
        code = response.error_code
        if code == ErrorCode.NONE:
            self.state = MemberState.STABLE
            self.rejoin_needed = False
            self.last_heartbeat_ms = self.last_heartbeat_ok_ms = now_ms
            return Next.DONE
        self.state = MemberState.UNJOINED
        return self._rejoin_for(code, "SyncGroup")

    def _rejoin_for(self, code: int, what: str) -> Next:
        if code == ErrorCode.REBALANCE_IN_PROGRESS:
            return Next.JOIN
        if code == ErrorCode.ILLEGAL_GENERATION:
            self.generation_id = NO_GENERATION
            return Next.JOIN
        if code == ErrorCode.UNKNOWN_MEMBER_ID:
            self.reset_member()
            return Next.JOIN
        if code in COORDINATOR_ERRORS:
            return Next.FIND_COORDINATOR
        raise _error(code, f"{what} {self.group_id!r}")

    # -- heartbeat -------------------------------------------------------------

    def heartbeat_due(self, now_ms: int) -> bool:
        """True when STABLE and heartbeat.interval.ms passed since the last heartbeat."""
        return (
            self.state == MemberState.STABLE
            and now_ms - self.last_heartbeat_ms >= self.heartbeat_interval_ms
        )

    def next_heartbeat_ms(self) -> int:
        """When the next heartbeat is due (ms)."""
        return self.last_heartbeat_ms + self.heartbeat_interval_ms

    def heartbeat_request(self, now_ms: int) -> HeartbeatRequest:
        """A Heartbeat request for the current generation; ``now_ms`` is its send time."""
        self.last_heartbeat_ms = now_ms
        return HeartbeatRequest(
            group_id=self.group_id,
            generation_id=self.generation_id,
            member_id=self.member_id,
            group_instance_id=self.group_instance_id,
        )

    def on_heartbeat_response(self, code: int, now_ms: int) -> Next:
        """DONE when all is well; JOIN when the member must rejoin."""
        if code == ErrorCode.NONE:
            self.last_heartbeat_ok_ms = now_ms
            return Next.DONE
        if self.state != MemberState.STABLE:
            return Next.DONE  # a stale answer while (re)joining
        if code == ErrorCode.FENCED_INSTANCE_ID:
            raise _error(
                code, f"group {self.group_id!r}: group.instance.id fenced by a newer member"
            )
        nxt = self._rejoin_for(code, "Heartbeat")
        if nxt is Next.JOIN:
            self.request_rejoin()
        return nxt

    def session_expired(self, now_ms: int) -> bool:
        """No successful heartbeat for session.timeout.ms: the coordinator is presumed lost."""
        return (
            self.state == MemberState.STABLE
            and self.last_heartbeat_ok_ms >= 0
            and now_ms - self.last_heartbeat_ok_ms > self.session_timeout_ms
        )

    # -- leaving ---------------------------------------------------------------

    def leave_request(
        self, reason: str = "the consumer is being closed"
    ) -> LeaveGroupRequest | None:
        """LeaveGroup, or None when there is nothing to leave (or a static member,
        which Kafka keeps in the group until its session times out)."""
        if self.member_id == UNKNOWN_MEMBER_ID or self.group_instance_id is not None:
            return None
        request = LeaveGroupRequest(
            group_id=self.group_id,
            member_id=self.member_id,
            members=[LeaveGroupRequest.MemberIdentity(self.member_id, None, reason)],
        )
        self.reset_member()
        return request

    def request_rejoin(self) -> None:
        """Rejoin on the next poll, keeping the member id and generation."""
        self.rejoin_needed = True
        self.state = MemberState.UNJOINED

    def reset_member(self) -> None:
        """Forget the member id and generation and rejoin as a new member."""
        self.member_id = UNKNOWN_MEMBER_ID
        self.generation_id = NO_GENERATION
        self.state = MemberState.UNJOINED
        self.rejoin_needed = True

    @property
    def stable(self) -> bool:
        """True when the member holds its assignment and no rejoin is pending."""
        return self.state == MemberState.STABLE and not self.rejoin_needed


def _error(code: int, context: str) -> KafkaError:
    try:
        ec = ErrorCode(code)
    except ValueError:
        ec = ErrorCode.UNKNOWN_SERVER_ERROR
    return KafkaError(ec, f"{context}: {ec.name}")
