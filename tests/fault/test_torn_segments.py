"""R6: a torn and garbled segment tail after kill -9. The leader of two partitions is
killed under acks=all idempotent load; while it is down, the active segment of
partition 0 gets a batch in its middle garbled (one byte flipped: its CRC fails)
and garbage appended, and that of partition 1 is cut in the middle of its last
batch (a torn write). Restarted, the broker's recovery keeps every batch before the
first bad one and cuts the rest; as a follower it truncates to the new leaders'
epochs and fetches what it lacks. Then it is made the only replica left and every
record is read back from it: no garbage is ever served, nothing acknowledged is
lost, nothing is duplicated.

Short and long form are the same (the fault is a single event); STROM_FAULT_LONG=1
only runs the load longer before the kill.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from strom.testing import Cluster
from tests.fault.scenario import (
    SESSION_MS,
    Workload,
    assert_clean,
    create_topic,
    in_every_isr,
    partitions_via,
    pick,
)

pytestmark = [pytest.mark.integration, pytest.mark.fault, pytest.mark.usefixtures("require_strom")]

ClusterFactory = Callable[..., Cluster]


def batches(segment: bytes) -> list[tuple[int, int]]:
    """(position, size) of each complete batch of a segment."""
    out, pos = [], 0
    while pos + 12 <= len(segment):
        size = 12 + struct.unpack_from(">i", segment, pos + 8)[0]
        if pos + size > len(segment):
            break
        out.append((pos, size))
        pos += size
    return out


def active_segment(cluster: Cluster, broker_id: int, topic: str, partition: int) -> Path:
    return sorted((cluster.broker(broker_id).log_dir / f"{topic}-{partition}").glob("*.log"))[-1]


def test_r6_torn_and_garbled_tails_are_cut_and_never_served(
    cluster_factory: ClusterFactory, topic_name: str
) -> None:
    cluster = cluster_factory(3, session_timeout_ms=SESSION_MS)
    victim = cluster.controller_id()  # its restart also moves the controller
    x, y = (b for b in cluster.brokers if b != victim)
    create_topic(cluster, topic_name, assignments={0: [victim, x, y], 1: [victim, y, x]})
    with Workload(cluster, topic_name, 2) as load:
        time.sleep(pick(3.0, 30.0))
        load.event(f"kill -9 broker {victim}")
        cluster.broker(victim).kill()
        garbled = active_segment(cluster, victim, topic_name, 0)
        data = bytearray(garbled.read_bytes())
        spans = batches(bytes(data))
        assert len(spans) >= 4, f"too few batches in {garbled}: {len(spans)}"
        cut_at, size = spans[len(spans) // 2]
        data[cut_at + size // 2] ^= 0xFF  # a record byte: the batch's CRC no longer matches
        garbled.write_bytes(bytes(data) + b"\x00\x00\x00\x00\x00\x00\x00\x07garbage" * 50)
        torn = active_segment(cluster, victim, topic_name, 1)
        tail = batches(torn.read_bytes())[-1]
        with open(torn, "r+b") as f:
            f.truncate(tail[0] + tail[1] // 2)
        cluster.wait_for(
            "new leaders",
            lambda: all(p.leader_id in (x, y) for p in partitions_via(cluster, x, topic_name)),
            timeout_s=SESSION_MS / 1000 + 15,
        )
        cluster.broker(victim).start()
        cluster.wait_for(
            "the recovered broker back in every ISR",
            lambda: in_every_isr(cluster, topic_name, victim),
            timeout_s=60,
        )
        time.sleep(1.0)
    log = cluster.broker(victim).log_path.read_text()
    cuts = [line for line in log.splitlines() if "torn or corrupt tail" in line]
    assert any(f"{topic_name}-0 cut" in c and f"at byte {cut_at} " in c for c in cuts), cuts
    assert any(f"{topic_name}-1 cut {tail[1] // 2} bytes" in c for c in cuts), cuts
    recovered = active_segment(cluster, victim, topic_name, 0).read_bytes()
    assert recovered[:cut_at] == bytes(data[:cut_at])  # kept up to the first bad batch
    assert b"garbage" not in recovered
    # the batch now at cut_at is the leader's copy, whole, not the garbled one
    assert recovered[cut_at : cut_at + size] != bytes(data[cut_at : cut_at + size])
    for other in (x, y):  # the recovered broker is the only replica left: read it
        cluster.broker(other).stop()
    cluster.wait_for(
        "the recovered broker leading",
        lambda: all(p.leader_id == victim for p in partitions_via(cluster, victim, topic_name)),
        timeout_s=30,
    )
    load.bootstrap = cluster.broker(victim).bootstrap
    report = load.report("R6 torn and garbled segment tails", bootstrap=load.bootstrap)
    assert_clean(report, min_acked=500)
    assert report.garbage == []
