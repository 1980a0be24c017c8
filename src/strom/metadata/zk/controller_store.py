"""The controller's ZooKeeper access: election, fenced writes, reads and watches.

Election (Kafka's registerControllerAndIncrementControllerEpoch): in one multi,
create the ephemeral /controller and set /controller_epoch to the next epoch,
expecting the version just read. The new version of /controller_epoch then
fences every write of this controller: each write is a multi whose first
operation checks that version, so a deposed controller's write fails as a
whole (ControllerMovedError) instead of overwriting its successor's.

Watches are one-shot in ZooKeeper; kazoo's ChildrenWatch/DataWatch re-arm them.
Their callbacks run on kazoo's threads and only hand an event name to
``on_event`` (the runtime queues it for the controller thread). They stop when
the store is closed (the controller resigned).

A connection loss drops the watches (ZooKeeper keeps them per connection). Kafka's
ZooKeeper client sends them again on reconnection with the last zxid it saw
(SetWatches), and ZooKeeper fires those whose znodes changed meanwhile. kazoo does
not: its ChildrenWatch reads the children again and calls back only if the list
differs, so a broker that re-registered while the controller was disconnected (the
same ids, a new broker epoch) went unnoticed, and the controller kept sending it
requests for its previous life. On reconnection the store reports a broker change;
the controller compares the broker epochs (Kafka's processBrokerChange).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from kazoo.client import KazooState
from kazoo.exceptions import BadVersionError, NodeExistsError, NoNodeError

from strom.common.errors import ControllerMovedError
from strom.common.types import TopicPartition
from strom.metadata.image import BrokerInfo, LeaderAndIsr, TopicAssignment
from strom.metadata.store import BROKERS, TOPICS
from strom.metadata.zk import data as zd
from strom.metadata.zk.session import ZkSession

log = logging.getLogger(__name__)

# Events handed to the runtime: (name, argument)
BROKER_CHANGE = "broker_change"
TOPIC_CHANGE = "topic_change"
PARTITION_MODIFICATION = "partition_modification"
TOPIC_DELETION = "topic_deletion"
REASSIGNMENT = "reassignment"
PREFERRED_ELECTION = "preferred_election"
ISR_CHANGE = "isr_change"
EventSink = Callable[[str, str | None], None]


def elect(session: ZkSession, broker_id: int) -> tuple[int, int] | None:
    """Try to become controller: (controller epoch, its znode version), or None when
    another broker is controller."""
    while True:
        if session.exists(zd.CONTROLLER) is not None:
            return None
        try:
            raw, stat = session.get(zd.CONTROLLER_EPOCH)
        except NoNodeError:
            with contextlib.suppress(NodeExistsError):
                session.create(zd.CONTROLLER_EPOCH, zd.encode_controller_epoch(0))
            continue
        epoch = zd.decode_controller_epoch(raw) + 1
        tx = session.transaction()
        tx.create(zd.CONTROLLER, zd.encode_controller(broker_id), ephemeral=True)
        tx.set_data(zd.CONTROLLER_EPOCH, zd.encode_controller_epoch(epoch), stat.version)
        results = session.commit(tx)
        if isinstance(results[0], NodeExistsError):
            return None
        if any(isinstance(r, Exception) for r in results):
            continue  # the epoch moved meanwhile: read again
        return epoch, int(results[1].version)


def release(session: ZkSession, broker_id: int) -> bool:
    """Delete /controller when it names ``broker_id`` (a controller that resigned while
    its znode stayed); whether it was deleted."""
    try:
        raw, stat = session.get(zd.CONTROLLER)
        if zd.decode_controller(raw) != broker_id:
            return False
        session.delete(zd.CONTROLLER, stat.version)
    except (NoNodeError, BadVersionError):
        return False
    return True


class ZkControllerStore:
    def __init__(self, session: ZkSession, epoch: int, epoch_zk_version: int) -> None:
        self.session = session
        self.epoch = epoch
        self.epoch_zk_version = epoch_zk_version
        self.active = True
        self._topic_watches: set[str] = set()
        self._on_event: EventSink | None = None
        self._suspended = False

    def close(self) -> None:
        self.active = False
        if self._on_event is not None:
            self.session.client.remove_listener(self._connection_state)

    # -- fencing ------------------------------------------------------------------------
    def _fenced(self) -> Any:
        tx = self.session.transaction()
        tx.check(zd.CONTROLLER_EPOCH, self.epoch_zk_version)
        return tx

    def _commit(self, tx: Any) -> list[Any]:
        results = self.session.commit(tx)
        if isinstance(results[0], Exception) and not _rolled_back(results[0]):
            raise ControllerMovedError(
                f"the controller epoch znode is no longer at version {self.epoch_zk_version}"
            )
        return results[1:]

    # -- reads ----------------------------------------------------------------------------
    def live_brokers(self) -> dict[int, BrokerInfo]:
        out = {}
        for name in self.session.children(zd.BROKER_IDS):
            try:
                raw, stat = self.session.get(f"{zd.BROKER_IDS}/{name}")
            except NoNodeError:
                continue
            endpoints, rack = zd.decode_broker(raw)
            out[int(name)] = BrokerInfo(int(name), endpoints, rack, int(stat.czxid))
        return out

    def topic_names(self) -> set[str]:
        return set(self.session.children(zd.TOPICS))

    def topic_assignment(self, topic: str) -> TopicAssignment | None:
        try:
            return zd.decode_topic(self.session.get(zd.topic_path(topic))[0])
        except NoNodeError:
            return None

    def partition_states(self, tps: Iterable[TopicPartition]) -> dict[TopicPartition, LeaderAndIsr]:
        out = {}
        for tp in tps:
            try:
                raw, stat = self.session.get(zd.partition_state_path(tp))
            except NoNodeError:
                continue
            out[tp] = zd.decode_partition_state(raw, int(stat.version))
        return out

    def topics_to_delete(self) -> set[str]:
        return set(self.session.children(zd.DELETE_TOPICS))

    def _config(self, entity_type: str, name: str) -> dict[str, str]:
        try:
            return zd.decode_config(self.session.get(zd.config_path(entity_type, name))[0])
        except NoNodeError:
            return {}

    def topic_configs(self, topic: str) -> Mapping[str, str]:
        return self._config(TOPICS, topic)

    def default_broker_configs(self) -> Mapping[str, str]:
        return self._config(BROKERS, "")

    def reassignment_request(self) -> dict[TopicPartition, tuple[int, ...]] | None:
        try:
            return zd.decode_reassignment(self.session.get(zd.REASSIGN_PARTITIONS)[0])
        except NoNodeError:
            return None

    def preferred_election_request(self) -> set[TopicPartition] | None:
        try:
            return zd.decode_partitions(self.session.get(zd.PREFERRED_ELECTION)[0])
        except NoNodeError:
            return None

    def isr_change_notifications(self) -> list[tuple[str, set[TopicPartition]]]:
        out = []
        for name in sorted(self.session.children(zd.ISR_CHANGES)):
            try:
                raw, _ = self.session.get(f"{zd.ISR_CHANGES}/{name}")
            except NoNodeError:
                continue
            out.append((name, zd.decode_partitions(raw)))
        return out

    # -- fenced writes ----------------------------------------------------------------------
    def create_partition_states(
        self, states: Mapping[TopicPartition, LeaderAndIsr]
    ) -> dict[TopicPartition, LeaderAndIsr]:
        created = {}
        for tp, state in states.items():
            base = f"{zd.TOPICS}/{tp.topic}/partitions"
            for path in (base, f"{base}/{tp.partition}"):
                if self.session.exists(path) is None:
                    with contextlib.suppress(NodeExistsError):
                        self.session.create(path, b"", makepath=True)
            tx = self._fenced()
            tx.create(zd.partition_state_path(tp), zd.encode_partition_state(state))
            result = self._commit(tx)[0]
            if not isinstance(result, Exception):
                created[tp] = LeaderAndIsr(
                    state.leader, state.leader_epoch, state.isr, state.controller_epoch, 0
                )
        return created

    def update_partition_states(
        self, states: Mapping[TopicPartition, LeaderAndIsr]
    ) -> dict[TopicPartition, LeaderAndIsr | None]:
        out: dict[TopicPartition, LeaderAndIsr | None] = {}
        for tp, state in states.items():
            tx = self._fenced()
            tx.set_data(
                zd.partition_state_path(tp), zd.encode_partition_state(state), state.zk_version
            )
            result = self._commit(tx)[0]
            if isinstance(result, Exception):
                out[tp] = None
            else:
                out[tp] = LeaderAndIsr(
                    state.leader,
                    state.leader_epoch,
                    state.isr,
                    state.controller_epoch,
                    int(result.version),
                )
        return out

    def set_topic_assignment(self, topic: str, assignment: TopicAssignment) -> None:
        tx = self._fenced()
        tx.set_data(zd.topic_path(topic), zd.encode_topic(assignment))
        self._commit(tx)

    def _subtree(self, path: str) -> list[str]:
        """``path`` and every znode below it, deepest first."""
        try:
            children = self.session.children(path)
        except NoNodeError:
            return []
        out: list[str] = []
        for child in children:
            out += self._subtree(f"{path}/{child}")
        return [*out, path]

    def delete_topic(self, topic: str) -> None:
        paths = self._subtree(zd.topic_path(topic))
        for extra in (zd.config_path(TOPICS, topic), f"{zd.DELETE_TOPICS}/{topic}"):
            if self.session.exists(extra) is not None:
                paths.append(extra)
        if not paths:
            return
        tx = self._fenced()
        for path in paths:
            tx.delete(path)
        results = self._commit(tx)
        if any(isinstance(r, Exception) for r in results):  # raced with a change: retry once
            self.delete_topic(topic)

    def set_reassignment_request(self, remaining: Mapping[TopicPartition, tuple[int, ...]]) -> None:
        tx = self._fenced()
        if remaining:
            tx.set_data(zd.REASSIGN_PARTITIONS, zd.encode_reassignment(remaining))
        elif self.session.exists(zd.REASSIGN_PARTITIONS) is not None:
            tx.delete(zd.REASSIGN_PARTITIONS)
        else:
            return
        self._commit(tx)

    def delete_preferred_election_request(self) -> None:
        if self.session.exists(zd.PREFERRED_ELECTION) is not None:
            tx = self._fenced()
            tx.delete(zd.PREFERRED_ELECTION)
            self._commit(tx)

    def delete_isr_change_notifications(self, names: Iterable[str]) -> None:
        for name in names:
            with contextlib.suppress(NoNodeError):
                self.session.delete(f"{zd.ISR_CHANGES}/{name}")

    # -- watches ------------------------------------------------------------------------------
    def watch(self, on_event: EventSink) -> None:
        """Register the controller's watches; each change becomes an event."""
        self._on_event = on_event
        client = self.session.client

        def children(event: str) -> Callable[[list[str]], bool]:
            def fired(_children: list[str]) -> bool:
                if self.active:
                    on_event(event, None)
                    if event == TOPIC_CHANGE:
                        self._watch_topics(_children)
                return self.active

            return fired

        def data(event: str) -> Callable[[Any, Any], bool]:
            def fired(raw: Any, _stat: Any) -> bool:
                if self.active and raw is not None:
                    on_event(event, None)
                return self.active

            return fired

        client.ChildrenWatch(zd.BROKER_IDS, children(BROKER_CHANGE), send_event=False)
        client.ChildrenWatch(zd.TOPICS, children(TOPIC_CHANGE), send_event=False)
        client.ChildrenWatch(zd.DELETE_TOPICS, children(TOPIC_DELETION), send_event=False)
        client.ChildrenWatch(zd.ISR_CHANGES, children(ISR_CHANGE), send_event=False)
        client.DataWatch(zd.REASSIGN_PARTITIONS, data(REASSIGNMENT))
        client.DataWatch(zd.PREFERRED_ELECTION, data(PREFERRED_ELECTION))
        client.add_listener(self._connection_state)

    def _connection_state(self, state: str) -> bool:
        """kazoo's connection listener: connected again after a connection loss, report a
        broker change (see the module's docstring). True removes the listener."""
        if not self.active:
            return True
        if state == KazooState.SUSPENDED:
            self._suspended = True
        elif state == KazooState.CONNECTED and self._suspended:
            self._suspended = False
            if self._on_event is not None:
                self._on_event(BROKER_CHANGE, None)
        return False

    def _watch_topics(self, names: Iterable[str]) -> None:
        for topic in names:
            if topic not in self._topic_watches:
                self._topic_watches.add(topic)
                self.session.client.DataWatch(zd.topic_path(topic), self._topic_watcher(topic))

    def _topic_watcher(self, topic: str) -> Callable[[Any, Any], bool]:
        """A DataWatch callback for /brokers/topics/<topic>. It takes exactly (data, stat):
        kazoo passes the event too to a function of three parameters."""
        first = [True]

        def fired(raw: Any, _stat: Any) -> bool:
            if not self.active or raw is None:
                self._topic_watches.discard(topic)
                return False
            if first[0]:
                first[0] = False  # the initial read is not a change
            elif self._on_event is not None:
                self._on_event(PARTITION_MODIFICATION, topic)
            return True

        return fired


def _rolled_back(exc: Exception) -> bool:
    """The check passed but a later operation of the multi failed (all rolled back)."""
    from kazoo.exceptions import RolledBackError

    return isinstance(exc, RolledBackError)


__all__ = ["BadVersionError", "ZkControllerStore", "elect"]
