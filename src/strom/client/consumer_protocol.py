"""Membership of a consumer group with the consumer rebalance protocol (KIP-848), sans-IO.

Kafka's ConsumerMembershipManager without the network. The member makes its own
member id (KIP-1082) and heartbeats (ConsumerGroupHeartbeat v1): epoch 0 to join,
then its current epoch; each heartbeat reports the partitions it owns when they
changed. The coordinator answers with the member's epoch and, when it changed,
the partitions the member may own now (by topic id). The IO front reconciles to
that assignment (revoking first, then assigning) and :meth:`acknowledge`s it,
which the next heartbeat reports at once.

    UNSUBSCRIBED --subscribe--> JOINING --heartbeat ok--> STABLE
    STABLE/JOINING --FENCED_MEMBER_EPOCH, UNKNOWN_MEMBER_ID--> JOINING (partitions lost)
    any --leave--> LEAVING --sent--> UNSUBSCRIBED
    UNRELEASED_INSTANCE_ID, FENCED_INSTANCE_ID, GROUP_MAX_SIZE_REACHED, an unsupported
    assignor or regex, ... --> FATAL (poll raises)
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from enum import Enum

from strom.client.membership import COORDINATOR_ERRORS
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.generated.consumer_group_heartbeat import (
    ConsumerGroupHeartbeatRequest,
    ConsumerGroupHeartbeatResponse,
)

Req = ConsumerGroupHeartbeatRequest
TopicIdPartition = tuple[bytes, int]
LEAVE_EPOCH = -1
LEAVE_STATIC_EPOCH = -2
REJOIN_ERRORS = frozenset({ErrorCode.FENCED_MEMBER_EPOCH, ErrorCode.UNKNOWN_MEMBER_ID})


class State(Enum):
    """Where the member stands (see the module's diagram)."""

    UNSUBSCRIBED = "UNSUBSCRIBED"
    JOINING = "JOINING"
    STABLE = "STABLE"
    LEAVING = "LEAVING"
    FATAL = "FATAL"


class Step(Enum):
    """What the IO front does after a heartbeat response."""

    OK = "ok"
    FIND_COORDINATOR = "find_coordinator"
    BACKOFF = "backoff"  # retry after retry.backoff.ms
    FENCED = "fenced"  # the owned partitions are lost; the member rejoins


def new_member_id() -> str:
    """A member id as Kafka's consumer makes one: a random Uuid's string form."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


@dataclass(frozen=True, slots=True)
class Subscription:
    """Topic names, or a regex (RE2 syntax) the coordinator resolves."""

    topics: tuple[str, ...] = ()
    regex: str | None = None


class ConsumerProtocolMember:
    """One consumer's membership; pure, driven by ``now_ms``."""

    def __init__(
        self,
        group_id: str,
        *,
        rebalance_timeout_ms: int,
        group_instance_id: str | None = None,
        rack_id: str | None = None,
        server_assignor: str | None = None,
        member_id: str | None = None,
    ) -> None:
        self.group_id = group_id
        self.member_id = member_id or new_member_id()
        self.group_instance_id = group_instance_id
        self.rack_id = rack_id
        self.server_assignor = server_assignor
        self.rebalance_timeout_ms = rebalance_timeout_ms
        self.member_epoch = 0
        self.state = State.UNSUBSCRIBED
        self.subscription = Subscription()
        self.heartbeat_interval_ms = 5000
        self.owned: frozenset[TopicIdPartition] = frozenset()
        self.target: frozenset[TopicIdPartition] | None = None  # to reconcile to
        self.last_heartbeat_ms = -(2**62)
        self._full = True  # send every field (joining, after an error)
        self._sent_subscription: Subscription | None = None
        self._sent_owned: frozenset[TopicIdPartition] | None = None

    # -- subscription -----------------------------------------------------------

    def subscribe(self, subscription: Subscription) -> None:
        """Join (or tell the coordinator about) a new subscription."""
        self.subscription = subscription
        if self.state in (State.UNSUBSCRIBED, State.LEAVING):
            self._rejoin()

    def _rejoin(self) -> None:
        self.state = State.JOINING
        self.member_epoch = 0
        self._full = True

    @property
    def stable(self) -> bool:
        """Joined, and nothing left to reconcile."""
        return self.state is State.STABLE and self.target is None

    # -- heartbeats ---------------------------------------------------------------

    def heartbeat_due(self, now_ms: int) -> bool:
        """In the group, and the interval passed or there is news to tell."""
        if self.state not in (State.JOINING, State.STABLE):
            return False
        return (
            self._full
            or self.subscription != self._sent_subscription
            or self.owned != self._sent_owned
            or now_ms - self.last_heartbeat_ms >= self.heartbeat_interval_ms
        )

    def next_heartbeat_ms(self) -> int:
        """When the interval passes (ms)."""
        return self.last_heartbeat_ms + self.heartbeat_interval_ms

    def heartbeat_request(self, now_ms: int) -> Req:
        """The next heartbeat: every field when joining or after an error, else only what
        changed since the last one (null fields: unchanged)."""
        self.last_heartbeat_ms = now_ms
        req = Req(group_id=self.group_id, member_id=self.member_id, member_epoch=self.member_epoch)
        full = self._full or self.member_epoch == 0
        if full:
            req.instance_id = self.group_instance_id
            req.rack_id = self.rack_id
            req.rebalance_timeout_ms = self.rebalance_timeout_ms
            req.server_assignor = self.server_assignor
        if full or self.subscription != self._sent_subscription:
            self._put_subscription(req)
        owned = frozenset() if self.member_epoch == 0 else self.owned
        if full or owned != self._sent_owned:
            by_topic: dict[bytes, list[int]] = {}
            for topic_id, p in sorted(owned):
                by_topic.setdefault(topic_id, []).append(p)
            req.topic_partitions = [Req.TopicPartitions(t, ps) for t, ps in by_topic.items()]
            self._sent_owned = owned
        self._full = False
        return req

    def _put_subscription(self, req: Req) -> None:
        """Names (a regex cleared with "" if one was sent before), or a regex (names
        cleared with [])."""
        sub, previous = self.subscription, self._sent_subscription
        if sub.regex is not None:
            req.subscribed_topic_names, req.subscribed_topic_regex = [], sub.regex
        else:
            req.subscribed_topic_names = list(sub.topics)
            had_regex = previous is not None and previous.regex is not None
            req.subscribed_topic_regex = "" if had_regex else None
        self._sent_subscription = sub

    def on_heartbeat_response(self, resp: ConsumerGroupHeartbeatResponse) -> Step:
        """Take the epoch and a new assignment (:attr:`target`); the error decides the
        rest. Fatal errors raise KafkaError (the member is then FATAL)."""
        code = resp.error_code
        if self.state not in (State.JOINING, State.STABLE):
            return Step.OK  # an answer that arrived after leaving
        if code == ErrorCode.NONE:
            self.member_epoch = resp.member_epoch
            if resp.heartbeat_interval_ms > 0:
                self.heartbeat_interval_ms = resp.heartbeat_interval_ms
            if resp.assignment is not None:
                target = frozenset(
                    (tp.topic_id, p)
                    for tp in resp.assignment.topic_partitions
                    for p in tp.partitions
                )
                self.target = None if target == self.owned else target
            self.state = State.STABLE
            return Step.OK
        self._full = True  # whatever happens next, tell everything again
        if code in REJOIN_ERRORS:
            self.fenced()
            return Step.FENCED
        if code == ErrorCode.COORDINATOR_LOAD_IN_PROGRESS:
            return Step.BACKOFF
        if code in COORDINATOR_ERRORS:
            return Step.FIND_COORDINATOR
        self.state = State.FATAL
        raise _error(code, resp.error_message, f"ConsumerGroupHeartbeat {self.group_id!r}")

    def resend_all(self) -> None:
        """The last answer was lost: the next heartbeat carries every field."""
        self._full = True

    def fenced(self) -> None:
        """The coordinator no longer knows this member at its epoch: what it owned is lost
        (the IO front calls on_lost) and it joins again with epoch 0."""
        self.owned = frozenset()
        self.target = None
        self._rejoin()

    def acknowledge(self, owned: frozenset[TopicIdPartition]) -> None:
        """The IO front now owns ``owned`` (revocations done, new partitions taken); the
        next heartbeat, sent at once, reports it."""
        self.owned = owned
        if self.target == owned:
            self.target = None

    # -- leaving -------------------------------------------------------------------

    def leave_request(self) -> Req | None:
        """Epoch -1 (-2 for a static member, which the coordinator keeps for its session),
        or None when not in the group."""
        if self.state not in (State.JOINING, State.STABLE) or self.member_epoch == 0:
            self.state = State.UNSUBSCRIBED
            return None
        epoch = LEAVE_STATIC_EPOCH if self.group_instance_id is not None else LEAVE_EPOCH
        self.state = State.LEAVING
        req = Req(
            group_id=self.group_id,
            member_id=self.member_id,
            member_epoch=epoch,
            instance_id=self.group_instance_id,
        )
        self.owned, self.target, self.member_epoch = frozenset(), None, 0
        return req


def _error(code: int, message: str | None, context: str) -> KafkaError:
    try:
        ec = ErrorCode(code)
    except ValueError:
        ec = ErrorCode.UNKNOWN_SERVER_ERROR
    return KafkaError(ec, f"{context}: {ec.name}" + (f": {message}" if message else ""))
