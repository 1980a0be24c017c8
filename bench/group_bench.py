#!/usr/bin/env python3
"""Consumer-group formation and rebalance time: classic and consumer (KIP-848)
protocols, strom vs the reference broker.

For N = 1, 10, 50 confluent-kafka consumers subscribing to one topic (with as
many partitions as consumers), measures the time from the first subscribe()
until every partition is assigned to exactly one member, then the time for the
group to cover all partitions again after one member closes (leaves), then after
a new member joins. Each protocol of --protocols runs (classic: JoinGroup/SyncGroup
with the initial rebalance delay; consumer: ConsumerGroupHeartbeat, paced by
group.consumer.heartbeat.interval.ms).

Both brokers run in the same invocation. strom keeps Kafka's defaults
(group.initial.rebalance.delay.ms 3000 ms, group.consumer.heartbeat.interval.ms
5000 ms) unless --initial-delay-ms / --consumer-heartbeat-ms are given. A
protocol the reference broker does not support shows as "-".

Usage: python bench/group_bench.py [--sizes 1,10,50] [--protocols classic,consumer]
       [--initial-delay-ms 3000] [--consumer-heartbeat-ms 5000] [--no-reference]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT.parent / "shared" / "tools" / "reference-broker"
sys.path.insert(0, str(ROOT / "src"))

from strom.testing.broker import BrokerProcess, free_port  # noqa: E402


def _create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(30)


def _covered(consumers: list[Any], partitions: int) -> bool:
    """Every partition owned exactly once and every member owns at least one."""
    assignments = [c.assignment() for c in consumers]
    owned = [p.partition for a in assignments for p in a]
    return sorted(owned) == list(range(partitions)) and all(assignments)


def _wait_covered(
    consumers: list[Any], partitions: int, timeout_s: float, start: float
) -> float | None:
    while time.monotonic() - start < timeout_s:
        for c in consumers:
            c.poll(0)
        if _covered(consumers, partitions):
            return time.monotonic() - start
        time.sleep(0.005)
    return None


def _consumer(bootstrap: str, group: str, protocol: str) -> Any:
    from confluent_kafka import Consumer

    conf: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "enable.auto.commit": False,
        "group.protocol": protocol,
    }
    if protocol == "classic":  # the consumer protocol takes these from the broker
        conf.update({"session.timeout.ms": 10_000, "heartbeat.interval.ms": 500})
    return Consumer(conf)


def measure(bootstrap: str, n: int, protocol: str, timeout_s: float) -> dict[str, Any]:
    topic = f"gbench-{uuid.uuid4().hex[:8]}"
    _create_topic(bootstrap, topic, n)
    group = f"gbench-{uuid.uuid4().hex[:8]}"
    consumers = [_consumer(bootstrap, group, protocol) for _ in range(n)]
    start = time.monotonic()
    for c in consumers:
        c.subscribe([topic])
    formed = _wait_covered(consumers, n, timeout_s, start)
    leave = join = None
    if formed is not None and n > 1:
        leaving = consumers.pop()
        start = time.monotonic()
        leaving.close()
        leave = _wait_covered(consumers, n, timeout_s, start)
        newcomer = _consumer(bootstrap, group, protocol)
        consumers.append(newcomer)
        start = time.monotonic()
        newcomer.subscribe([topic])
        join = _wait_covered(consumers, n, timeout_s, start) if leave is not None else None
    for c in consumers:
        c.close()
    return {
        "members": n,
        "protocol": protocol,
        "form_s": formed,
        "rebalance_after_leave_s": leave,
        "rebalance_after_join_s": join,
    }


def run(
    label: str, bootstrap: str, sizes: list[int], protocols: list[str], timeout_s: float
) -> list[dict[str, Any]]:
    out = []
    for protocol in protocols:
        for n in sizes:
            try:
                res = measure(bootstrap, n, protocol, timeout_s)
            except Exception as e:  # e.g. a broker without the consumer protocol
                res = {"members": n, "protocol": protocol, "error": repr(e)}
            res["label"] = label
            print(json.dumps(res), flush=True)
            out.append(res)
    return out


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", default="1,10,50")
    ap.add_argument("--protocols", default="classic,consumer")
    ap.add_argument("--initial-delay-ms", default="3000")
    ap.add_argument("--consumer-heartbeat-ms", default="5000")
    ap.add_argument("--timeout", type=float, default=90.0)
    ap.add_argument("--no-reference", action="store_true", help="strom only")
    args = ap.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    protocols = [p.strip() for p in args.protocols.split(",") if p.strip()]
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        heartbeat = args.consumer_heartbeat_ms
        overrides = {
            "group.initial.rebalance.delay.ms": args.initial_delay_ms,
            "offsets.topic.num.partitions": "50",
            "group.consumer.heartbeat.interval.ms": heartbeat,
            "group.consumer.min.heartbeat.interval.ms": str(min(5000, int(heartbeat))),
        }
        with BrokerProcess(Path(tmp), overrides) as broker:
            results += run("strom", broker.bootstrap, sizes, protocols, args.timeout)
    if not args.no_reference:
        port = free_port()
        pid = subprocess.run(
            [str(REFERENCE), "start", str(port)], check=True, capture_output=True, text=True
        ).stdout.strip()
        try:
            results += run("reference", f"127.0.0.1:{port}", sizes, protocols, args.timeout)
        finally:
            subprocess.run([str(REFERENCE), "stop", pid], check=False)
    _table(results, sizes, protocols)
    return 0


def _table(results: list[dict[str, Any]], sizes: list[int], protocols: list[str]) -> None:
    labels = sorted({r["label"] for r in results}, key=lambda x: x != "strom")
    by = {(r["label"], r["protocol"], r["members"]): r for r in results}
    columns = [
        ("form_s", "form"),
        ("rebalance_after_leave_s", "leave"),
        ("rebalance_after_join_s", "join"),
    ]
    head = f"{'protocol':>9} {'members':>8}"
    for label in labels:
        head += "".join(f" {label + ' ' + name + ' s':>18}" for _, name in columns)
    print("\n" + head)
    for protocol in protocols:
        for n in sizes:
            line = f"{protocol:>9} {n:>8}"
            for label in labels:
                r = by.get((label, protocol, n), {})
                line += "".join(f" {_fmt(r.get(key)):>18}" for key, _ in columns)
            print(line)


if __name__ == "__main__":
    sys.exit(main())
