"""Run the simulation: ``python -m strom.testing.sim.runner --seeds 100`` (or
``--seed N`` to replay one, ``--faults JSON`` to replay a shrunk schedule).

A run: brokers start and register, a topic is created, producers write acks=all
records while the seeded faults strike (the fault phase); then every fault is
healed, the producers stop and the cluster settles (the heal phase). The
invariants (strom.testing.sim.invariants) are checked after every step and, at the
end, that the cluster converged. A failure reports the seed, the fault list (shrunk
to the faults it needs when asked) and the last lines of the run's story; the same
seed and faults replay the same run.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial

from strom.common.assignment import assign_replicas
from strom.common.types import TopicPartition
from strom.testing.sim import faults as fx
from strom.testing.sim import store as zs
from strom.testing.sim.client import Producer
from strom.testing.sim.invariants import Checker, Violation
from strom.testing.sim.network import Network
from strom.testing.sim.node import SimNode
from strom.testing.sim.schedule import Fault, Scheduler, fault_from_list, generate_faults
from strom.testing.sim.world import SimConfig, World
from strom.testing.sim.zk import ZkModel

ZK_TICK_MS = 100
START_MS = 1_000


@dataclass
class Result:
    seed: int
    faults: list[Fault]
    error: str | None = None
    steps: int = 0
    sim_ms: int = 0
    acks: int = 0
    elections: int = 0
    story: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None

    def replay_command(self) -> str:
        raw = json.dumps([f.as_list() for f in self.faults], separators=(",", ":"))
        return f"python -m strom.testing.sim.runner --seed {self.seed} --faults '{raw}'"

    def report(self, story_lines: int = 60) -> str:
        lines = [f"seed {self.seed}: {self.error}", "faults:"]
        lines += [f"  {f}" for f in self.faults] or ["  (none)"]
        lines.append(f"replay: {self.replay_command()}")
        lines.append("story (last lines):")
        lines += [f"  {s}" for s in self.story[-story_lines:]]
        return "\n".join(lines)


class Simulation:
    def __init__(
        self, seed: int, config: SimConfig | None = None, faults: Sequence[Fault] | None = None
    ) -> None:
        self.seed = seed
        cfg = self.config = config or SimConfig.for_seed(seed)
        ids = list(range(1, cfg.brokers + 1))
        if faults is None:
            faults = generate_faults(
                random.Random(seed * 7919 + 1), ids, START_MS + 500, cfg.fault_phase_ms, cfg.faults
            )
        self.faults = list(faults)
        sched = Scheduler()
        rng = random.Random(seed)
        checker = Checker(cfg.unclean_leader_election)
        self.world = World(cfg, sched, Network(sched, rng), ZkModel(), rng, checker)
        checker.world = self.world
        for i in ids:
            self.world.nodes[i] = SimNode(self.world, i)
        self.producers = [Producer(self.world, tp) for tp in self.partitions()]

    def partitions(self) -> list[TopicPartition]:
        return [TopicPartition(self.config.topic, p) for p in range(self.config.partitions)]

    # -- setup -------------------------------------------------------------------------
    def _create_topic(self) -> None:
        cfg, world = self.config, self.world
        brokers: dict[int, str | None] = {b: None for b in world.nodes}
        n = len(brokers)
        replicas = assign_replicas(
            cfg.partitions,
            cfg.replication_factor,
            brokers,
            start_index=world.rng.randrange(n),
            shift=world.rng.randrange(n),
        )
        zs.create_topic(
            world.zk,
            cfg.topic,
            dict(enumerate(replicas)),
            world.topic_id,
            {"min.insync.replicas": str(cfg.min_insync_replicas)},
        )
        world.note(f"topic {cfg.topic} created: {replicas}")

    def _zk_tick(self) -> None:
        for sid in self.world.zk.expire_sessions(self.world.now_ms):
            self.world.note(f"ZooKeeper expires session 0x{sid:x}")
        self.world.sched.after(ZK_TICK_MS, "zk-tick", self._zk_tick)

    def _deliver_watches(self) -> None:
        world = self.world
        pending = world.zk.sessions_with_events()
        if not pending:
            return
        for node in world.nodes.values():
            if not node.up or node.session not in pending or not world.net.up(0, node.id):
                continue
            for event in world.zk.take_events(node.session):
                run = partial(node.on_watch, event.path)
                world.sched.after(1, "watch", partial(node.accept, node.incarnation, run))

    def _heal(self) -> None:
        for p in self.producers:
            p.stop()
        fx.heal_all(self.world)

    def _setup(self) -> None:
        world, sched = self.world, self.world.sched
        zs.setup_paths(world.zk)
        for i, node in enumerate(world.nodes.values()):
            sched.at(i * 3, f"start {node.id}", node.start)
        sched.at(200, "create topic", self._create_topic)
        sched.at(0, "zk-tick", self._zk_tick)
        for p in self.producers:
            sched.at(START_MS, "producer", p.start)
        for f in self.faults:
            sched.at(f.at_ms, f"fault {f.kind}", partial(fx.apply, world, f))
        sched.at(self.config.fault_phase_ms, "heal", self._heal)

    # -- running -----------------------------------------------------------------------
    def run(self) -> Result:
        result = Result(self.seed, self.faults)
        world, sched, checker = self.world, self.world.sched, self.world.checker
        end = self.config.fault_phase_ms + self.config.heal_phase_ms
        try:
            self._setup()
            while True:
                t = sched.next_time()
                if t is None or t > end:
                    break
                sched.step()
                self._deliver_watches()
                checker.check_step()
            self.check_final()
        except Violation as v:
            result.error = f"violation: {v}"
        except Exception as exc:  # a crash of the code under test is a failure too
            tb = traceback.format_exception(exc)
            result.error = f"exception: {exc!r}\n" + "".join(tb[-6:])
        result.steps, result.sim_ms = sched.steps, sched.now_ms
        result.acks, result.elections = checker.acks, checker.elections
        result.story = list(world.log)
        return result

    def check_final(self) -> None:
        """Everything healed and quiet: the cluster converged."""
        from strom.testing.sim.final import check_converged

        check_converged(self.world, self.partitions())


def run_seed(
    seed: int, config: SimConfig | None = None, faults: Sequence[Fault] | None = None
) -> Result:
    return Simulation(seed, config, faults).run()


def shrink(result: Result, config: SimConfig | None = None, budget: int = 60) -> Result:
    """Drop faults one at a time while the run still fails: a shorter reproduction."""
    best = result
    changed = True
    while changed and budget > 0:
        changed = False
        for i in range(len(best.faults)):
            if budget <= 0:
                break
            budget -= 1
            trial = best.faults[:i] + best.faults[i + 1 :]
            r = run_seed(best.seed, config, trial)
            if not r.ok:
                best, changed = r, True
                break
    return best


def run_many(
    seeds: Sequence[int], config: SimConfig | None = None, stop_at_first: bool = False
) -> list[Result]:
    failures = []
    for seed in seeds:
        r = run_seed(seed, config)
        if not r.ok:
            failures.append(r)
            if stop_at_first:
                break
    return failures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m strom.testing.sim.runner")
    parser.add_argument("--seeds", type=int, default=100, help="how many seeds to run")
    parser.add_argument("--start", type=int, default=0, help="the first seed")
    parser.add_argument("--seed", type=int, help="run this seed only")
    parser.add_argument("--faults", help="the fault list to replay (JSON, from a report)")
    parser.add_argument("--no-shrink", action="store_true", help="report failures as they are")
    parser.add_argument("--story", action="store_true", help="print the whole story of --seed")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)  # the controller's warnings are part of runs
    if args.seed is not None:
        faults = [fault_from_list(f) for f in json.loads(args.faults)] if args.faults else None
        r = run_seed(args.seed, None, faults)
        if args.story:
            print("\n".join(r.story))
        print(r.report() if not r.ok else f"seed {r.seed}: ok ({r.steps} steps, {r.acks} acks)")
        return 0 if r.ok else 1
    started = time.perf_counter()
    failed = 0
    for seed in range(args.start, args.start + args.seeds):
        r = run_seed(seed)
        if not r.ok:
            failed += 1
            print((r if args.no_shrink else shrink(r)).report(), flush=True)
    elapsed = time.perf_counter() - started
    print(f"{args.seeds} seeds, {failed} failed, {elapsed:.1f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
