"""The controller's IO edge on every broker of a ZooKeeper cluster.

Every broker watches /controller and tries to become controller when it is free.
The winner runs strom.controller's Controller on one dedicated thread (Kafka's
controller event thread): ZooKeeper watches, requests from brokers
(AlterPartition, ControlledShutdown) and admin requests (ElectLeaders,
reassignments) all become jobs on its queue, run one at a time. Its writes to
ZooKeeper block that thread, never the event loop; its requests to brokers go
through the ControllerChannelManager on the loop.

Resignation: when a fenced write fails (another controller was elected), when
/controller names another broker, or when the ZooKeeper session is lost, the
controller stops (its watches end, its channel closes) and the broker goes back
to watching /controller. A /controller naming this broker with no active
controller behind it (left by a resignation on a new session, or by an earlier
process of this broker) is deleted, as Kafka's triggerControllerMove does, so
that an election can follow.

A job whose ZooKeeper call failed with an unknown outcome (connection lost,
timeout) may have left the controller's memory ahead of ZooKeeper: the
controller then rebuilds its state from ZooKeeper, as on failover, with the same
epoch, retrying until ZooKeeper answers (Kafka's ZooKeeper client retries its
requests until connected again instead).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from strom.broker.controller_channel import ControllerChannelManager
from strom.common.errors import ControllerMovedError, MetadataUnavailableError
from strom.controller.controller import ControllerConfig
from strom.controller.reassign import Controller
from strom.metadata.zk import controller_store as zcs
from strom.metadata.zk import data as zd
from strom.metadata.zk.store import ZkMetadataStore
from strom.protocol.errors import NotControllerError

if TYPE_CHECKING:
    from strom.broker.broker import Broker

log = logging.getLogger(__name__)
R = TypeVar("R")
Job = Callable[[], None]


class ControllerRuntime:
    def __init__(self, broker: Broker, zk: ZkMetadataStore) -> None:
        self.broker = broker
        self.zk = zk
        self.controller: Controller | None = None
        self.cstore: zcs.ZkControllerStore | None = None
        self.channel: ControllerChannelManager | None = None
        self._jobs: queue.Queue[Job | None] = queue.Queue()
        self._thread = threading.Thread(
            target=self._run, name="controller-event-thread", daemon=True
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped = False
        # ZooKeeper connected: while the session is SUSPENDED the controller decides
        # nothing (its view may be stale); a LOST session makes it resign first.
        self._connected = threading.Event()
        self._connected.set()
        self._lost = False
        # the controller's memory may be ahead of ZooKeeper (a job failed mid-way)
        self._stale = False

    @property
    def is_active(self) -> bool:
        return self.controller is not None

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        """On the event loop, after the broker registered."""
        self._loop = asyncio.get_running_loop()
        self._thread.start()
        self.zk.session.client.DataWatch(zd.CONTROLLER, self._on_controller_znode)

    def shutdown(self) -> None:
        self._stopped = True
        self._jobs.put(self._resign)
        self._jobs.put(None)
        self._thread.join(timeout=10)

    def _on_controller_znode(self, raw: Any, _stat: Any) -> bool:
        """Kazoo's thread: /controller changed (or was deleted)."""
        if not self._stopped:
            self._jobs.put(self._check_controller)
        return not self._stopped

    def on_session_lost(self) -> None:
        self._lost = True
        self._connected.set()
        self._jobs.put(lambda: None)  # wake the thread: it resigns before anything else

    def on_suspended(self) -> None:
        self._connected.clear()

    def on_connected(self) -> None:
        self._connected.set()

    def on_registered(self) -> None:
        """Registered again after a session loss: try the election again."""
        self._jobs.put(self._check_controller)
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._rewatch)

    def _rewatch(self) -> None:
        self.zk.session.client.DataWatch(zd.CONTROLLER, self._on_controller_znode)

    # -- the controller thread ----------------------------------------------------------------
    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            while not self._connected.wait(0.5):
                if self._stopped:
                    return
            self._before_job()
            try:
                job()
            except ControllerMovedError as exc:
                log.warning("controller moved: %s; resigning", exc)
                self._resign()
                if not self._lost:  # after a session loss, the new registration re-checks
                    self._check_controller()
            except MetadataUnavailableError as exc:
                log.warning("controller job failed, ZooKeeper unavailable: %s", exc)
                if self.controller is not None:
                    self._stale = True
                    self._jobs.put(lambda: None)  # rebuild before the next job
            except Exception:
                log.exception("controller job failed")

    def _before_job(self) -> None:
        if self._lost:
            self._lost = False
            self._stale = False
            self._resign()
        if self._stale:
            self._reload()

    def _reload(self) -> None:
        """Rebuild the active controller's state from ZooKeeper (same epoch); on failure,
        try again a second later."""
        if self.controller is None or self.cstore is None or self.channel is None:
            self._stale = False
            return
        log.info("controller %d reloads its state from ZooKeeper", self.broker.node_id)
        assert self._loop is not None
        old_channel = self.channel
        self._loop.call_soon_threadsafe(old_channel.close)
        self.channel = self._new_channel()
        controller = self._new_controller(self.cstore, self.channel)
        try:
            controller.on_failover()
        except MetadataUnavailableError as exc:
            log.warning("controller reload failed, ZooKeeper unavailable: %s", exc)
            timer = threading.Timer(1.0, lambda: self._jobs.put(lambda: None))
            timer.daemon = True
            timer.start()
            return
        self.controller = controller
        self._stale = False

    def _check_controller(self) -> None:
        if self._stopped:
            return
        current = self.zk.controller_id()
        if self.controller is not None and current != self.broker.node_id:
            self._resign()
        if current == self.broker.node_id and self.controller is None:
            # ours, with no active controller behind it: free it for an election
            if zcs.release(self.zk.session, self.broker.node_id):
                log.info("broker %d deleted its stale /controller", self.broker.node_id)
            current = self.zk.controller_id()
        if current == -1 and self.controller is None:
            self._try_elect()

    def _try_elect(self) -> None:
        elected = zcs.elect(self.zk.session, self.broker.node_id)
        if elected is None:
            return
        epoch, version = elected
        assert self._loop is not None
        log.info("broker %d is the controller (epoch %d)", self.broker.node_id, epoch)
        self.cstore = zcs.ZkControllerStore(self.zk.session, epoch, version)
        self.channel = self._new_channel()
        self.controller = self._new_controller(self.cstore, self.channel)
        self.cstore.watch(self._on_event)  # events queue behind the failover
        self.controller.on_failover()

    def _new_channel(self) -> ControllerChannelManager:
        assert self._loop is not None
        return ControllerChannelManager(
            self._loop,
            self.broker.inter_broker_listener_name,
            f"controller-{self.broker.node_id}",
            self.broker.config.get_int("controller.socket.timeout.ms"),
        )

    def _new_controller(
        self, cstore: zcs.ZkControllerStore, channel: ControllerChannelManager
    ) -> Controller:
        cfg = self.broker.config
        controller = Controller(
            self.broker.node_id,
            cstore.epoch,
            cstore,
            channel,
            ControllerConfig(
                unclean_leader_election=cfg.get_bool("unclean.leader.election.enable"),
                delete_topic_enable=cfg.get_bool("delete.topic.enable"),
                auto_leader_rebalance=cfg.get_bool("auto.leader.rebalance.enable"),
                leader_imbalance_percentage=cfg.get_int("leader.imbalance.per.broker.percentage"),
            ),
            self.broker.inter_broker_listener_name,
        )
        controller.deliver = lambda event: self._jobs.put(event)  # type: ignore[method-assign]
        return controller

    def _resign(self) -> None:
        if self.controller is None:
            return
        log.info("broker %d resigns as controller", self.broker.node_id)
        if self.cstore is not None:
            self.cstore.close()
        if self.channel is not None and self._loop is not None:
            channel = self.channel
            self._loop.call_soon_threadsafe(channel.close)
        self.controller, self.cstore, self.channel = None, None, None

    def _on_event(self, name: str, arg: str | None) -> None:
        """Kazoo's thread: a watch fired; the controller thread handles it."""
        self._jobs.put(lambda: self._dispatch(name, arg))

    def _dispatch(self, name: str, arg: str | None) -> None:
        c = self.controller
        if c is None:
            return
        handlers: dict[str, Callable[[], None]] = {
            zcs.BROKER_CHANGE: c.on_broker_change,
            zcs.TOPIC_CHANGE: c.on_topic_change,
            zcs.TOPIC_DELETION: c.on_topic_deletion,
            zcs.REASSIGNMENT: c.on_reassignment_znode,
            zcs.PREFERRED_ELECTION: c.on_preferred_election_znode,
            zcs.ISR_CHANGE: c.on_isr_change_notification,
        }
        if name == zcs.PARTITION_MODIFICATION and arg is not None:
            c.on_partition_modification(arg)
        elif name in handlers:
            handlers[name]()

    # -- calls from the event loop ------------------------------------------------------------
    async def call(self, fn: Callable[[Controller], R]) -> R:
        """Run ``fn(controller)`` on the controller thread; NotControllerError when this
        broker is not (or stops being) the controller."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[R] = loop.create_future()

        def settle(outcome: Callable[[], None]) -> None:
            loop.call_soon_threadsafe(lambda: None if fut.done() else outcome())

        def job() -> None:
            c = self.controller
            if c is None:
                settle(lambda: fut.set_exception(NotControllerError()))
                return
            try:
                result = fn(c)
            except ControllerMovedError:
                settle(lambda: fut.set_exception(NotControllerError()))
                raise
            except Exception as exc:
                failure = exc
                settle(lambda: fut.set_exception(failure))
                return
            settle(lambda: fut.set_result(result))

        self._jobs.put(job)
        return await fut

    async def auto_rebalance(self) -> None:
        """leader.imbalance.check.interval.seconds: the preferred-leader check."""
        if self.controller is not None:
            try:
                moved = await self.call(lambda c: c.on_auto_rebalance())
            except NotControllerError:
                return
            if moved:
                log.info("auto leader rebalance moved %d leadership(s)", moved)
