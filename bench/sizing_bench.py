"""Per-core figures of strom for the sizing calculator (``strom size``).

    python bench/sizing_bench.py                 # measure and print
    python bench/sizing_bench.py --write         # ... and rewrite src/strom/cli/sizing_figures.py
    python bench/sizing_bench.py --quick         # 5x fewer records

Measures, with librdkafka (../shared/tools/kafka-bench.py), 1 KiB records, 6 partitions,
the producer batching as Kafka's clients do by default (batch.size 16384, linger.ms 5:
smaller batches cost more CPU per MB than librdkafka's own 1 MB default), broker CPU
seconds read from /proc (user + system):

- produce: MB of records appended per broker CPU second (one broker, acks=1);
- consume: MB fetched by a consumer per broker CPU second (the same broker, read back);
- replication: MB replicated per CPU second of the two brokers of an RF=2 topic beyond
  what the leader's produce costs (the follower's fetch and append, the leader serving
  it), with a real ZooKeeper;
- memory: a broker's resident set idle and per partition (1,000 partitions created).

A broker serves requests on one event loop, so these are also what one broker can take
at most. Each figure is the median of ``--runs`` runs. Figures only, never assertions;
the machine may be shared, so run it on a quiet machine before --write.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from confluent_kafka.admin import AdminClient, NewTopic

from strom.testing.broker import BrokerProcess
from strom.testing.cluster import Cluster

ROOT = Path(__file__).resolve().parent.parent
KAFKA_BENCH = ROOT.parent / "shared" / "tools" / "kafka-bench.py"
FIGURES = ROOT / "src" / "strom" / "cli" / "sizing_figures.py"
SIZE = 1024
BATCH_SIZE = 16384  # Kafka's producer default (batch.size)
PARTITIONS = 6


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def kafka_bench(bootstrap: str, messages: int, *extra: str) -> dict[str, object]:
    out = subprocess.run(
        [
            sys.executable,
            str(KAFKA_BENCH),
            "--bootstrap",
            bootstrap,
            "--messages",
            str(messages),
            "--size",
            str(SIZE),
            "--partitions",
            str(PARTITIONS),
            "--acks",
            "1",
            "--batch-size",
            str(BATCH_SIZE),
            "--linger-ms",
            "5",
            "--latency-messages",
            "0",
            "--consume-mode",
            "assign",
            *extra,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    result: dict[str, object] = json.loads(line[len("RESULT ") :])
    return result


def single_broker(messages: int) -> tuple[float, float]:
    """(produce, consume) MB per broker CPU second."""
    with tempfile.TemporaryDirectory() as tmp, BrokerProcess(Path(tmp)) as broker:
        r = kafka_bench(broker.bootstrap, messages, "--broker-pid", str(broker.pid))
        mb = messages * SIZE / 1e6
        return mb / float(r["broker_cpu_produce_s"]), mb / float(r["broker_cpu_consume_s"])  # type: ignore[arg-type]


def replication(messages: int, produce_per_core: float) -> float:
    """MB replicated per CPU second spent on replication (RF=2)."""
    with tempfile.TemporaryDirectory() as tmp, Cluster(Path(tmp), 2) as cluster:
        topic = "sizing-rf2"
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
        admin.create_topics([NewTopic(topic, PARTITIONS, 2)])[topic].result(30)
        time.sleep(2)
        pids = [b.pid for b in cluster.brokers.values()]
        before = sum(cpu_seconds(p) for p in pids)
        kafka_bench(cluster.bootstrap, messages, "--no-create", "--topic", topic,
                    "--consumer-client", "none")  # fmt: skip
        time.sleep(2)  # followers catch up
        spent = sum(cpu_seconds(p) for p in pids) - before
        mb = messages * SIZE / 1e6
        replication_s = spent - mb / produce_per_core
        return mb / replication_s if replication_s > 0 else float("inf")


def memory() -> tuple[float, float]:
    """(idle RSS MB, RSS KB per partition) of one broker."""
    with tempfile.TemporaryDirectory() as tmp, BrokerProcess(Path(tmp)) as broker:
        time.sleep(1)
        idle = rss_mb(broker.pid)
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        topic = "sizing-partitions"
        admin.create_topics([NewTopic(topic, 1000, 1)])[topic].result(60)
        time.sleep(2)
        loaded = rss_mb(broker.pid)
        return idle, (loaded - idle) * 1024 / 1000


def write_module(figures: dict[str, float], command: str) -> None:
    today = datetime.date.today().isoformat()
    lines = [
        '"""Measured figures of strom for ``strom size``: written by bench/sizing_bench.py.',
        "",
        f"Measured on {today} ({platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}) with",
        f"``{command}``; run it again (on a quiet machine) to refresh",
        "them. Do not edit by hand.",
        '"""',
        "",
        "from __future__ import annotations",
        "",
    ]
    for key, value in figures.items():
        lines.append(f"{key.upper()} = {value:.1f}")
    FIGURES.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--write", action="store_true", help=f"rewrite {FIGURES.relative_to(ROOT)}")
    args = p.parse_args(argv)
    messages = 40_000 if args.quick else 200_000
    produce, consume, replicate = [], [], []
    for _ in range(args.runs):
        pr, co = single_broker(messages)
        produce.append(pr)
        consume.append(co)
        replicate.append(replication(messages, pr))
        print(f"produce {pr:.1f}  consume {co:.1f}  replication {replicate[-1]:.1f} MB/cpu-s")
    idle, per_partition = memory()
    figures = {
        "produce_mb_per_core_s": statistics.median(produce),
        "consume_mb_per_core_s": statistics.median(consume),
        "replication_mb_per_core_s": statistics.median(replicate),
        "broker_idle_rss_mb": idle,
        "rss_kb_per_partition": per_partition,
    }
    for key, value in figures.items():
        print(f"{key:<28} {value:10.1f}")
    if args.write:
        write_module(figures, "python bench/sizing_bench.py " + " ".join(argv or sys.argv[1:]))
        print(f"wrote {FIGURES}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
