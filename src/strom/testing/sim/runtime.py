"""The controller on a simulated broker, as strom.broker.controller_runtime runs it:
every broker watches /controller and tries the election when it is free; the winner
runs strom.controller.reassign.Controller with a fenced store over the ZooKeeper
model, its watches (re-armed after each event, as kazoo's ChildrenWatch and
DataWatch do; an event waits, in order, while ZooKeeper is unreachable) and a channel
to the brokers. Jobs run one at a time; a fenced write (ControllerMovedError) makes it
resign, an unreachable ZooKeeper makes the job wait (below).

The channel (strom.broker.controller_channel.ControllerChannelManager) keeps one
queue per broker and sends one request at a time, resending it after a timeout
until it is answered or the broker is removed.

Two differences from strom.broker.controller_runtime, which handles the same two
cases another way (both were found here, seeds 2802 and 12627): a job that cannot
reach ZooKeeper waits and runs again once connected, as Kafka's ZooKeeper client
retries until connected, where the broker's runtime rebuilds the controller's state
from ZooKeeper (same epoch) so that its memory is never ahead of ZooKeeper; and a
lost session resigns at once (see :meth:`ControllerRuntime.on_session_lost`), where
the broker's runtime resigns before its next job, does not re-elect itself from a
job failing meanwhile, and deletes a /controller naming it with no active
controller behind it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from strom.common.errors import ControllerMovedError, MetadataUnavailableError
from strom.controller.controller import ControllerConfig
from strom.controller.reassign import Controller
from strom.metadata.image import BrokerInfo
from strom.metadata.zk import data as zd
from strom.protocol.errors import ErrorCode
from strom.protocol.generated.alter_partition import AlterPartitionResponse
from strom.protocol.generated.leader_and_isr import LeaderAndIsrRequest
from strom.protocol.generated.stop_replica import StopReplicaRequest
from strom.testing.sim import store as zs
from strom.testing.sim.zk import ZkError

if TYPE_CHECKING:
    from strom.testing.sim.node import SimNode

Job = Callable[[], None]
CHANNEL_RETRY_MS = 200
RETRY_MS = 100
CHILD_WATCHES = {
    zd.BROKER_IDS: "on_broker_change",
    zd.TOPICS: "on_topic_change",
    zd.DELETE_TOPICS: "on_topic_deletion",
    zd.ISR_CHANGES: "on_isr_change_notification",
}
DATA_WATCHES = {
    zd.REASSIGN_PARTITIONS: "on_reassignment_znode",
    zd.PREFERRED_ELECTION: "on_preferred_election_znode",
}


class SimChannel:
    def __init__(self, node: SimNode) -> None:
        self.node = node
        self.queues: dict[int, deque[tuple[Any, Callable[[Any], None] | None]]] = {}
        self.generation: dict[int, int] = {}
        self.busy: set[int] = set()
        self.closed = False

    def add_broker(self, info: BrokerInfo) -> None:
        self.remove_broker(info.node_id)
        self.queues[info.node_id] = deque()

    def remove_broker(self, broker_id: int) -> None:
        self.queues.pop(broker_id, None)
        self.busy.discard(broker_id)
        self.generation[broker_id] = self.generation.get(broker_id, 0) + 1

    def close(self) -> None:
        self.closed = True
        for b in list(self.queues):
            self.remove_broker(b)

    def send(self, broker_id: int, request: Any, on_response: Any = None) -> None:
        q = self.queues.get(broker_id)
        if q is None or self.closed:
            return
        q.append((request, on_response))
        self._pump(broker_id)

    def _pump(self, broker_id: int) -> None:
        q = self.queues.get(broker_id)
        if not q or broker_id in self.busy:
            return
        self.busy.add(broker_id)
        self._deliver(broker_id, self.generation[broker_id], *q[0])

    def _deliver(
        self, broker_id: int, gen: int, request: Any, cb: Callable[[Any], None] | None
    ) -> None:
        node = self.node
        target = node.world.nodes[broker_id]
        state = {"done": False}
        inc = node.incarnation

        def answered(resp: Any) -> None:
            if state["done"] or self.generation.get(broker_id) != gen:
                return
            state["done"] = True
            timer.cancel()
            q = self.queues[broker_id]
            q.popleft()
            self.busy.discard(broker_id)
            if cb is not None:
                cb(resp)
            self._pump(broker_id)

        def timed_out() -> None:
            if state["done"] or self.generation.get(broker_id) != gen:
                return
            state["done"] = True
            node.later(CHANNEL_RETRY_MS, "channel-retry", lambda: self._retry(broker_id, gen))

        timer = node.later(node.cfg.request_timeout_ms, "channel-timeout", timed_out)

        def at_broker() -> None:
            resp = _handle_control(target, request)
            target.post(node.id, "control-answer", lambda: answered(resp), inc)

        node.post(broker_id, type(request).__name__, at_broker)

    def _retry(self, broker_id: int, gen: int) -> None:
        q = self.queues.get(broker_id)
        if q and self.generation.get(broker_id) == gen:
            self._deliver(broker_id, gen, *q[0])


def _handle_control(node: SimNode, request: Any) -> Any:
    if isinstance(request, LeaderAndIsrRequest):
        return node.on_leader_and_isr(request)
    if isinstance(request, StopReplicaRequest):
        return node.on_stop_replica(request)
    return node.on_update_metadata(request)


class ControllerRuntime:
    def __init__(self, node: SimNode) -> None:
        self.node = node
        self.controller: Controller | None = None
        self.store: zs.SimControllerStore | None = None
        self.channel: SimChannel | None = None
        self.jobs: deque[Job] = deque()
        self.running = False
        self.watch_events: deque[str] = deque()  # kazoo's event thread, one at a time

    @property
    def active(self) -> bool:
        return self.controller is not None

    # -- the job queue -----------------------------------------------------------------
    def enqueue(self, job: Job) -> None:
        self.jobs.append(job)
        if not self.running:
            self.running = True
            self.node.later(1, "controller-job", self._step)

    def _step(self) -> None:
        if not self.jobs:
            self.running = False
            return
        job = self.jobs.popleft()
        try:
            job()
        except ControllerMovedError:
            self.node.world.note(f"broker {self.node.id}: controller moved; resigning")
            self.resign()
            self._check_controller()
        except (MetadataUnavailableError, ZkError) as exc:
            if not self.node.zk_up():
                # Kafka's ZooKeeper client retries until it is connected again (or the
                # session expired): the controller thread waits, the job runs again
                self.jobs.appendleft(job)
                self.node.later(RETRY_MS, "controller-job-retry", self._step)
                return
            self.node.world.note(f"broker {self.node.id}: controller job failed: {exc!r}")
        if self.jobs:
            self.node.later(1, "controller-job", self._step)
        else:
            self.running = False

    # -- election and resignation ------------------------------------------------------
    def on_registered(self) -> None:
        self._watch_controller()
        self.enqueue(self._check_controller)

    def on_session_lost(self) -> None:
        """Kafka's Expire event (put with clearAndPut, processed before the new session
        exists): the queued jobs are dropped and the controller resigns at once.
        strom.broker.controller_runtime queued the resignation behind the jobs;
        a job failing with ControllerMovedError meanwhile re-elects this broker inline,
        and the queued resignation then deposes the new controller while its /controller
        znode stays: no controller at all (simulation seed 2802, since fixed there)."""
        self.jobs.clear()
        self.resign()

    def _watch_controller(self) -> None:
        node = self.node
        if node.zk_up() and node.world.zk.is_alive(node.session):
            node.world.zk.exists(node.session, zd.CONTROLLER, watch=True)

    def _check_controller(self) -> None:
        node = self.node
        if not node.zk_up():
            raise MetadataUnavailableError("ZooKeeper is not reachable")
        raw = node.world.zk.nodes.get(zd.CONTROLLER)
        node.world.zk.exists(node.session, zd.CONTROLLER)  # a read: fails when expired
        current = zd.decode_controller(raw.data) if raw is not None else -1
        if self.controller is not None and current != node.id:
            self.resign()
        if current == -1 and self.controller is None and node.registered:
            self._try_elect()

    def _try_elect(self) -> None:
        node = self.node
        elected = zs.elect(node.world.zk, node.session, node.id)
        if elected is None:
            return
        epoch, version = elected
        node.world.note(f"broker {node.id} is the controller (epoch {epoch})")
        self.store = zs.SimControllerStore(
            node.world.zk, node.session, epoch, version, reachable=node.zk_up,
            observer=node.world.checker.store_observer(node.id),
        )  # fmt: skip
        self.channel = SimChannel(node)
        cfg = node.cfg
        controller = Controller(
            node.id,
            epoch,
            self.store,
            self.channel,
            ControllerConfig(unclean_leader_election=cfg.unclean_leader_election),
            zs.LISTENER,
        )
        controller.deliver = lambda event: self.enqueue(event)  # type: ignore[method-assign]
        self.controller = controller
        controller.on_failover()
        self._arm_all()
        node.later(cfg.auto_rebalance_ms, "auto-rebalance", lambda: self._rebalance(controller))

    def resign(self) -> None:
        if self.controller is None:
            return
        self.node.world.note(f"broker {self.node.id} resigns as controller")
        if self.channel is not None:
            self.channel.close()
        self.controller, self.store, self.channel = None, None, None

    def _rebalance(self, controller: Controller) -> None:
        if self.controller is not controller:
            return

        def rebalance() -> None:
            controller.on_auto_rebalance()

        self.enqueue(rebalance)
        self.node.later(
            self.node.cfg.auto_rebalance_ms, "auto-rebalance", lambda: self._rebalance(controller)
        )

    # -- watches -----------------------------------------------------------------------
    def _arm(self, path: str) -> None:
        zk, sid = self.node.world.zk, self.node.session
        if path in CHILD_WATCHES:
            zk.children(sid, path, watch=True)
        elif path in DATA_WATCHES or path.startswith(zd.TOPICS + "/"):
            zk.exists(sid, path, watch=True)

    def _arm_all(self) -> None:
        """Kafka's and kazoo's watches; their first call runs each handler once."""
        for path, handler in CHILD_WATCHES.items():
            self._arm(path)
            self._dispatch(handler)
        for path, handler in DATA_WATCHES.items():
            self._arm(path)
            if path in self.node.world.zk.nodes:
                self._dispatch(handler)
        for topic in self.node.world.zk.children(self.node.session, zd.TOPICS):
            self._arm(zd.topic_path(topic))

    def on_watch(self, path: str) -> None:
        """A watch fired. kazoo runs the watch callbacks one at a time on its event thread,
        and its ChildrenWatch and DataWatch read the znode again (re-arming the watch)
        before calling back; that read waits while ZooKeeper is unreachable (kazoo retries
        it and queues requests until connected; its session listener reads again on
        reconnection), so an event waits for ZooKeeper and is never dropped. Dropping it
        left the /brokers/ids watch disarmed for good: a broker registering then was
        never given its partitions (seed 109732)."""
        self.watch_events.append(path)
        if len(self.watch_events) == 1:
            self._next_watch()

    def _next_watch(self) -> None:
        while self.watch_events:
            if not self.node.zk_up():
                self.node.later(RETRY_MS, "watch-retry", self._next_watch)
                return
            self._handle_watch(self.watch_events.popleft())

    def _handle_watch(self, path: str) -> None:
        if path == zd.CONTROLLER:
            self._watch_controller()
            self.enqueue(self._check_controller)
            return
        c = self.controller
        if c is None:
            return
        try:
            self._arm(path)
            if path == zd.TOPICS:
                for topic in self.node.world.zk.children(self.node.session, zd.TOPICS):
                    self._arm(zd.topic_path(topic))
        except ZkError:
            return
        handler = CHILD_WATCHES.get(path) or DATA_WATCHES.get(path)
        if handler is not None:
            self._dispatch(handler)
        elif path.startswith(zd.TOPICS + "/") and path in self.node.world.zk.nodes:
            self._dispatch("on_partition_modification", path.rsplit("/", 1)[1])

    def _dispatch(self, handler: str, *args: str) -> None:
        """A watch event as a job for whichever controller is active when it runs
        (strom.broker.controller_runtime's _dispatch)."""

        def job() -> None:
            if self.controller is not None:
                getattr(self.controller, handler)(*args)

        self.enqueue(job)

    # -- requests from brokers and admins ----------------------------------------------
    def call(
        self,
        fn: Callable[[Controller], Any],
        reply: Callable[[Any], None],
        refused: Any,
        failed: Any,
    ) -> None:
        """Run ``fn(controller)`` as a job; ``reply(result)``, ``reply(refused)`` when this
        broker is not (or stops being) the controller, ``reply(failed)`` when ZooKeeper
        failed with the session (the broker's dispatch answers UNKNOWN_SERVER_ERROR)."""

        def job() -> None:
            c = self.controller
            if c is None:
                reply(refused)
                return
            try:
                result = fn(c)
            except ControllerMovedError:
                reply(refused)
                raise
            except (MetadataUnavailableError, ZkError):
                if self.node.zk_up():
                    reply(failed)  # else the job runs again once connected
                raise
            reply(result)

        self.enqueue(job)

    def alter_partition(self, req: Any, reply: Callable[[Any], None]) -> None:
        refused = AlterPartitionResponse(error_code=ErrorCode.NOT_CONTROLLER)
        if self.controller is None:
            reply(refused)
            return
        failed = AlterPartitionResponse(error_code=ErrorCode.UNKNOWN_SERVER_ERROR)
        self.call(lambda c: c.alter_partition(req, 3), reply, refused, failed)
