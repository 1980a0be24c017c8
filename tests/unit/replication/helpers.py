"""Partitions over real PartitionLogs in a temporary directory, and a follower that
syncs with its leader the way strom's replica fetcher does (truncation by leader
epoch, then the leader's batches as they are)."""

from __future__ import annotations

from pathlib import Path

from strom.common.types import TopicPartition
from strom.metadata.image import PartitionInfo
from strom.protocol.records import build_batch, iter_batches
from strom.replication.partition import Partition
from strom.replication.truncation import diverging, truncation_for
from strom.storage.config import LogConfig
from strom.storage.log import PartitionLog

NOW = 1_700_000_000_000
TP = TopicPartition("t", 0)


def batch(*values: str) -> bytes:
    return build_batch([(None, v.encode(), [], NOW) for v in values])


def open_log(root: Path, name: str, high_watermark: int | None = None) -> PartitionLog:
    return PartitionLog.open(
        root / name / "t-0", LogConfig(), NOW, True, high_watermark=high_watermark
    )


def write(log: PartitionLog, epoch: int, *values: str) -> None:
    """Leader appends of one record each at ``epoch``."""
    for v in values:
        log.append_as_leader(batch(v), epoch, NOW)


def entries(log: PartitionLog) -> list[tuple[int, int, bytes]]:
    """(offset, partition leader epoch, value) of every record."""
    from strom.protocol.record_decoder import decode_batch

    out = []
    if log.log_end_offset == 0:
        return out
    info = log.read(log.log_start_offset, 1 << 24)
    for s in info.slices:
        for header, view in iter_batches(s.read()):
            for r in decode_batch(view)[1]:
                out.append((r.offset, header.partition_leader_epoch, r.value))
    return out


def truncate_against(follower: PartitionLog, leader: PartitionLog) -> int:
    """OffsetForLeaderEpoch rounds until done (KIP-101/279); the offset truncated to."""
    for _ in range(10):
        asked = follower.leader_epoch_cache.latest_epoch
        if asked < 0:
            return follower.log_end_offset
        epoch, end = leader.end_offset_for_epoch(asked)
        d = truncation_for(
            epoch,
            end,
            follower.log_end_offset,
            follower.high_watermark,
            follower.end_offset_for_epoch,
        )
        follower.truncate_to(d.offset)
        if d.done:
            return follower.log_end_offset
    raise AssertionError("truncation did not converge")


def fetch(follower: PartitionLog, leader: PartitionLog) -> None:
    """The leader's batches from the follower's log end, appended as they are; the
    leader first checks the fetch (diverging epoch) as Fetch v12+ does."""
    div = diverging(
        follower.leader_epoch_cache.latest_epoch,
        follower.log_end_offset,
        leader.end_offset_for_epoch,
    )
    assert div is None, f"diverging epoch {div}"
    if follower.log_end_offset < leader.log_end_offset:
        info = leader.read(follower.log_end_offset, 1 << 24)
        for s in info.slices:
            follower.append_as_follower(s.read(), NOW)


def state(leader: int, epoch: int, isr: tuple[int, ...], replicas=(1, 2, 3), partition_epoch=0):
    return PartitionInfo(0, leader, epoch, tuple(replicas), isr, partition_epoch)


def partition(root: Path, node: int, min_isr: int = 1, lag_ms: int = 10_000) -> Partition:
    return Partition(TP, open_log(root, f"n{node}"), node, min_isr, lag_ms)
