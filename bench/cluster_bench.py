"""Cluster benchmarks: start, failover and replication cost of a 3-broker strom cluster.

    python bench/cluster_bench.py            # 10 runs of each failover, full throughput
    python bench/cluster_bench.py --quick    # 3 runs, fewer records

Measures, with min/median/max over the runs:
- start: a real ZooKeeper and 3 brokers until every broker knows the whole cluster;
- controller failover: kill -9 of the controller until Metadata names a new one;
- leader failover (kill -9) and leader movement (SIGTERM, controlled shutdown): from
  the signal to the partition's first successful acks=all produce, and the window of
  failed produces seen by a client retrying every 20 ms (unavailability);
- produce and consume throughput, RF=3 acks=all against RF=1 acks=1 on one cluster
  (../shared/tools/kafka-bench.py, librdkafka), and acks=all vs acks=1 latency at
  10 MB/s (the difference is the replication lag a producer sees).
Figures only: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from confluent_kafka import KafkaError, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from strom.testing.cluster import Cluster

ROOT = Path(__file__).resolve().parent.parent
KAFKA_BENCH = ROOT.parent / "shared" / "tools" / "kafka-bench.py"
SESSION_MS = 6000


def stats(values: list[float]) -> str:
    return f"min {min(values):.3f}  median {statistics.median(values):.3f}  max {max(values):.3f} s"


def create(cluster: Cluster, topic: str, partitions: int, rf: int, min_isr: int = 1) -> None:
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    new = NewTopic(topic, partitions, rf, config={"min.insync.replicas": str(min_isr)})
    admin.create_topics([new], operation_timeout=30)[topic].result(60)
    cluster.wait_for(
        "leaders",
        lambda: all(p.leader_id >= 0 for p in cluster.metadata([topic]).topics[0].partitions),
    )


def first_success(
    bootstrap: str, topic: str, started: float, timeout_s: float = 60
) -> tuple[float, float]:
    """Produce one record every 20 ms until one is acknowledged: (seconds from
    ``started`` to that acknowledgement, seconds from the first failure to it)."""
    p = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "message.timeout.ms": 1000,
            "retries": 0,
            "linger.ms": 0,
            "topic.metadata.refresh.interval.ms": 100,
        }
    )
    first_failure: list[float] = []
    ok: list[float] = []

    def done(err: KafkaError | None, _msg: object) -> None:
        if err is None:
            ok.append(time.monotonic())
        elif not first_failure:
            first_failure.append(time.monotonic())

    deadline = time.monotonic() + timeout_s
    while not ok and time.monotonic() < deadline:
        p.produce(topic, b"probe", partition=0, on_delivery=done)
        p.poll(0.02)
    p.flush(5)
    if not ok:
        raise RuntimeError("no produce succeeded")
    unavailable = ok[0] - first_failure[0] if first_failure else 0.0
    return ok[0] - started, unavailable


def measure_start(runs: int, base: Path) -> list[float]:
    """``strom dev-cluster --brokers 3`` from exec to its bootstrap.servers line (printed
    once every broker serves and knows the cluster), then SIGINT."""
    import signal

    out = []
    for i in range(runs):
        argv = [
            sys.executable, "-m", "strom", "dev-cluster", "--brokers", "3",
            "--data", str(base / f"start-{i}"), "--port", "0", "--zookeeper-port", "0",
        ]  # fmt: skip
        t = time.monotonic()
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("bootstrap.servers="):
                out.append(time.monotonic() - t)
                break
        proc.send_signal(signal.SIGINT)
        proc.wait(120)
    return out


def measure_controller_failover(cluster: Cluster, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        old = cluster.controller_id()
        t = time.monotonic()
        cluster.broker(old).kill()
        cluster.wait_for(
            "a new controller", lambda o=old: cluster.controller_id() not in (o, -1), 60
        )
        out.append(time.monotonic() - t)
        cluster.broker(old).start()
        cluster.wait_for_metadata()
    return out


def measure_leader_moves(
    cluster: Cluster, topic: str, runs: int, kill: bool
) -> tuple[list[float], list[float]]:
    to_success, unavailable = [], []
    for _ in range(runs):
        leader = cluster.leader(topic, 0)
        b = cluster.broker(leader)
        t = time.monotonic()
        if kill:
            b.kill()
        else:
            b.stop(timeout_s=60)
        took, gap = first_success(cluster.bootstrap, topic, t)
        to_success.append(took)
        unavailable.append(gap)
        b.start()
        cluster.wait_for_metadata()
        cluster.wait_for(
            "all replicas in sync",
            lambda: len(cluster.partition(topic).isr_nodes) == 3,
            60,
        )
    return to_success, unavailable


def kafka_bench(
    bootstrap: str, topic: str, acks: str, messages: int, size: int, extra: list[str]
) -> dict[str, object]:
    out = Path(tempfile.mkstemp(suffix=".jsonl")[1])
    argv = [
        sys.executable, str(KAFKA_BENCH), "--bootstrap", bootstrap, "--topic", topic,
        "--no-create", "--messages", str(messages), "--size", str(size),
        "--acks", acks, "--json", str(out), "--consume-mode", "assign", *extra,
    ]  # fmt: skip
    subprocess.run(argv, check=True, capture_output=True, timeout=1800)
    line = out.read_text().strip().splitlines()[-1]
    return json.loads(line)  # type: ignore[no-any-return]


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="3 runs and fewer records")
    ap.add_argument("--runs", type=int, default=None)
    args = ap.parse_args()
    runs = args.runs or (3 if args.quick else 10)
    messages = 100_000 if args.quick else 500_000
    base = Path(tempfile.mkdtemp(prefix="strom-cluster-bench-"))
    print(f"runs: {runs}, data in {base}")
    starts = measure_start(runs, base)
    print(f"strom dev-cluster --brokers 3 until every broker serves: {stats(starts)}")
    with Cluster(base / "main", 3, session_timeout_ms=SESSION_MS) as cluster:
        print(f"controller failover (kill -9): {stats(measure_controller_failover(cluster, runs))}")
        create(cluster, "failover", 1, 3, min_isr=2)
        for kill, name in ((True, "kill -9"), (False, "SIGTERM")):
            took, gaps = measure_leader_moves(cluster, "failover", runs, kill)
            print(f"leader {name} -> first acks=all produce: {stats(took)}")
            print(f"leader {name} unavailability seen by a client: {stats(gaps)}")
        for name, rf, min_isr in (("rf3", 3, 2), ("rf1", 1, 1)):
            create(cluster, name, 3, rf, min_isr)
            create(cluster, f"{name}-lat", 3, rf, min_isr)
        rows: dict[str, dict[str, object]] = {}
        for size in (100, 1000):
            n = messages if size == 100 else messages // 5
            rows[f"rf3-{size}"] = kafka_bench(
                cluster.bootstrap, "rf3", "all", n, size, ["--latency-messages", "0"]
            )
            rows[f"rf1-{size}"] = kafka_bench(
                cluster.bootstrap, "rf1", "1", n, size, ["--latency-messages", "0"]
            )
        for size in (100, 1000):
            rf3, rf1 = rows[f"rf3-{size}"], rows[f"rf1-{size}"]
            print(
                f"{size} B produce: RF=3 acks=all {rf3.get('produce_msgs_s')} msg/s, RF=1 acks=1 "
                f"{rf1.get('produce_msgs_s')} msg/s, ratio "
                f"{float(rf3['produce_msgs_s']) / float(rf1['produce_msgs_s']):.2f}"  # type: ignore[arg-type]
            )
            print(
                f"{size} B consume: RF=3 {rf3.get('consume_msgs_s')} msg/s, "
                f"RF=1 {rf1.get('consume_msgs_s')} msg/s"
            )
        latency = [
            "--messages",
            "1000",
            "--latency-messages",
            "20000",
            "--latency-rate",
            "10000",
            "--latency-size",
            "1000",
        ]
        for topic, acks in (("rf3", "all"), ("rf1", "1")):
            r = kafka_bench(cluster.bootstrap, topic, acks, 1000, 1000, latency[2:])
            lat = r.get("latency") or {}
            assert isinstance(lat, dict)
            print(
                f"latency at 10 MB/s, {topic} acks={acks}: "
                f"p50 {lat.get('p50_ms')} ms, p99 {lat.get('p99_ms')} ms"
            )


if __name__ == "__main__":
    main()
