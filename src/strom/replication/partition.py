"""A partition replica's state: leadership, ISR, high watermark, leader epoch.

Pure logic over a PartitionLog: appends as leader, reads bounded by the high
watermark (read_uncommitted) or the last stable offset (read_committed), and
leader-epoch checks of client requests. With a single broker the ISR is the
leader alone and the high watermark follows the log end offset; replication
moves it from follower fetch positions instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from strom.common.types import TopicPartition
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.records import AppendOrigin
from strom.storage.log import AppendInfo, FetchDataInfo, PartitionLog
from strom.storage.txn_index import AbortedTxn

READ_UNCOMMITTED = 0
READ_COMMITTED = 1


@dataclass(frozen=True, slots=True)
class ReadResult:
    data: FetchDataInfo | None
    high_watermark: int
    last_stable_offset: int
    log_start_offset: int
    aborted: list[AbortedTxn]


class Partition:
    """The local replica of one partition."""

    def __init__(
        self,
        tp: TopicPartition,
        log: PartitionLog,
        node_id: int,
        leader_epoch: int,
        replicas: tuple[int, ...],
        isr: tuple[int, ...],
        min_insync_replicas: int = 1,
    ) -> None:
        self.tp = tp
        self.log = log
        self.node_id = node_id
        self.leader_epoch = leader_epoch
        self.replicas = replicas
        self.isr = isr
        self.min_insync_replicas = min_insync_replicas
        self.leader_id = replicas[0] if replicas else node_id
        if self.is_leader:
            self._maybe_increment_high_watermark()

    @property
    def is_leader(self) -> bool:
        return self.leader_id == self.node_id

    def check_leader_epoch(self, current_leader_epoch: int) -> None:
        """Kafka's check of the epoch a client believes current (-1: no check)."""
        if current_leader_epoch < 0 or current_leader_epoch == self.leader_epoch:
            return
        if current_leader_epoch < self.leader_epoch:
            raise KafkaError(ErrorCode.FENCED_LEADER_EPOCH)
        raise KafkaError(ErrorCode.UNKNOWN_LEADER_EPOCH)

    def _maybe_increment_high_watermark(self) -> None:
        # Only the leader replica is tracked locally; with ISR = {leader} the
        # high watermark is the log end offset.
        if set(self.isr) <= {self.node_id}:
            self.log.update_high_watermark(self.log.log_end_offset)

    @property
    def last_stable_offset(self) -> int:
        return self.log.last_stable_offset

    def append_records_to_leader(
        self,
        records: bytes | memoryview,
        required_acks: int,
        now_ms: int,
        origin: AppendOrigin = AppendOrigin.CLIENT,
    ) -> AppendInfo:
        if not self.is_leader:
            raise KafkaError(ErrorCode.NOT_LEADER_OR_FOLLOWER)
        if required_acks == -1 and len(self.isr) < self.min_insync_replicas:
            raise KafkaError(
                ErrorCode.NOT_ENOUGH_REPLICAS,
                f"The size of the current ISR {set(self.isr)} is insufficient to satisfy "
                f"the min.isr requirement of {self.min_insync_replicas} for partition {self.tp}",
            )
        info = self.log.append_as_leader(records, self.leader_epoch, now_ms, origin=origin)
        self._maybe_increment_high_watermark()
        return info

    def read_records(
        self,
        fetch_offset: int,
        max_bytes: int,
        isolation_level: int,
        min_one_message: bool,
    ) -> ReadResult:
        if not self.is_leader:
            raise KafkaError(ErrorCode.NOT_LEADER_OR_FOLLOWER)
        hw = self.log.high_watermark
        lso = self.last_stable_offset
        upper = lso if isolation_level == READ_COMMITTED else hw
        data = self.log.read(fetch_offset, max_bytes, upper, min_one_message)
        aborted = (
            self.log.collect_aborted_transactions(fetch_offset, upper)
            if isolation_level == READ_COMMITTED
            else []
        )
        return ReadResult(data, hw, lso, self.log.log_start_offset, aborted)

    def offset_snapshot(self) -> tuple[int, int, int]:
        """(log_start_offset, high_watermark, last_stable_offset)."""
        return self.log.log_start_offset, self.log.high_watermark, self.last_stable_offset
