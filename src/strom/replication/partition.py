"""A partition replica's state: leader or follower, ISR, high watermark, leader epoch.

Pure logic over a PartitionLog, after Kafka's Partition class. As leader it
appends client batches, tracks every follower's fetch position (log end
offset, last caught-up time), advances the high watermark to the lowest log
end offset of the ISR (the *maximal* ISR while a change is pending, as Kafka
does, so an acknowledged record is on every replica that may become leader),
and decides ISR shrinks and expansions, which the IO edge reports to the
controller with AlterPartition. As follower it appends the leader's batches
as they are and keeps its high watermark at min(leader's, own log end).

Reads are bounded by the high watermark (read_uncommitted) or the last stable
offset (read_committed) for consumers, and by the log end for followers.
Leader epochs fence clients and followers both ways (KIP-320).
"""

from __future__ import annotations

from typing import Any, ClassVar, Final, Generic, Protocol, TypeVar

from strom.common.types import TopicPartition
from strom.common.values import Value
from strom.metadata.image import NO_LEADER, PartitionInfo
from strom.protocol.append_origin import AppendOrigin
from strom.protocol.errors import ErrorCode, KafkaError
from strom.storage.leader_epoch import LeaderEpochCache
from strom.storage.log import FetchDataInfo, PartitionLog
from strom.storage.log_append import AppendInfo
from strom.storage.txn_index import AbortedTxn

READ_UNCOMMITTED: Final = 0
READ_COMMITTED: Final = 1


class ReadResult(Value):
    __slots__ = ("aborted", "data", "high_watermark", "last_stable_offset", "log_start_offset")
    FIELDS: ClassVar[tuple[str, ...]] = (
        "data",
        "high_watermark",
        "last_stable_offset",
        "log_start_offset",
        "aborted",
    )
    data: Final[FetchDataInfo | None]
    high_watermark: Final[int]
    last_stable_offset: Final[int]
    log_start_offset: Final[int]
    aborted: Final[list[AbortedTxn]]

    def __init__(
        self,
        data: FetchDataInfo | None,
        high_watermark: int,
        last_stable_offset: int,
        log_start_offset: int,
        aborted: list[AbortedTxn],
    ) -> None:
        self.data = data
        self.high_watermark = high_watermark
        self.last_stable_offset = last_stable_offset
        self.log_start_offset = log_start_offset
        self.aborted = aborted


class FollowerState(Value):
    """The leader's view of one follower (Kafka's Replica)."""

    __slots__ = (
        "broker_epoch",
        "last_caught_up_time_ms",
        "last_fetch_leader_log_end_offset",
        "last_fetch_time_ms",
        "log_end_offset",
        "log_start_offset",
    )
    FIELDS: ClassVar[tuple[str, ...]] = (
        "log_end_offset",
        "log_start_offset",
        "last_caught_up_time_ms",
        "last_fetch_leader_log_end_offset",
        "last_fetch_time_ms",
        "broker_epoch",
    )
    log_end_offset: int
    log_start_offset: int
    last_caught_up_time_ms: int
    last_fetch_leader_log_end_offset: int
    last_fetch_time_ms: int
    broker_epoch: int

    __hash__ = None  # type: ignore[assignment]  # mutable, as an unfrozen dataclass

    def __init__(
        self,
        log_end_offset: int = -1,
        log_start_offset: int = -1,
        last_caught_up_time_ms: int = 0,
        last_fetch_leader_log_end_offset: int = -1,
        last_fetch_time_ms: int = 0,
        broker_epoch: int = -1,
    ) -> None:
        self.log_end_offset = log_end_offset
        self.log_start_offset = log_start_offset
        self.last_caught_up_time_ms = last_caught_up_time_ms
        self.last_fetch_leader_log_end_offset = last_fetch_leader_log_end_offset
        self.last_fetch_time_ms = last_fetch_time_ms
        self.broker_epoch = broker_epoch

    def is_caught_up(self, leader_end_offset: int, now_ms: int, lag_max_ms: int) -> bool:
        return (
            self.log_end_offset == leader_end_offset
            or self.last_caught_up_time_ms > now_ms - lag_max_ms
        )


class IsrChange(Value):
    """An ISR change the leader asks the controller for (AlterPartition)."""

    __slots__ = ("leader_epoch", "new_isr", "partition_epoch", "tp")
    FIELDS: ClassVar[tuple[str, ...]] = ("tp", "leader_epoch", "partition_epoch", "new_isr")
    tp: Final[TopicPartition]
    leader_epoch: Final[int]
    partition_epoch: Final[int]
    new_isr: Final[tuple[int, ...]]

    def __init__(
        self,
        tp: TopicPartition,
        leader_epoch: int,
        partition_epoch: int,
        new_isr: tuple[int, ...],
    ) -> None:
        self.tp = tp
        self.leader_epoch = leader_epoch
        self.partition_epoch = partition_epoch
        self.new_isr = new_isr


