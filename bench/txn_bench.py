#!/usr/bin/env python3
"""Exactly-once throughput: strom vs the reference broker, in one run.

With confluent-kafka (librdkafka), 3 partitions, 100-byte records:
- plain produce (enable.idempotence=false, acks=all) and idempotent produce
  (enable.idempotence=true) of N records: records/s;
- transactional produce of N records in transactions of 100 and of 1000
  records (begin, produce, commit): records/s and transactions/s.

The reference broker's known gaps (../shared/tools/reference-broker) may make
some of its figures meaningless (it does not hide aborted records, for one);
throughput is still comparable. Prints a table and strom/reference ratios.

Usage: python bench/txn_bench.py [--records 100000]
"""

from __future__ import annotations

import argparse
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

VALUE = b"x" * 100


def _topic(bootstrap: str) -> str:
    from confluent_kafka.admin import AdminClient, NewTopic

    name = f"txbench-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})  # must outlive the future
    admin.create_topics([NewTopic(name, 3, 1)])[name].result(30)
    return name


def _produce_all(p: Any, topic: str, n: int) -> None:
    for i in range(n):
        while True:
            try:
                p.produce(topic, value=VALUE, partition=i % 3)
                break
            except BufferError:
                p.poll(0.01)


def plain(bootstrap: str, n: int, idempotent: bool) -> float:
    from confluent_kafka import Producer

    topic = _topic(bootstrap)
    p = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": idempotent,
            "linger.ms": 5,
        }
    )
    start = time.perf_counter()
    _produce_all(p, topic, n)
    assert p.flush(60) == 0
    return n / (time.perf_counter() - start)


def transactional(bootstrap: str, n: int, per_txn: int) -> float:
    from confluent_kafka import Producer

    topic = _topic(bootstrap)
    p = Producer(
        {
            "bootstrap.servers": bootstrap,
            "transactional.id": f"txbench-{uuid.uuid4().hex[:8]}",
            "linger.ms": 5,
        }
    )
    p.init_transactions(30)
    start = time.perf_counter()
    for first in range(0, n, per_txn):
        p.begin_transaction()
        _produce_all(p, topic, min(per_txn, n - first))
        p.commit_transaction(60)
    return n / (time.perf_counter() - start)


def run(label: str, bootstrap: str, n: int) -> dict[str, float]:
    out = {
        "plain": plain(bootstrap, n, False),
        "idempotent": plain(bootstrap, n, True),
        "txn 100": transactional(bootstrap, n // 5, 100),
        "txn 1000": transactional(bootstrap, n, 1000),
    }
    for k, v in out.items():
        print(f"{label:10} {k:12} {v:>12,.0f} records/s", flush=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--records", type=int, default=100_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, BrokerProcess(Path(tmp)) as broker:
        strom = run("strom", broker.bootstrap, args.records)
    port = free_port()
    pid = subprocess.run(
        [str(REFERENCE), "start", str(port)], check=True, capture_output=True, text=True
    ).stdout.strip()
    try:
        ref = run("reference", f"127.0.0.1:{port}", args.records)
    finally:
        subprocess.run([str(REFERENCE), "stop", pid], check=False)
    print(f"\n{'workload':12} {'strom rec/s':>12} {'ref rec/s':>12} {'ratio':>7}")
    for k in strom:
        print(f"{k:12} {strom[k]:>12,.0f} {ref[k]:>12,.0f} {strom[k] / ref[k]:>7.2f}")
    print(f"idempotent / plain on strom: {strom['idempotent'] / strom['plain']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
