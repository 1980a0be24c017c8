"""Shared pieces of the fault scenarios: topics, a workload recorded in a History, the
checker's report, the figures of each run, and the short or long form.

STROM_FAULT_LONG=1 selects the long form of every scenario (longer faults, more of
them); without it each scenario is a short form that takes well under a minute.
STROM_FAULT_RESULTS=PATH appends each scenario's figures to PATH as JSON lines;
STROM_FAULT_HISTORY_DIR=DIR writes each scenario's whole history there as JSON.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, TypeVar

from confluent_kafka.admin import AdminClient, NewTopic

from strom.testing import Cluster, workload
from strom.testing.checker import Report

LONG = os.environ.get("STROM_FAULT_LONG") == "1"
SESSION_MS = 4000
T = TypeVar("T")


def pick(short: T, long: T) -> T:
    """``long`` when STROM_FAULT_LONG=1, else ``short``."""
    return long if LONG else short


def create_topic(
    cluster: Cluster,
    topic: str,
    partitions: int = 3,
    *,
    min_isr: int = 2,
    assignments: dict[int, list[int]] | None = None,
) -> None:
    """A topic with 3 replicas (or the given ``assignments``), fully in sync."""
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    config = {"min.insync.replicas": str(min_isr)}
    if assignments is not None:
        replicas = [assignments[p] for p in sorted(assignments)]
        new = NewTopic(topic, len(replicas), replica_assignment=replicas, config=config)
        partitions = len(assignments)
    else:
        new = NewTopic(topic, partitions, 3, config=config)
    admin.create_topics([new], operation_timeout=30)[topic].result(60)
    cluster.wait_for(
        f"{topic} fully replicated",
        lambda: (
            all(
                len(p.isr_nodes) == len(p.replica_nodes) and p.leader_id >= 0
                for p in cluster.metadata([topic]).topics[0].partitions
            )
            and len(cluster.metadata([topic]).topics[0].partitions) == partitions
        ),
        timeout_s=60,
    )


def isr(cluster: Cluster, topic: str, partition: int = 0) -> list[int]:
    return list(cluster.partition(topic, partition).isr_nodes)


def in_every_isr(cluster: Cluster, topic: str, broker_id: int) -> bool:
    return all(
        broker_id in p.isr_nodes and p.leader_id >= 0
        for p in cluster.metadata([topic]).topics[0].partitions
    )


class Workload(workload.Workload):
    """The shipped workload on a test cluster; :meth:`report` also records the figures."""

    def __init__(self, cluster: Cluster, topic: str, partitions: int, **kwargs: Any) -> None:
        super().__init__(cluster.bootstrap, topic, partitions, **kwargs)
        self.cluster = cluster

    def event(self, what: str) -> None:
        self.history.event(what)

    def report(self, name: str, gap_s: float = 1.0, bootstrap: str | None = None) -> Report:
        """Stop, read everything back, analyse, record the figures; the report."""
        report = self.check(gap_s, bootstrap or self.cluster.bootstrap)
        record_figures(name, report)
        dump = os.environ.get("STROM_FAULT_HISTORY_DIR")
        if dump:
            safe = "".join(c if c.isalnum() else "-" for c in name)
            self.history.dump(Path(dump) / f"{safe}.json")
        print(f"\n{name}\n{report.table()}")
        return report


def record_figures(name: str, report: Report) -> None:
    lo, med, hi = report.unavailability()
    record_row(
        name,
        **report.counts(),
        unavailable_min_s=round(lo, 2),
        unavailable_median_s=round(med, 2),
        unavailable_max_s=round(hi, 2),
    )


def record_row(name: str, **figures: object) -> None:
    """Append a scenario's figures to $STROM_FAULT_RESULTS (when set) as a JSON line."""
    path = os.environ.get("STROM_FAULT_RESULTS")
    if not path:
        return
    row = {
        "scenario": name,
        "form": "long" if LONG else "short",
        "at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        **figures,
    }
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")


def assert_clean(report: Report, min_acked: int = 100) -> None:
    """0 lost, 0 duplicated, nothing reordered or inconsistent, enough acknowledged."""
    assert report.ok, report.table()
    assert report.acknowledged >= min_acked, report.table()


def partitions_via(cluster: Cluster, broker_id: int, topic: str) -> list[Any]:
    """The topic's partitions as broker ``broker_id`` answers Metadata."""
    return workload.partitions_of(cluster.broker(broker_id).bootstrap, topic)


def produce_direct(
    cluster: Cluster, broker_id: int, topic: str, value: bytes, timeout_ms: int = 3000
) -> tuple[int, int]:
    """Produce one record with acks=all straight to broker ``broker_id`` (partition 0,
    no metadata lookup): (error code, base offset)."""
    from strom.protocol.generated.produce import ProduceRequest
    from strom.protocol.records import build_batch
    from strom.testing.wire import RawClient

    batch = build_batch([(None, value, [], int(time.time() * 1000))])
    req = ProduceRequest(
        transactional_id=None,
        acks=-1,
        timeout_ms=timeout_ms,
        topic_data=[
            ProduceRequest.TopicProduceData(topic, [ProduceRequest.PartitionProduceData(0, batch)])
        ],
    )
    with RawClient(cluster.broker(broker_id).bootstrap, timeout_s=timeout_ms / 1000 + 10) as c:
        part = c.request(req, 9).responses[0].partition_responses[0]
    return int(part.error_code), int(part.base_offset)