class ReplicaLog(Protocol):
    """What a Partition uses of its log: strom.storage.log.PartitionLog, or the
    simulation's in-memory log (strom.testing.sim.memlog). Compiled with mypyc, a
    Partition holds its log as a plain object, so either one will do."""

    @property
    def log_start_offset(self) -> int: ...
    @property
    def log_end_offset(self) -> int: ...
    @property
    def high_watermark(self) -> int: ...
    @property
    def last_stable_offset(self) -> int: ...
    @property
    def leader_epoch_cache(self) -> LeaderEpochCache: ...

    def update_high_watermark(self, offset: int) -> int: ...

    def append_as_leader(
        self,
        records: bytes | bytearray | memoryview,
        leader_epoch: int,
        now_ms: int,
        *,
        origin: AppendOrigin = ...,
        before_append: Any = ...,
    ) -> AppendInfo: ...

    def append_as_follower(
        self, records: bytes | bytearray | memoryview, now_ms: int
    ) -> AppendInfo: ...


LogT = TypeVar("LogT", bound=ReplicaLog)


class Partition(Generic[LogT]):
    """The local replica of one partition, over a log of type ``LogT``
    (``Partition[PartitionLog]`` in the broker)."""

    def __init__(
        self,
        tp: TopicPartition,
        log: LogT,
        node_id: int,
        min_insync_replicas: int = 1,
        replica_lag_time_max_ms: int = 30_000,
    ) -> None:
        self.tp = tp
        self.log = log
        self.node_id = node_id
        self.min_insync_replicas = min_insync_replicas
        self.replica_lag_time_max_ms = replica_lag_time_max_ms
        self.leader_id = NO_LEADER
        self.leader_epoch = -1
        self.partition_epoch = -1
        self.replicas: tuple[int, ...] = ()
        self.isr: tuple[int, ...] = ()
        self.pending_isr: tuple[int, ...] | None = None  # AlterPartition in flight
        self.followers: dict[int, FollowerState] = {}
        # The log end offset when this replica became leader: a follower is in sync only
        # once it reached it (Kafka's leaderEpochStartOffsetOpt).
        self.leader_epoch_start_offset = -1

    # -- leadership ------------------------------------------------------------------
    @property
    def is_leader(self) -> bool:
        return self.leader_id == self.node_id

    @property
    def maximal_isr(self) -> tuple[int, ...]:
        """The committed ISR, widened by a pending expansion (a pending shrink keeps the
        old members until it is committed)."""
        if self.pending_isr is None:
            return self.isr
        return tuple(sorted(set(self.isr) | set(self.pending_isr)))

    def make_leader(self, state: PartitionInfo, now_ms: int) -> bool:
        """Become (or stay) leader with ``state``; True when leadership is new or the
        leader epoch moved. Followers' positions are unknown until they fetch again;
        those in the ISR count as caught up now (Kafka's makeLeader)."""
        is_new_epoch = not self.is_leader or state.leader_epoch != self.leader_epoch
        self._set_state(state)
        if is_new_epoch:
            self.leader_epoch_start_offset = self.log.log_end_offset
            self.log.leader_epoch_cache.assign(state.leader_epoch, self.log.log_end_offset)
            self.followers = {
                r: FollowerState(last_caught_up_time_ms=now_ms if r in self.isr else 0)
                for r in state.replicas
                if r != self.node_id
            }
        else:
            for r in state.replicas:
                if r != self.node_id and r not in self.followers:
                    self.followers[r] = FollowerState()
            for r in list(self.followers):
                if r not in state.replicas:
                    del self.followers[r]
        self.maybe_increment_high_watermark(now_ms)
        return is_new_epoch

    def make_follower(self, state: PartitionInfo) -> bool:
        """Become (or stay) a follower of ``state.leader``; True when the leader or the
        leader epoch changed (the fetcher must then truncate and restart)."""
        changed = (
            self.is_leader
            or state.leader != self.leader_id
            or state.leader_epoch != self.leader_epoch
        )
        self._set_state(state)
        self.followers = {}
        self.leader_epoch_start_offset = -1
        # An epoch this replica led without writing a record starts at its log end: drop
        # it, as Kafka's truncateTo does. Sent as the last fetched epoch, the leader would
        # answer a diverging epoch at this very log end, and no truncation removes it.
        self.log.leader_epoch_cache.truncate_from_end(self.log.log_end_offset)
        return changed

    def _set_state(self, state: PartitionInfo) -> None:
        self.leader_id = state.leader
        self.leader_epoch = state.leader_epoch
        self.partition_epoch = state.partition_epoch
        self.replicas = state.replicas
        self.isr = state.isr
        self.pending_isr = None

    def check_leader_epoch(self, current_leader_epoch: int) -> None:
        """Kafka's check of the epoch a client believes current (-1: no check)."""
        if current_leader_epoch < 0 or current_leader_epoch == self.leader_epoch:
            return
        if current_leader_epoch < self.leader_epoch:
            raise KafkaError(ErrorCode.FENCED_LEADER_EPOCH)
        raise KafkaError(ErrorCode.UNKNOWN_LEADER_EPOCH)

    def require_leader(self) -> None:
        if not self.is_leader:
            raise KafkaError(ErrorCode.NOT_LEADER_OR_FOLLOWER)

    # -- high watermark ----------------------------------------------------------------
    def maybe_increment_high_watermark(self, now_ms: int) -> bool:
        """Leader: move the high watermark to the lowest log end offset of the maximal
        ISR, and of the caught-up replicas about to join it; True when it moved."""
        if self.leader_id != self.node_id:
            return False
        leader_end = self.log.log_end_offset
        new_hw = leader_end
        if self.followers:  # else (a single replica) the log end offset
            maximal = self.maximal_isr
            for r, f in self.followers.items():
                if f.log_end_offset >= new_hw:
                    continue
                joining = r not in maximal and f.is_caught_up(
                    leader_end, now_ms, self.replica_lag_time_max_ms
                )
                if r in maximal or joining:
                    new_hw = max(f.log_end_offset, 0)
        old = self.log.high_watermark
        if new_hw > old:
            self.log.update_high_watermark(new_hw)
            return True
        return False

    @property
    def high_watermark(self) -> int:
        return self.log.high_watermark

    @property
    def last_stable_offset(self) -> int:
        return self.log.last_stable_offset

    # -- leader: followers and the ISR ----------------------------------------------
    def update_follower_fetch_state(
        self,
        replica_id: int,
        fetch_offset: int,
        log_start_offset: int,
        now_ms: int,
        broker_epoch: int = -1,
    ) -> bool:
        """A follower fetched from ``fetch_offset`` (its log end offset). Returns True
        when the high watermark moved."""
        f = self.followers.get(replica_id)
        if f is None:
            raise KafkaError(
                ErrorCode.NOT_LEADER_OR_FOLLOWER,
                f"broker {replica_id} is not a replica of {self.tp}",
            )
        leader_end = self.log.log_end_offset
        if fetch_offset >= leader_end:
            f.last_caught_up_time_ms = max(f.last_caught_up_time_ms, now_ms)
        elif fetch_offset >= f.last_fetch_leader_log_end_offset:
            f.last_caught_up_time_ms = max(f.last_caught_up_time_ms, f.last_fetch_time_ms)
        f.last_fetch_leader_log_end_offset = leader_end
        f.last_fetch_time_ms = now_ms
        f.log_end_offset = fetch_offset
        f.log_start_offset = log_start_offset
        f.broker_epoch = broker_epoch
        return self.maybe_increment_high_watermark(now_ms)

    def _in_sync(self, replica_id: int) -> bool:
        f = self.followers.get(replica_id)
        return (
            f is not None
            and f.log_end_offset >= self.log.high_watermark
            and f.log_end_offset >= self.leader_epoch_start_offset
        )

    def maybe_expand_isr(self) -> IsrChange | None:
        """A follower out of the ISR that has caught up joins it (one change at a time)."""
        if not self.is_leader or self.pending_isr is not None:
            return None
        joining = [r for r in self.followers if r not in self.isr and self._in_sync(r)]
        if not joining:
            return None
        return self._propose(tuple(sorted({*self.isr, *joining})))

    def out_of_sync_replicas(self, now_ms: int) -> set[int]:
        leader_end = self.log.log_end_offset
        return {
            r
            for r in self.isr
            if r != self.node_id
            and (
                r not in self.followers
                or not self.followers[r].is_caught_up(
                    leader_end, now_ms, self.replica_lag_time_max_ms
                )
            )
        }

    def maybe_shrink_isr(self, now_ms: int) -> IsrChange | None:
        """Followers that have not caught up within replica.lag.time.max.ms leave the ISR
        (the leader never does)."""
        if not self.is_leader or self.pending_isr is not None:
            return None
        out = self.out_of_sync_replicas(now_ms)
        if not out:
            return None
        return self._propose(tuple(r for r in self.isr if r not in out))

    def _propose(self, new_isr: tuple[int, ...]) -> IsrChange:
        self.pending_isr = new_isr
        return IsrChange(self.tp, self.leader_epoch, self.partition_epoch, new_isr)

    def on_isr_change_committed(
        self, leader_epoch: int, partition_epoch: int, isr: tuple[int, ...], now_ms: int
    ) -> bool:
        """The controller's answer to AlterPartition: the new committed state. Returns
        True when the high watermark moved (a shrink can let it advance)."""
        if leader_epoch != self.leader_epoch or partition_epoch < self.partition_epoch:
            return False  # stale: a LeaderAndIsr will bring the truth
        self.isr, self.partition_epoch, self.pending_isr = isr, partition_epoch, None
        return self.maybe_increment_high_watermark(now_ms)

    def on_isr_change_failed(self) -> None:
        """AlterPartition failed: forget the pending change (retry on the next check)."""
        self.pending_isr = None

    # -- appends ---------------------------------------------------------------------
    def append_records_to_leader(
        self,
        records: bytes | memoryview,
        required_acks: int,
        now_ms: int,
        origin: AppendOrigin = AppendOrigin.CLIENT,
    ) -> AppendInfo:
        if self.leader_id != self.node_id:  # require_leader, without the call
            raise KafkaError(ErrorCode.NOT_LEADER_OR_FOLLOWER)
        if required_acks == -1 and len(self.isr) < self.min_insync_replicas:
            raise KafkaError(
                ErrorCode.NOT_ENOUGH_REPLICAS,
                f"The size of the current ISR {set(self.isr)} is insufficient to satisfy "
                f"the min.isr requirement of {self.min_insync_replicas} for partition {self.tp}",
            )
        info = self.log.append_as_leader(records, self.leader_epoch, now_ms, origin=origin)
        self.maybe_increment_high_watermark(now_ms)
        return info

    def check_enough_replicas_reach(self, required_offset: int) -> ErrorCode | None:
        """acks=all: None while the high watermark is below ``required_offset``; NONE
        once it passed and the ISR is large enough, else NOT_ENOUGH_REPLICAS_AFTER_APPEND."""
        if not self.is_leader:
            return ErrorCode.NOT_LEADER_OR_FOLLOWER
        if self.log.high_watermark < required_offset:
            return None
        if len(self.maximal_isr) < self.min_insync_replicas:
            return ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND
        return ErrorCode.NONE

    # -- follower ----------------------------------------------------------------------
    def append_records_to_follower(
        self, records: bytes | memoryview, leader_high_watermark: int, now_ms: int
    ) -> AppendInfo:
        info = self.log.append_as_follower(records, now_ms)
        self.update_follower_high_watermark(leader_high_watermark)
        return info

    def update_follower_high_watermark(self, leader_high_watermark: int) -> None:
        hw = min(leader_high_watermark, self.log.log_end_offset)
        if hw > self.log.high_watermark:
            self.log.update_high_watermark(hw)

    # -- reads -------------------------------------------------------------------------
    def read_records(
        self: Partition[PartitionLog],
        fetch_offset: int,
        max_bytes: int,
        isolation_level: int,
        min_one_message: bool,
        from_follower: bool = False,
        on_follower: bool = False,
    ) -> ReadResult:
        """Records from ``fetch_offset``: up to the log end for a follower's fetch, else
        up to the high watermark (or the last stable offset). ``on_follower``: a
        consumer reads from this replica while it is a follower (KIP-392). Only over a
        PartitionLog, which compiled code then reads natively, not by attribute name."""
        if not on_follower and self.leader_id != self.node_id:  # require_leader
            raise KafkaError(ErrorCode.NOT_LEADER_OR_FOLLOWER)
        log = self.log
        hw = log.high_watermark
        lso = log.last_stable_offset
        if from_follower:
            upper = log.log_end_offset
        else:
            upper = lso if isolation_level == READ_COMMITTED else hw
        data = log.read(fetch_offset, max_bytes, upper, min_one_message)
        aborted = (
            log.collect_aborted_transactions(fetch_offset, upper)
            if isolation_level == READ_COMMITTED and not from_follower
            else []
        )
        return ReadResult(data, hw, lso, log.log_start_offset, aborted)

    def low_watermark(self) -> int:
        """The lowest log start offset of the replicas in the ISR (DeleteRecords)."""
        starts = [self.log.log_start_offset]
        starts += [f.log_start_offset for r, f in self.followers.items() if r in self.isr]
        return min(starts)

    def follower_positions(self) -> dict[int, tuple[int, int, int]]:
        """Leader: (log start, log end, last caught-up time) of each follower."""
        return {
            r: (f.log_start_offset, f.log_end_offset, f.last_caught_up_time_ms)
            for r, f in self.followers.items()
        }

    def offset_snapshot(self) -> tuple[int, int, int]:
        """(log_start_offset, high_watermark, last_stable_offset)."""
        return self.log.log_start_offset, self.log.high_watermark, self.last_stable_offset
