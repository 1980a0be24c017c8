"""Where a follower truncates its log, by leader epoch (KIP-101, KIP-279), as Kafka's
AbstractFetcherThread decides it. Pure: epochs and offsets in, an offset out.

The follower asks the leader for the end offset of its own latest epoch
(OffsetForLeaderEpoch), or learns it from a Fetch response's diverging epoch
(Fetch v12+). The leader answers with the largest epoch it has that is not
above the one asked, and where that epoch ends in its log.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

UNDEFINED_EPOCH = -1
UNDEFINED_OFFSET = -1


@dataclass(frozen=True, slots=True)
class Truncation:
    """Truncate the log to ``offset``; ``done`` False: ask the leader again (about the
    epoch now latest locally) before fetching."""

    offset: int
    done: bool


def truncation_for(
    leader_epoch: int,
    leader_end_offset: int,
    log_end_offset: int,
    high_watermark: int,
    local_end_offset_for: Callable[[int], tuple[int, int]],
) -> Truncation:
    """The leader said its epoch ``leader_epoch`` (the largest not above what the
    follower asked) ends at ``leader_end_offset``. ``local_end_offset_for(epoch)`` is the
    follower's own (largest epoch <= epoch, its end offset), (-1, -1) when unknown."""
    if leader_end_offset == UNDEFINED_OFFSET:
        # The leader knows no such epoch (an old message format): Kafka's fallback.
        return Truncation(min(high_watermark, log_end_offset), True)
    if leader_epoch == UNDEFINED_EPOCH:
        return Truncation(min(leader_end_offset, log_end_offset), True)
    follower_epoch, follower_end = local_end_offset_for(leader_epoch)
    if follower_epoch == UNDEFINED_EPOCH:
        return Truncation(min(leader_end_offset, log_end_offset), True)
    if follower_epoch != leader_epoch:
        # The follower never had the leader's epoch: cut back to where its own earlier
        # epoch ends, then ask again about that one.
        return Truncation(min(follower_end, log_end_offset), False)
    return Truncation(min(follower_end, leader_end_offset, log_end_offset), True)


def diverging(
    last_fetched_epoch: int,
    fetch_offset: int,
    leader_end_offset_for: Callable[[int], tuple[int, int]],
) -> tuple[int, int] | None:
    """The leader's check of a follower's fetch (Fetch v12+): (epoch, end offset) to
    answer as the diverging epoch when the follower's log went where the leader's did
    not, None when the fetch position is consistent."""
    if last_fetched_epoch < 0:
        return None
    epoch, end_offset = leader_end_offset_for(last_fetched_epoch)
    if epoch == UNDEFINED_EPOCH:
        return None
    if epoch < last_fetched_epoch or end_offset < fetch_offset:
        return epoch, end_offset
    return None
