"""What the simulated brokers share: the configuration, simulated time, the network,
the ZooKeeper model, the random stream of the run, the invariant checker and the
brokers themselves (to address messages)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from strom.testing.sim.network import Network
from strom.testing.sim.schedule import Scheduler
from strom.testing.sim.zk import ZkModel

if TYPE_CHECKING:
    from strom.testing.sim.invariants import Checker
    from strom.testing.sim.node import SimNode


@dataclass(frozen=True, slots=True)
class SimConfig:
    brokers: int = 3
    partitions: int = 2
    replication_factor: int = 3
    min_insync_replicas: int = 2
    unclean_leader_election: bool = False
    session_timeout_ms: int = 3_000
    heartbeat_ms: int = 1_000
    replica_lag_time_max_ms: int = 2_000
    fetch_wait_max_ms: int = 500
    fetch_backoff_ms: int = 100
    fetch_max_records: int = 20
    request_timeout_ms: int = 2_000
    produce_timeout_ms: int = 3_000
    produce_interval_ms: int = 150
    hw_checkpoint_ms: int = 1_000
    auto_rebalance_ms: int = 5_000
    restart_retry_ms: int = 500
    fault_phase_ms: int = 20_000
    heal_phase_ms: int = 15_000
    faults: int = 6
    topic: str = "sim"

    @classmethod
    def for_seed(cls, seed: int) -> SimConfig:
        """The mix CI runs: mostly 3 brokers with 3 replicas and min.insync.replicas 2;
        some seeds with 4 brokers (reassignments move replicas), 2 replicas,
        min.insync.replicas 1, or unclean leader elections allowed."""
        rng = random.Random(seed ^ 0x5EED)
        brokers = rng.choice((3, 3, 3, 4))
        rf = rng.choice((3, 3, 3, 2))
        return cls(
            brokers=brokers,
            replication_factor=rf,
            min_insync_replicas=rng.choice((2, 2, 2, 1)) if rf == 3 else 1,
            unclean_leader_election=rng.random() < 0.1,
            faults=rng.choice((4, 6, 6, 8)),
        )


@dataclass
class World:
    config: SimConfig
    sched: Scheduler
    net: Network
    zk: ZkModel
    rng: random.Random
    checker: Checker
    nodes: dict[int, SimNode] = field(default_factory=dict)
    topic_id: bytes = bytes(range(1, 17))
    log: list[str] = field(default_factory=list)

    @property
    def now_ms(self) -> int:
        return self.sched.now_ms

    def note(self, text: str) -> None:
        """A line of the run's story (kept for the failure report)."""
        self.log.append(f"{self.sched.now_ms:>6} {text}")
        if len(self.log) > 400:
            del self.log[:100]
