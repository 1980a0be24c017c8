"""Fetch from the closest replica (KIP-392): Kafka's RackAwareReplicaSelector.

With ``replica.selector.class`` set, a leader answers a consumer's fetch (Fetch
v11+, with the consumer's ``client.rack``) with a preferred read replica: the
leader itself when it is in the consumer's rack or no replica is, otherwise the
replica of that rack that is furthest along. Only replicas that hold the fetch
offset are candidates.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Final

from strom.common.values import Value

SELECTOR_CLASSES = frozenset(
    {
        "org.apache.kafka.common.replica.RackAwareReplicaSelector",
        "RackAwareReplicaSelector",
    }
)
LEADER_SELECTOR = "org.apache.kafka.common.replica.LeaderSelector"


class ReplicaView(Value):
    __slots__ = ("broker_id", "log_end_offset", "rack", "time_since_caught_up_ms")
    FIELDS: ClassVar[tuple[str, ...]] = (
        "broker_id",
        "rack",
        "log_end_offset",
        "time_since_caught_up_ms",
    )
    broker_id: Final[int]
    rack: Final[str | None]
    log_end_offset: Final[int]
    time_since_caught_up_ms: Final[int]

    def __init__(
        self,
        broker_id: int,
        rack: str | None,
        log_end_offset: int,
        time_since_caught_up_ms: int,
    ) -> None:
        self.broker_id = broker_id
        self.rack = rack
        self.log_end_offset = log_end_offset
        self.time_since_caught_up_ms = time_since_caught_up_ms


def select_read_replica(
    client_rack: str | None, leader: ReplicaView, followers: list[ReplicaView]
) -> int:
    """The broker a consumer in ``client_rack`` should fetch from."""
    if not client_rack:
        return leader.broker_id
    same_rack = [r for r in [leader, *followers] if r.rack == client_rack]
    if not same_rack or leader in same_rack:
        return leader.broker_id
    best = max(same_rack, key=lambda r: (r.log_end_offset, -r.time_since_caught_up_ms))
    return best.broker_id


def selector_enabled(class_name: str | None) -> bool:
    """Whether ``replica.selector.class`` names the rack-aware selector (the leader
    selector, Kafka's default behaviour, and no class both mean: always the leader)."""
    return class_name is not None and class_name.strip() in SELECTOR_CLASSES


def candidates(
    fetch_offset: int,
    racks: Mapping[int, str | None],
    followers: Mapping[int, tuple[int, int, int]],
    now_ms: int,
) -> list[ReplicaView]:
    """Followers holding ``fetch_offset``: ``followers`` maps a broker to its (log start
    offset, log end offset, last caught-up time)."""
    return [
        ReplicaView(b, racks.get(b), leo, now_ms - caught_up)
        for b, (lso, leo, caught_up) in followers.items()
        if b in racks and lso <= fetch_offset <= leo
    ]
