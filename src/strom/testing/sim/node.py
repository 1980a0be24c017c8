"""A simulated broker: its ZooKeeper session and registration, the control plane
(LeaderAndIsr, UpdateMetadata, StopReplica, fenced as strom.broker.control_plane
does), its partitions (strom.replication.Partition over in-memory logs, made leader
or follower as strom.broker.replica_manager does), acks=all produce with delayed
completion, and the periodic ISR check. The replica fetchers and the AlterPartition
sender are in :mod:`strom.testing.sim.fetcher`, the controller in
:mod:`strom.testing.sim.runtime`.

A crash loses everything but the logs (``disk``) and the high watermark
checkpoint; the ZooKeeper session lives on until it expires. A paused broker runs
nothing: its timers and the messages it receives wait until it resumes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from strom.common.types import TopicPartition
from strom.metadata.image import PartitionInfo
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.generated.leader_and_isr import LeaderAndIsrRequest, LeaderAndIsrResponse
from strom.protocol.generated.stop_replica import StopReplicaRequest, StopReplicaResponse
from strom.protocol.generated.update_metadata import UpdateMetadataRequest, UpdateMetadataResponse
from strom.replication.partition import Partition
from strom.testing.sim import store as zs
from strom.testing.sim.alter import AlterPartitionSender
from strom.testing.sim.fetcher import FetcherManager
from strom.testing.sim.memlog import MemoryLog
from strom.testing.sim.network import CLIENT, ZK
from strom.testing.sim.runtime import ControllerRuntime
from strom.testing.sim.schedule import Timer
from strom.testing.sim.world import World
from strom.testing.sim.zk import NodeExists, ZkError

Reply = Callable[[Any], None]
LEADER_DURING_DELETE = -2


@dataclass(slots=True)
class Waiter:
    required: int
    reply: Callable[[ErrorCode, int], None]  # (error, leader epoch)
    timer: Timer | None = None


class SimNode:
    def __init__(self, world: World, node_id: int) -> None:
        self.world = world
        self.id = node_id
        self.cfg = world.config
        self.disk: dict[TopicPartition, MemoryLog] = {}
        self.hw_checkpoint: dict[TopicPartition, int] = {}
        self.up = False
        self.paused = False
        self.incarnation = 0
        self.deferred: list[Callable[[], None]] = []
        self._volatile()

    def _volatile(self) -> None:
        self.session = 0
        self.broker_epoch = -1
        self.registered = False
        self.controller_epoch = -1
        self.controller_id = -1  # the image's controller (UpdateMetadata)
        self.leaders: dict[TopicPartition, tuple[int, int]] = {}  # leader, leader epoch
        self.partitions: dict[TopicPartition, Partition[MemoryLog]] = {}
        self.waiters: dict[TopicPartition, list[Waiter]] = {}
        self.fetchers = FetcherManager(self)
        self.alter = AlterPartitionSender(self)
        self.runtime = ControllerRuntime(self)

    # -- running code on this broker ---------------------------------------------------
    @property
    def now_ms(self) -> int:
        return self.world.sched.now_ms

    def accept(self, incarnation: int, fn: Callable[[], None]) -> None:
        """Run ``fn`` (a timer or a message) unless this broker died since, or later if
        it is paused."""
        if not self.up or self.incarnation != incarnation:
            return
        if self.paused:
            self.deferred.append(fn)
            return
        fn()

    def later(self, delay_ms: int, label: str, fn: Callable[[], None]) -> Timer:
        inc = self.incarnation
        return self.world.sched.after(delay_ms, label, lambda: self.accept(inc, fn))

    def post(
        self, dst: int, label: str, fn: Callable[[], None], dst_inc: int | None = None
    ) -> None:
        """Send a message run at ``dst`` (a broker, ZK or CLIENT); to a broker's current
        life unless ``dst_inc`` names the one that asked (an answer)."""
        if dst in (CLIENT, ZK):
            self.world.net.send(self.id, dst, label, fn)
            return
        node = self.world.nodes[dst]
        if dst_inc is None:
            if not node.up:
                return
            dst_inc = node.incarnation
        inc = dst_inc
        self.world.net.send(self.id, dst, label, lambda: node.accept(inc, fn))

    # -- life --------------------------------------------------------------------------
    def start(self) -> None:
        self.incarnation += 1
        self.up, self.paused, self.deferred = True, False, []
        self._volatile()
        for tp, log in self.disk.items():  # recovery: the checkpointed high watermark
            log.high_watermark = min(self.hw_checkpoint.get(tp, 0), log.log_end_offset)
        self.world.note(f"broker {self.id} starts (life {self.incarnation})")
        self.new_session()
        self.later(self.cfg.heartbeat_ms, "heartbeat", self.heartbeat)
        self.later(self.cfg.replica_lag_time_max_ms // 2, "isr-check", self.check_isr)
        self.later(self.cfg.hw_checkpoint_ms, "hw-checkpoint", self.checkpoint)

    def crash(self) -> None:
        if self.up:
            self.world.note(f"broker {self.id} crashes")
        self.up, self.paused, self.deferred = False, False, []
        self._volatile()

    def pause(self) -> None:
        if self.up and not self.paused:
            self.world.note(f"broker {self.id} pauses")
            self.paused = True

    def resume(self) -> None:
        if not self.paused:
            return
        self.world.note(f"broker {self.id} resumes")
        self.paused = False
        deferred, self.deferred = self.deferred, []
        for fn in deferred:
            self.later(0, "resumed", fn)

    def halt(self, reason: str) -> None:
        """A disk error: every log directory is offline; the broker stops (Kafka halts)."""
        self.world.note(f"broker {self.id} halts: {reason}")
        self.crash()

    # -- ZooKeeper ---------------------------------------------------------------------
    def zk_up(self) -> bool:
        net = self.world.net
        return net.up(self.id, ZK) and net.up(ZK, self.id)

    def new_session(self) -> None:
        self.session = self.world.zk.open_session(self.cfg.session_timeout_ms, self.now_ms)
        self.registered = False
        if self.runtime.store is not None:  # kazoo carries on with the new session
            self.runtime.store.session = self.session
        self.try_register()

    def try_register(self) -> None:
        if self.registered:
            return
        if not self.zk_up() or not self.world.zk.is_alive(self.session):
            self.later(self.cfg.restart_retry_ms, "register", self.try_register)
            return
        try:
            self.broker_epoch = zs.register_broker(self.world.zk, self.session, self.id)
        except NodeExists:  # the previous life's znode: wait for its session to expire
            self.later(self.cfg.restart_retry_ms, "register", self.try_register)
            return
        self.registered = True
        self.world.note(f"broker {self.id} registered (epoch {self.broker_epoch})")
        self.runtime.on_registered()

    def heartbeat(self) -> None:
        if self.zk_up() and not self.world.zk.touch(self.session, self.now_ms):
            self.world.note(f"broker {self.id}: ZooKeeper session expired")
            self.runtime.on_session_lost()
            self.new_session()
        self.later(self.cfg.heartbeat_ms, "heartbeat", self.heartbeat)

    def on_watch(self, path: str) -> None:
        self.runtime.on_watch(path)

    # -- the control plane -------------------------------------------------------------
    def fence(self, controller_epoch: int, broker_epoch: int) -> ErrorCode:
        if controller_epoch < self.controller_epoch:
            return ErrorCode.STALE_CONTROLLER_EPOCH
        if broker_epoch != -1 and broker_epoch != self.broker_epoch:
            return ErrorCode.STALE_BROKER_EPOCH
        self.controller_epoch = controller_epoch
        return ErrorCode.NONE

    def on_leader_and_isr(self, req: LeaderAndIsrRequest) -> LeaderAndIsrResponse:
        code = self.fence(req.controller_epoch, req.broker_epoch)
        if code != ErrorCode.NONE:
            return LeaderAndIsrResponse(error_code=code)
        for ts in req.topic_states:
            for ps in ts.partition_states:
                state = PartitionInfo(
                    ps.partition_index,
                    ps.leader,
                    ps.leader_epoch,
                    tuple(ps.replicas),
                    tuple(ps.isr),
                    ps.partition_epoch,
                    (),
                    tuple(ps.adding_replicas),
                    tuple(ps.removing_replicas),
                )
                self._apply(TopicPartition(ts.topic_name, ps.partition_index), state)
        return LeaderAndIsrResponse(error_code=0)

    def _apply(self, tp: TopicPartition, state: PartitionInfo) -> None:
        if self.id not in state.replicas:
            return
        current = self.partitions.get(tp)
        if current is not None and current.leader_epoch >= 0:
            mine = (current.leader_epoch, current.partition_epoch)
            theirs = (state.leader_epoch, state.partition_epoch)
            if theirs < mine or (theirs == mine and current.leader_id == state.leader):
                return
        self.apply_partition_state(tp, state)

    def apply_partition_state(self, tp: TopicPartition, state: PartitionInfo) -> None:
        """strom.broker.replica_manager.ReplicaManager.apply_partition_state."""
        part = self.partitions.get(tp)
        if part is None:
            log = self.disk.get(tp)
            if log is None:
                log = self.disk[tp] = MemoryLog(f"{tp}@{self.id}", tp, self.world.checker.on_append)
            part = Partition(
                tp,
                log,
                self.id,
                self.cfg.min_insync_replicas,
                self.cfg.replica_lag_time_max_ms,
            )
            self.partitions[tp] = part
        was_leader = part.is_leader
        if state.leader == self.id:
            changed = part.make_leader(state, self.now_ms)
            if changed:
                self.fetchers.unfollow(tp)
                self.world.checker.on_leader(self, tp, part)
            self.on_high_watermark(tp)
        else:
            changed = part.make_follower(state)
            if was_leader:
                self._fail_waiters(tp, ErrorCode.NOT_LEADER_OR_FOLLOWER)
            if changed:
                self.fetchers.follow(tp, part)
            self.fetchers.wake(tp)

    def on_update_metadata(self, req: UpdateMetadataRequest) -> UpdateMetadataResponse:
        code = self.fence(req.controller_epoch, req.broker_epoch)
        if code != ErrorCode.NONE:
            return UpdateMetadataResponse(error_code=code)
        self.controller_id = req.controller_id
        for ts in req.topic_states:
            for ps in ts.partition_states:
                tp = TopicPartition(ts.topic_name, ps.partition_index)
                if ps.leader == LEADER_DURING_DELETE:
                    self.leaders.pop(tp, None)
                else:
                    self.leaders[tp] = (ps.leader, ps.leader_epoch)
        return UpdateMetadataResponse(error_code=0)

    def on_stop_replica(self, req: StopReplicaRequest) -> StopReplicaResponse:
        code = self.fence(req.controller_epoch, req.broker_epoch)
        if code != ErrorCode.NONE:
            return StopReplicaResponse(error_code=code)
        errors = []
        for ts in req.topic_states:
            for ps in ts.partition_states:
                tp = TopicPartition(ts.topic_name, ps.partition_index)
                error = ErrorCode.NONE
                current = self.partitions.get(tp)
                if current is not None and 0 <= ps.leader_epoch < current.leader_epoch:
                    error = ErrorCode.FENCED_LEADER_EPOCH
                else:
                    self.stop_replica(tp, ps.delete_partition)
                errors.append(
                    StopReplicaResponse.StopReplicaPartitionError(
                        ts.topic_name, ps.partition_index, error
                    )
                )
        return StopReplicaResponse(error_code=0, partition_errors=errors)

    def stop_replica(self, tp: TopicPartition, delete: bool) -> None:
        self.fetchers.unfollow(tp)
        if self.partitions.pop(tp, None) is not None:
            self._fail_waiters(tp, ErrorCode.NOT_LEADER_OR_FOLLOWER)
        self.world.checker.on_stop(self, tp)
        if delete:
            self.disk.pop(tp, None)
            self.hw_checkpoint.pop(tp, None)

    # -- produce (acks=all) ------------------------------------------------------------
    def on_produce(
        self, tp: TopicPartition, value: int, reply: Callable[[ErrorCode, int, int], None]
    ) -> None:
        """acks=all: ``reply(error, offset, leader epoch)`` once the high watermark passed
        the record (the leader's epoch then), or it failed."""
        part = self.partitions.get(tp)
        try:
            if part is None:
                raise KafkaError(ErrorCode.NOT_LEADER_OR_FOLLOWER)
            part.require_leader()
            hw = part.high_watermark
            info = part.append_records_to_leader(_value(value), -1, self.now_ms)
        except KafkaError as exc:
            reply(exc.code, -1, -1)
            return
        except OSError as exc:
            self.halt(str(exc))
            return
        self.world.checker.on_leader_append(self, tp, part)
        self.fetchers.wake(tp)
        if part.high_watermark != hw:
            self.on_high_watermark(tp)
        offset = info.first_offset
        done = part.check_enough_replicas_reach(offset + 1)
        if done is not None:
            reply(done, offset, part.leader_epoch)
            return
        waiter = Waiter(offset + 1, lambda code, epoch: reply(code, offset, epoch))
        waiter.timer = self.later(
            self.cfg.produce_timeout_ms, "produce-timeout", lambda: self._expire(tp, waiter)
        )
        self.waiters.setdefault(tp, []).append(waiter)

    def _expire(self, tp: TopicPartition, waiter: Waiter) -> None:
        waiting = self.waiters.get(tp, [])
        if waiter in waiting:
            waiting.remove(waiter)
            waiter.reply(ErrorCode.REQUEST_TIMED_OUT, -1)

    def on_high_watermark(self, tp: TopicPartition) -> None:
        """The high watermark may have moved: complete the acks=all produces it passed,
        wake the long-polling fetches (strom.broker.replica_manager.on_high_watermark)."""
        part = self.partitions.get(tp)
        waiting = self.waiters.get(tp)
        if part is not None:
            self.world.checker.on_high_watermark(self, tp, part)
        if waiting and part is not None:
            self._complete(tp, part, waiting)
        self.fetchers.wake(tp)

    def _complete(
        self, tp: TopicPartition, part: Partition[MemoryLog], waiting: list[Waiter]
    ) -> None:
        for w in list(waiting):
            code = part.check_enough_replicas_reach(w.required)
            if code is not None:
                waiting.remove(w)
                if w.timer is not None:
                    w.timer.cancel()
                w.reply(code, part.leader_epoch)

    def _fail_waiters(self, tp: TopicPartition, code: ErrorCode) -> None:
        for w in self.waiters.pop(tp, []):
            if w.timer is not None:
                w.timer.cancel()
            w.reply(code, -1)

    # -- periodic work -----------------------------------------------------------------
    def check_isr(self) -> None:
        for part in list(self.partitions.values()):
            if part.is_leader:
                self.alter.submit(part.maybe_shrink_isr(self.now_ms))
        self.later(self.cfg.replica_lag_time_max_ms // 2, "isr-check", self.check_isr)

    def checkpoint(self) -> None:
        for tp, part in self.partitions.items():
            self.hw_checkpoint[tp] = part.high_watermark
        self.later(self.cfg.hw_checkpoint_ms, "hw-checkpoint", self.checkpoint)

    def __repr__(self) -> str:
        state = "up" if self.up else "down"
        return f"broker {self.id} ({state}{', paused' if self.paused else ''})"


def _value(value: int) -> bytes:
    from strom.testing.sim.memlog import encode_values

    return encode_values([value])


__all__ = ["SimNode", "ZkError"]
