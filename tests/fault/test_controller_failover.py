"""R12: controller failover under acks=all idempotent load (the checker runs through
each case).

- The controller is killed with kill -9; its ZooKeeper session expires and another
  broker becomes controller with epoch + 1; requests carrying the old epoch are
  refused by every broker (STALE_CONTROLLER_EPOCH), the old controller comes back
  as a plain broker.
- The controller is cut off from ZooKeeper while it runs: its session expires, a new
  controller takes over with epoch + 1; healed, the old one resigns and never writes
  a partition state with its old epoch.
- The cluster runs on a 3-node ZooKeeper ensemble (127.0.0.11-13) whose leader is
  killed: the ensemble elects another, the brokers keep their sessions and the
  cluster keeps taking writes; then the controller is killed too and the remaining
  quorum elects the next one.

Short and long form are the same but for how long the load runs between the events
(1 s; 10 s with STROM_FAULT_LONG=1).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from strom.protocol.errors import ErrorCode
from strom.protocol.generated.leader_and_isr import LeaderAndIsrRequest
from strom.protocol.generated.update_metadata import UpdateMetadataRequest
from strom.testing import Cluster, ZooKeeperEnsemble
from strom.testing.netfaults import Network
from strom.testing.wire import RawClient
from tests.fault.scenario import (
    SESSION_MS,
    Workload,
    assert_clean,
    create_topic,
    in_every_isr,
    pick,
)
from tests.integration.test_cluster import controller_epoch, zk_get

pytestmark = [pytest.mark.integration, pytest.mark.fault, pytest.mark.usefixtures("require_strom")]

ClusterFactory = Callable[..., Cluster]
FAILOVER_S = SESSION_MS / 1000 + 15
BETWEEN_S = pick(1.0, 10.0)


def new_controller(cluster: Cluster, old: int, epoch: int) -> int:
    cluster.wait_for(
        "a new controller with the next epoch",
        lambda: cluster.controller_id() not in (old, -1) and controller_epoch(cluster) > epoch,
        timeout_s=FAILOVER_S,
    )
    assert controller_epoch(cluster) == epoch + 1
    return cluster.controller_id()


def stale_requests_refused(cluster: Cluster, old: int, epoch: int) -> None:
    for b in cluster.brokers.values():
        with RawClient(b.bootstrap) as c:
            lai = LeaderAndIsrRequest(controller_id=old, controller_epoch=epoch, broker_epoch=-1)
            umr = UpdateMetadataRequest(controller_id=old, controller_epoch=epoch, broker_epoch=-1)
            codes = (c.request(lai, 5).error_code, c.request(umr, 7).error_code)
        assert codes == (ErrorCode.STALE_CONTROLLER_EPOCH,) * 2, (b, codes)


def test_r12_killed_controller_is_replaced_and_its_epoch_refused(
    cluster_factory: ClusterFactory, topic_name: str
) -> None:
    cluster = cluster_factory(3, session_timeout_ms=SESSION_MS)
    create_topic(cluster, topic_name)
    with Workload(cluster, topic_name, 3) as load:
        time.sleep(BETWEEN_S)
        old, epoch = cluster.controller_id(), controller_epoch(cluster)
        load.event(f"kill -9 broker {old} (the controller)")
        cluster.broker(old).kill()
        new = new_controller(cluster, old, epoch)
        cluster.broker(old).start()
        cluster.wait_for("the old controller back in every ISR",
                         lambda: in_every_isr(cluster, topic_name, old), timeout_s=60)  # fmt: skip
        time.sleep(BETWEEN_S)
    assert cluster.controller_id() == new
    stale_requests_refused(cluster, old, epoch)
    assert_clean(load.report("R12 controller kill -9"), min_acked=300)


def test_r12_controller_cut_off_from_zookeeper_resigns(
    cluster_factory: ClusterFactory, network: Network, topic_name: str
) -> None:
    cluster = cluster_factory(3, session_timeout_ms=SESSION_MS)
    create_topic(cluster, topic_name)
    zk = cluster.zookeeper
    with Workload(cluster, topic_name, 3) as load:
        time.sleep(BETWEEN_S)
        old, epoch = cluster.controller_id(), controller_epoch(cluster)
        b = cluster.broker(old)
        cut_at = load.history.now()
        network.partition([(b.pid, b.host, b.port)], [(zk.pid, zk.host, zk.port)])
        try:
            new_controller(cluster, old, epoch)
            time.sleep(BETWEEN_S)
        finally:
            network.heal()
        load.history.span(f"broker {old} (the controller) cut off from ZooKeeper", cut_at)
        cluster.wait_for("the old controller back in every ISR",
                         lambda: in_every_isr(cluster, topic_name, old), timeout_s=60)  # fmt: skip
        time.sleep(BETWEEN_S)
    assert "resigns as controller" in b.log_path.read_text()
    assert controller_epoch(cluster) == epoch + 1
    for p in range(3):  # no partition state was written with the old epoch after it lost
        state = json.loads(zk_get(cluster, f"/brokers/topics/{topic_name}/partitions/{p}/state"))
        assert state["controller_epoch"] == epoch + 1 or state["leader"] != old, state
    stale_requests_refused(cluster, old, epoch)
    assert_clean(load.report("R12 controller cut off from ZooKeeper"), min_acked=300)


def test_r12_zookeeper_ensemble_leader_killed(tmp_path: Path, topic_name: str) -> None:
    ensemble = ZooKeeperEnsemble(tmp_path / "zk").start()
    cluster = Cluster(tmp_path / "cluster", 3, zookeeper=ensemble, session_timeout_ms=6000)  # type: ignore[arg-type]
    try:
        cluster.start()
        create_topic(cluster, topic_name)
        with Workload(cluster, topic_name, 3) as load:
            time.sleep(BETWEEN_S)
            leader = ensemble.leader()
            assert leader is not None
            load.event(f"kill -9 the ZooKeeper leader ({leader.host})")
            leader.kill()
            cluster.wait_for("another ZooKeeper leader", lambda: ensemble.leader() is not None, 30)
            time.sleep(BETWEEN_S + 2.0)
            # the brokers kept their sessions: all registered, the controller unchanged
            assert sorted(x.node_id for x in cluster.metadata().brokers) == [0, 1, 2]
            old, epoch = cluster.controller_id(), controller_epoch(cluster)
            load.event(f"kill -9 broker {old} (the controller)")
            cluster.broker(old).kill()
            new_controller(cluster, old, epoch)
            cluster.broker(old).start()
            cluster.wait_for(
                "the old controller back in every ISR",
                lambda: in_every_isr(cluster, topic_name, old),
                timeout_s=60,
            )
            time.sleep(BETWEEN_S)
        report = load.report("R12 ZooKeeper ensemble leader killed")
    finally:
        cluster.stop()
        ensemble.stop()
    assert_clean(report, min_acked=300)
