"""R7: one follower slowed (its traffic limited to 1 Mbit/s with tc on loopback; the
50 ms netem delay is added where the kernel has sch_netem, which this machine's does
not) while a bulk producer (acks=1, 10 kB records, about 3 Mbit/s) writes another
topic; one broker leads every partition, so the follower's fetches carry both. The
follower falls behind and leaves the ISR within replica.lag.time.max.ms plus a
margin; the acks=all producers' p99 latency, high while the slow follower held the
high watermark back, recovers once it is out; it rejoins the ISR when the slowdown
ends. The checker finds nothing lost.

Short form: slowed for 15 s; long form (STROM_FAULT_LONG=1): 120 s.
"""

from __future__ import annotations

import contextlib
import statistics
import threading
import time
from collections.abc import Callable

import pytest
from confluent_kafka import Producer

from strom.testing import Cluster
from strom.testing.netfaults import Network
from tests.fault.scenario import (
    Workload,
    assert_clean,
    create_topic,
    in_every_isr,
    partitions_via,
    pick,
)

pytestmark = [pytest.mark.integration, pytest.mark.fault, pytest.mark.usefixtures("require_strom")]

ClusterFactory = Callable[..., Cluster]
LAG_MS = 3000
RATE_KBIT = 1000


class Bulk:
    """acks=1 producer of 10 kB records, ``per_s`` of them a second, until stop()."""

    def __init__(self, bootstrap: str, topic: str, per_s: int = 40) -> None:
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(bootstrap, topic, per_s))

    def _run(self, bootstrap: str, topic: str, per_s: int) -> None:
        p = Producer({"bootstrap.servers": bootstrap, "acks": "1", "linger.ms": 5})
        value = b"b" * 10_000
        while not self.stop_event.wait(1 / per_s):
            with contextlib.suppress(BufferError):
                p.produce(topic, value, partition=0)
            p.poll(0)
        p.flush(30)

    def __enter__(self) -> Bulk:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_event.set()
        self.thread.join(60)


def p99(latencies: list[float]) -> float:
    return statistics.quantiles(latencies, n=100)[98] if len(latencies) > 2 else 0.0


def test_r7_slow_follower_leaves_the_isr_and_rejoins(
    cluster_factory: ClusterFactory, network: Network, topic_name: str
) -> None:
    cluster = cluster_factory(3, {"replica.lag.time.max.ms": str(LAG_MS)}, session_timeout_ms=10000)
    follower = next(b for b in (2, 1, 0) if b != cluster.controller_id())
    a, b = (x for x in cluster.brokers if x != follower)
    # one leader for everything: the slow follower's only fetches carry the bulk data
    create_topic(cluster, topic_name, assignments={p: [a, b, follower] for p in range(3)})
    bulk_topic = f"{topic_name}-bulk"
    create_topic(cluster, bulk_topic, assignments={0: [a, b, follower]}, min_isr=1)
    slow_s = pick(15.0, 120.0)
    slow = cluster.broker(follower)

    def out_of_every_isr() -> bool:
        return all(follower not in p.isr_nodes for p in partitions_via(cluster, a, topic_name))

    with Workload(cluster, topic_name, 3) as load, Bulk(cluster.bootstrap, bulk_topic):
        time.sleep(3.0)
        slowed_at = load.history.now()
        network.shape(slow.host, [slow.pid], rate_kbit=RATE_KBIT, delay_ms=50)
        try:
            shrunk = cluster.wait_for("the slow follower out of every ISR", out_of_every_isr, 30)
            time.sleep(max(0.0, slow_s - (load.history.now() - slowed_at)))
        finally:
            network.unshape()
        healed_at = load.history.now()
        load.history.span(
            f"broker {follower} (a follower) limited to {RATE_KBIT} kbit/s", slowed_at
        )
        rejoined = cluster.wait_for(
            "the follower back in every ISR",
            lambda: in_every_isr(cluster, topic_name, follower),
            timeout_s=60,
        )
        time.sleep(1.0)
    report = load.report(f"R7 follower slowed {slow_s:.0f} s")
    assert_clean(report, min_acked=1000)

    def latencies(start: float, end: float) -> list[float]:
        return [
            w.acked_s - w.sent_s
            for w in load.history.writes
            if w.acked_s is not None and start <= w.sent_s < end
        ]

    before = p99(latencies(1.0, slowed_at))
    during = p99(latencies(slowed_at, slowed_at + shrunk))
    after = p99(latencies(slowed_at + shrunk + 1.0, healed_at))
    print(
        f"netem delay: {network.delay_supported}; ISR shrink after {shrunk:.1f} s, rejoined "
        f"{rejoined:.1f} s after; p99 before {before:.3f} s, slow in the ISR {during:.3f} s, "
        f"after it left {after:.3f} s"
    )
    assert shrunk <= 1.5 * LAG_MS / 1000 + 5.0, shrunk
    assert after <= max(3 * before, 0.3), (before, during, after)
