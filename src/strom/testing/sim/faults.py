"""Injecting the faults of a schedule into a running simulation, and healing them."""

from __future__ import annotations

import random
from collections.abc import Callable

from strom.common.types import TopicPartition
from strom.controller.reassign import PREFERRED
from strom.protocol.errors import ErrorCode
from strom.protocol.generated.controlled_shutdown import ControlledShutdownResponse
from strom.testing.sim.network import CLIENT, ZK
from strom.testing.sim.node import SimNode
from strom.testing.sim.schedule import Fault
from strom.testing.sim.world import World

SHUTDOWN_RETRIES = 3
SHUTDOWN_BACKOFF_MS = 500


def endpoints(world: World) -> list[int]:
    return [*sorted(world.nodes), ZK, CLIENT]


def restart(world: World, node: SimNode) -> None:
    if not node.up:
        node.start()


def _leader_of(world: World, partition: int) -> int:
    from strom.metadata.zk import data as zd

    tp = TopicPartition(world.config.topic, partition % world.config.partitions)
    node = world.zk.nodes.get(zd.partition_state_path(tp))
    return zd.decode_partition_state(node.data, 0).leader if node is not None else -1


def target(world: World, f: Fault) -> Fault:
    """Half of the faults on one broker strike the controller, a third of those on a
    link strike a partition leader's link: where the interesting races are."""
    node, other = f.node, f.other
    if f.kind in ("crash", "pause", "isolate", "zk_cut", "shutdown") and f.arg % 2 == 0:
        c = _controller(world)
        node = c.id if c is not None else node
    elif f.kind in ("cut", "cut_one_way", "slow", "leader_cut") and f.arg % 3 != 1:
        leader = _leader_of(world, f.arg // 3)
        if leader > 0:
            node = leader
            if other == node:
                other = f.node
    if (node, other) == (f.node, f.other):
        return f
    return Fault(f.at_ms, f.kind, node, other, f.duration_ms, f.arg)


def _links(world: World, f: Fault) -> list[tuple[int, int]]:
    """The links a network fault cuts (directed)."""
    a, b = f.node, f.other
    if f.kind == "cut_one_way":
        return [(a, b)]
    if f.kind == "cut":
        return [(a, b), (b, a)]
    if f.kind == "zk_cut":
        return [(a, ZK), (ZK, a)]
    if f.kind == "isolate":
        others = [n for n in endpoints(world) if n != a]
    else:  # leader_cut: off the other brokers, not ZooKeeper nor the clients
        others = [n for n in world.nodes if n != a]
    return [link for n in others for link in ((a, n), (n, a))]


def _start(world: World, f: Fault) -> Callable[[], None] | None:
    """Start fault ``f``; how to end it (None: it ends by itself)."""
    node, net = world.nodes[f.node], world.net
    if f.kind == "crash":
        node.crash()
        return lambda: restart(world, node)
    if f.kind == "pause":
        node.pause()
        return node.resume
    if f.kind in ("isolate", "cut", "cut_one_way", "leader_cut", "zk_cut"):
        links = _links(world, f)
        for link in links:
            net.set_cut(*link, True)

        def reconnect() -> None:
            for link in links:
                net.set_cut(*link, False)

        return reconnect
    if f.kind == "slow":
        net.set_slow(f.node, f.other, 50 + f.arg % 700)
        net.set_slow(f.other, f.node, 50 + f.arg % 700)

        def fast() -> None:
            net.set_slow(f.node, f.other, 0)
            net.set_slow(f.other, f.node, 0)

        return fast
    if f.kind == "duplicate":
        net.duplicate_p = 0.25
        return lambda: setattr(net, "duplicate_p", 0.0)
    _one_shot(world, f)
    return None


def _one_shot(world: World, f: Fault) -> None:
    node = world.nodes[f.node]
    if f.kind == "disk":
        _disk_error(node, f.arg)
    elif f.kind == "shutdown":
        controlled_shutdown(world, node, f.duration_ms, SHUTDOWN_RETRIES)
    elif f.kind == "reassign":
        reassign(world, f.arg)
    elif f.kind == "elect":
        _admin(world, lambda c: c.elect_leaders(None, PREFERRED))


def apply(world: World, f: Fault) -> None:
    """Start fault ``f``; its end is scheduled when it has a duration."""
    f = target(world, f)
    world.note(f"fault: {f}")
    heal = _start(world, f)
    if heal is not None:
        world.sched.after(f.duration_ms, f"heal {f.kind} {f.node}", heal)


def _disk_error(node: SimNode, arg: int) -> None:
    logs = [log for _, log in sorted(node.disk.items())]
    if node.up and logs:
        logs[arg % len(logs)].fail_appends = 1 + arg % 3


def _controller(world: World) -> SimNode | None:
    for n in world.nodes.values():
        if n.up and n.runtime.active:
            return n
    return None


def _admin(world: World, fn: object) -> None:
    """An admin request to the active controller (skipped when there is none)."""
    c = _controller(world)
    if c is not None:
        c.runtime.call(fn, lambda _result: None, None, None)  # type: ignore[arg-type]


def reassign(world: World, arg: int) -> None:
    cfg = world.config
    rng = random.Random(arg)
    tp = TopicPartition(cfg.topic, arg % cfg.partitions)
    target = tuple(rng.sample(sorted(world.nodes), cfg.replication_factor))
    cancel = arg % 5 == 0
    _admin(world, lambda c: c.alter_reassignments({tp: None if cancel else target}))


def controlled_shutdown(world: World, node: SimNode, downtime_ms: int, retries: int) -> None:
    """ControlledShutdown to the controller until nothing movable is led here (or the
    retries are spent), then a clean stop: the session closes, the broker is down
    for ``downtime_ms``."""
    if not node.up or node.paused:
        return
    inc = node.incarnation

    def stop() -> None:
        if node.up and node.incarnation == inc:
            world.note(f"broker {node.id} stops after a controlled shutdown")
            world.zk.close_session(node.session)
            node.crash()
            world.sched.after(downtime_ms, f"restart {node.id}", lambda: restart(world, node))

    settled = {"done": False}

    def answered(resp: ControlledShutdownResponse | None) -> None:
        if settled["done"]:
            return
        settled["done"] = True
        done = (
            resp is not None and resp.error_code == ErrorCode.NONE and not resp.remaining_partitions
        )
        if done or retries <= 0:
            stop()
        else:
            node.later(
                SHUTDOWN_BACKOFF_MS,
                "controlled-shutdown",
                lambda: controlled_shutdown(world, node, downtime_ms, retries - 1),
            )

    controller = world.nodes.get(node.controller_id)
    if controller is None or not controller.up:
        answered(None)
        return
    epoch = node.broker_epoch
    refused = ControlledShutdownResponse(error_code=ErrorCode.NOT_CONTROLLER)

    def at_controller() -> None:
        def to_response(
            result: tuple[ErrorCode, list[TopicPartition]],
        ) -> ControlledShutdownResponse:
            code, remaining = result
            return ControlledShutdownResponse(
                error_code=code,
                remaining_partitions=[
                    ControlledShutdownResponse.RemainingPartition(tp.topic, tp.partition)
                    for tp in remaining
                ],
            )

        controller.runtime.call(
            lambda c: to_response(c.controlled_shutdown(node.id, epoch)),
            lambda resp: controller.post(
                node.id, "controlled-shutdown-answer", lambda: answered(resp), inc
            ),
            refused,
            refused,
        )

    node.later(
        world.config.request_timeout_ms, "controlled-shutdown-timeout", lambda: answered(None)
    )
    node.post(controller.id, "controlled-shutdown", at_controller)


def heal_all(world: World) -> None:
    world.note("healing every fault")
    world.net.heal()
    for node in world.nodes.values():
        for log in node.disk.values():
            log.fail_appends = 0
        if node.paused:
            node.resume()
        if not node.up:
            node.start()
