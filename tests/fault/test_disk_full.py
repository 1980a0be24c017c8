"""R5: a log directory fills up on one broker of a cluster.

The broker's only log directory fails with ENOSPC: it stops at once (Kafka halts a
broker whose every log directory failed), the controller moves its leaderships,
producers get retriable errors and go on, nothing acknowledged is lost, and the
broker comes back when space returns. Needs root (a small tmpfs as the log dir).
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from strom.testing import Cluster, assert_acknowledged_read_back
from strom.testing.kafka import read_all
from strom.testing.load import ProducerLoad

pytestmark = [pytest.mark.integration, pytest.mark.fault, pytest.mark.usefixtures("require_strom")]

ClusterFactory = Callable[..., Cluster]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs as a full disk needs root (CI runs as root)")
    mount = tmp_path / "small-disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_log_dir_stops_its_broker_and_loses_nothing(
    cluster_factory: ClusterFactory, small_disk: Path, topic_name: str
) -> None:
    filler = small_disk / "filler"
    log_dir = small_disk / "log"
    cluster = cluster_factory(
        3,
        {"log.segment.bytes": "1048576"},
        session_timeout_ms=4000,
        per_broker=lambda b: {"log.dirs": str(log_dir)} if b == 2 else {},
    )
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    new = NewTopic(topic_name, 3, 3, config={"min.insync.replicas": "2"})
    admin.create_topics([new], operation_timeout=30)[topic_name].result(60)
    # leave about 3 MB free on broker 2's disk
    free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
    with open(filler, "wb") as f:
        f.write(b"\0" * max(free - 3 * 1024 * 1024, 0))
    load = ProducerLoad(cluster.bootstrap, topic_name, "confluent-kafka", 3, rate=2000).start()
    try:
        broker = cluster.broker(2)
        cluster.wait_for("broker 2 to stop on a full disk", lambda: not broker.is_running(), 120)
        assert "all log dirs in" in broker.log_path.read_text()
        cluster.wait_for(
            "leaders off broker 2",
            lambda: all(
                p.leader_id not in (2, -1)
                for p in cluster.metadata([topic_name]).topics[0].partitions
            ),
            timeout_s=30,
        )
        time.sleep(1.0)  # the load goes on without broker 2
        filler.unlink()  # space returns
        broker.start()
        cluster.wait_for(
            "broker 2 back in every ISR",
            lambda: all(
                2 in p.isr_nodes for p in cluster.metadata([topic_name]).topics[0].partitions
            ),
            timeout_s=60,
        )
    finally:
        load.stop()
    assert load.acked
    assert_acknowledged_read_back(load.acked, read_all(cluster.bootstrap, topic_name, 3))
