#!/usr/bin/env python3
"""Consumer-group formation and rebalance time: strom vs the reference broker.

For N = 1, 10, 50 confluent-kafka consumers subscribing to one topic (with as
many partitions as consumers), measures the time from the first subscribe()
until every partition is assigned to exactly one member, then the time for the
group to cover all partitions again after one member closes (leaves).

Both brokers run in the same invocation. strom keeps Kafka's default
group.initial.rebalance.delay.ms (3000 ms) unless --initial-delay-ms is given;
the target is formation within that delay plus 200 ms.

Usage: python bench/group_bench.py [--sizes 1,10,50] [--initial-delay-ms 3000]
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


def measure(bootstrap: str, n: int, timeout_s: float) -> dict[str, Any]:
    from confluent_kafka import Consumer

    topic = f"gbench-{uuid.uuid4().hex[:8]}"
    _create_topic(bootstrap, topic, n)
    group = f"gbench-{uuid.uuid4().hex[:8]}"
    consumers = [
        Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": group,
                "session.timeout.ms": 10_000,
                "heartbeat.interval.ms": 500,
                "enable.auto.commit": False,
            }
        )
        for _ in range(n)
    ]
    start = time.monotonic()
    for c in consumers:
        c.subscribe([topic])
    formed = _wait_covered(consumers, n, timeout_s, start)
    rebalance = None
    if formed is not None and n > 1:
        leaving = consumers.pop()
        start = time.monotonic()
        leaving.close()
        rebalance = _wait_covered(consumers, n, timeout_s, start)
    for c in consumers:
        c.close()
    return {"members": n, "form_s": formed, "rebalance_after_leave_s": rebalance}


def run(label: str, bootstrap: str, sizes: list[int], timeout_s: float) -> list[dict[str, Any]]:
    out = []
    for n in sizes:
        res = measure(bootstrap, n, timeout_s)
        res["label"] = label
        print(json.dumps(res), flush=True)
        out.append(res)
    return out


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", default="1,10,50")
    ap.add_argument("--initial-delay-ms", default="3000")
    ap.add_argument("--timeout", type=float, default=90.0)
    args = ap.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        overrides = {
            "group.initial.rebalance.delay.ms": args.initial_delay_ms,
            "offsets.topic.num.partitions": "50",
        }
        with BrokerProcess(Path(tmp), overrides) as broker:
            results += run("strom", broker.bootstrap, sizes, args.timeout)
    port = free_port()
    pid = subprocess.run(
        [str(REFERENCE), "start", str(port)], check=True, capture_output=True, text=True
    ).stdout.strip()
    try:
        results += run("reference", f"127.0.0.1:{port}", sizes, args.timeout)
    finally:
        subprocess.run([str(REFERENCE), "stop", pid], check=False)
    print(
        f"\n{'members':>8} {'strom form s':>13} {'ref form s':>11} {'strom leave s':>14} "
        f"{'ref leave s':>12}"
    )
    by = {(r["label"], r["members"]): r for r in results}
    for n in sizes:
        s, r = by[("strom", n)], by[("reference", n)]
        print(
            f"{n:>8} {_fmt(s['form_s']):>13} {_fmt(r['form_s']):>11} "
            f"{_fmt(s['rebalance_after_leave_s']):>14} {_fmt(r['rebalance_after_leave_s']):>12}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
