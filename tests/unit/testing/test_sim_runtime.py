"""The simulation's model of the controller's ZooKeeper client (strom.testing.sim.runtime):
a watch event is handled as kazoo handles it, whatever the network does meanwhile."""

from __future__ import annotations

from typing import Any

from strom.metadata.zk import data as zd
from strom.testing.sim import runner
from strom.testing.sim.network import ZK
from strom.testing.sim.node import SimNode
from strom.testing.sim.world import SimConfig
from strom.testing.sim.zk import NONE_SESSION


def _settled() -> runner.Simulation:
    """Three brokers registered, a controller elected, the topic created; no faults."""
    sim = runner.Simulation(1, SimConfig(brokers=3, faults=0), faults=[])
    sim._setup()
    _run_until(sim, 500)
    return sim


def _run_until(sim: runner.Simulation, time_ms: int) -> None:
    sched = sim.world.sched
    while (t := sched.next_time()) is not None and t <= time_ms:
        sched.step()
        sim._deliver_watches()


def _controller(sim: runner.Simulation) -> SimNode:
    (node,) = [n for n in sim.world.nodes.values() if n.runtime.active]
    return node


def _cut_from_zookeeper(sim: runner.Simulation, node: SimNode, cut: bool) -> None:
    sim.world.net.set_cut(node.id, ZK, cut)
    sim.world.net.set_cut(ZK, node.id, cut)


def _watch_fires_then_link_breaks(sim: runner.Simulation, node: SimNode) -> None:
    """The event reaches the broker; the link to ZooKeeper breaks before it is handled."""
    sim._deliver_watches()
    _cut_from_zookeeper(sim, node, True)


def test_a_watch_event_that_finds_zookeeper_unreachable_waits_for_it(monkeypatch: Any) -> None:
    """kazoo's ChildrenWatch reads the children again (re-arming the watch) before it calls
    back, retrying until ZooKeeper answers: an event that arrived just before the link to
    ZooKeeper broke is handled once it is back. Dropped, the /brokers/ids watch stayed
    disarmed and a broker registering later was never given its partitions (seed 109732)."""
    sim = _settled()
    node = _controller(sim)
    controller = node.runtime.controller
    assert controller is not None
    changes: list[int] = []
    monkeypatch.setattr(controller, "on_broker_change", lambda: changes.append(sim.world.now_ms))
    zk = sim.world.zk
    other = zk.open_session(3_000, sim.world.now_ms)
    zk.create(other, f"{zd.BROKER_IDS}/9", ephemeral=True)
    _watch_fires_then_link_breaks(sim, node)
    _run_until(sim, 800)
    assert changes == []  # kazoo's read is still waiting for ZooKeeper
    _cut_from_zookeeper(sim, node, False)
    _run_until(sim, 1_000)
    assert len(changes) == 1 and changes[0] > 800
    assert node.runtime.controller is controller
    zk.close_session(other)  # the watch was armed again: the next change is seen too
    _run_until(sim, 1_100)
    assert len(changes) == 2


def test_the_controller_watch_is_armed_again_once_zookeeper_answers() -> None:
    sim = _settled()
    node = next(n for n in sim.world.nodes.values() if not n.runtime.active)
    zk = sim.world.zk
    current = zk.get(NONE_SESSION, zd.CONTROLLER)[0]
    zk.set(NONE_SESSION, zd.CONTROLLER, current)
    _watch_fires_then_link_breaks(sim, node)
    _run_until(sim, 800)
    _cut_from_zookeeper(sim, node, False)
    _run_until(sim, 1_000)
    zk.set(NONE_SESSION, zd.CONTROLLER, current)
    assert zk.take_events(node.session)  # the /controller watch fired: it was armed
