"""The faults ``strom verify`` injects into a running ``strom dev-cluster``, found
through its state file (:mod:`strom.testing.devstate`).

- ``kill-leader``: kill -9 the leader of a random partition of the topic; the
  dev-cluster starts it again after the fault's duration;
- ``kill-controller``: the same for the controller;
- ``kill``: the same for a random broker;
- ``pause``: SIGSTOP the leader of a random partition, SIGCONT after the duration;
- ``partition``: cut the leader of a random partition off from the other brokers
  and ZooKeeper (clients still reach it) for the duration (root: iptables and
  cgroups, see :mod:`strom.testing.netfaults`).

After each fault the injector waits until every partition of the topic has a
leader and its whole ISR again. Every fault is an event of the History.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import time
from collections.abc import Callable
from pathlib import Path

from strom.testing.devstate import ClusterState, read_state, request_start
from strom.testing.history import History
from strom.testing.netfaults import Network, unavailable_reason
from strom.testing.workload import controller_of, partitions_of

FAULTS = ("kill-leader", "kill-controller", "kill", "pause", "partition")
RECOVERY_TIMEOUT_S = 90.0


class FaultError(RuntimeError):
    """A fault could not be injected or the cluster did not recover from it."""


def check_faults(names: list[str]) -> str | None:
    """Why these faults cannot be injected here (None when they can)."""
    unknown = [n for n in names if n not in FAULTS]
    if unknown:
        return f"unknown fault(s) {', '.join(unknown)}; known: {', '.join(FAULTS)}"
    if "partition" in names:
        return unavailable_reason()
    return None


def alive(pid: int) -> bool:
    """``pid`` runs (a zombie, killed but not reaped yet, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _wait(what: str, predicate: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if predicate():
                return
        except Exception:  # a broker still starting or failing over
            pass
        if time.monotonic() > deadline:
            raise FaultError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.2)


class Injector:
    def __init__(
        self, data: Path, topic: str, history: History, fault_s: float, seed: int | None = None
    ) -> None:
        self.data = data
        self.topic = topic
        self.history = history
        self.fault_s = fault_s
        self.rng = random.Random(seed)
        self._paused: set[int] = set()
        self._network: Network | None = None

    @property
    def state(self) -> ClusterState:
        return read_state(self.data)

    def inject(self, kind: str) -> None:
        """One fault of ``kind`` for ``fault_s`` seconds, healed, then recovered from."""
        faults: dict[str, Callable[[], None]] = {
            "kill-leader": lambda: self._kill(self._leader(), "the leader"),
            "kill-controller": lambda: self._kill(self._controller(), "the controller"),
            "kill": lambda: self._kill(self.rng.choice(self.state.brokers).id, "a broker"),
            "pause": self._pause,
            "partition": self._partition,
        }
        faults[kind]()
        self.wait_recovered()

    def _leader(self) -> int:
        leaders = [p.leader_id for p in partitions_of(self.state.bootstrap, self.topic)]
        live = [leader for leader in leaders if leader >= 0]
        if not live:
            raise FaultError(f"no partition of {self.topic} has a leader")
        return int(self.rng.choice(live))

    def _controller(self) -> int:
        controller = controller_of(self.state.bootstrap)
        if controller < 0:
            raise FaultError("no controller is known")
        return controller

    def _kill(self, broker_id: int, role: str) -> None:
        pid = self.state.broker(broker_id).pid
        started = self.history.now()
        os.kill(pid, signal.SIGKILL)
        time.sleep(self.fault_s)
        request_start(self.data, broker_id)
        _wait(
            f"broker {broker_id} to start again",
            lambda: self.state.broker(broker_id).pid not in (pid, -1),
            timeout_s=30,
        )
        self.history.span(f"kill -9 broker {broker_id} ({role})", started)

    def _pause(self) -> None:
        broker_id = self._leader()
        pid = self.state.broker(broker_id).pid
        started = self.history.now()
        os.kill(pid, signal.SIGSTOP)
        self._paused.add(pid)
        try:
            time.sleep(self.fault_s)
        finally:
            os.kill(pid, signal.SIGCONT)
            self._paused.discard(pid)
        self.history.span(f"SIGSTOP broker {broker_id} (the leader)", started)

    def _partition(self) -> None:
        state = self.state
        broker_id = self._leader()
        victim = state.broker(broker_id)
        others = [(b.pid, b.host, b.port) for b in state.brokers if b.id != broker_id]
        zk = state.zookeeper
        started = self.history.now()
        self._network = Network()
        try:
            self._network.partition(
                [(victim.pid, victim.host, victim.port)], [*others, (zk.pid, zk.host, zk.port)]
            )
            time.sleep(self.fault_s)
        finally:
            self._network.close()
            self._network = None
        self.history.span(f"broker {broker_id} (the leader) cut off from the cluster", started)

    def wait_recovered(self, timeout_s: float = RECOVERY_TIMEOUT_S) -> None:
        """Every partition has a leader and all its replicas in sync."""

        def recovered() -> bool:
            parts = partitions_of(self.state.bootstrap, self.topic)
            return all(p.leader_id >= 0 and len(p.isr_nodes) == len(p.replica_nodes) for p in parts)

        _wait(f"every partition of {self.topic} to be fully in sync", recovered, timeout_s)

    def heal_all(self) -> None:
        """Undo whatever a fault interrupted left: resume, reconnect, restart."""
        for pid in list(self._paused):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        self._paused.clear()
        if self._network is not None:
            self._network.close()
            self._network = None
        with contextlib.suppress(FileNotFoundError):
            for b in self.state.brokers:
                if not alive(b.pid):
                    request_start(self.data, b.id)
