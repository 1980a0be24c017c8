"""R9: transactions while every broker is bounced in turn (one stopped with SIGTERM,
the next killed with kill -9, ...), the brokers hosting the transaction
coordinators among them.

The exactly-once copy of R9 (consume, transform, produce, with the offsets in the
transaction) is tests/integration/test_cluster_coordinators.py::
test_transactional_copy_stays_exactly_once_while_every_broker_is_bounced: it reads
the copy read_committed and finds every input value exactly once, which an aborted
transaction's records (visible, or retried) would break. Here the checker covers
the producers' side: two transactional producers (confluent-kafka, aborting every
fifth transaction on purpose) and idempotent producers of three libraries write one
topic; read_committed never sees an aborted or never-committed value, every
committed transaction is read whole and once, nothing acknowledged is lost.

kafka-python's transactional producer (3.0.12) is left out: after its coordinator's
broker was bounced it kept failing "Node 1 not ready after 30000 ms" with the broker
back and serving, its records expired after 120 s, and once its commit_transaction
returned although those records had failed (the checker then counted a committed
transaction's values as lost). Its idempotent producer recovers from the same
bounces.

Short form: every broker bounced once; long form (STROM_FAULT_LONG=1): five rounds.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from strom.testing import Cluster
from strom.testing.history import TxnOutcome
from tests.fault.scenario import Workload, assert_clean, create_topic, pick
from tests.integration.test_cluster_coordinators import SETTINGS, bounce, in_sync

pytestmark = [pytest.mark.integration, pytest.mark.fault, pytest.mark.usefixtures("require_strom")]

ClusterFactory = Callable[..., Cluster]


def test_r9_transactions_stay_atomic_while_every_broker_is_bounced(
    cluster_factory: ClusterFactory, topic_name: str
) -> None:
    cluster = cluster_factory(3, SETTINGS, session_timeout_ms=4000)
    create_topic(cluster, topic_name)
    rounds = pick(1, 5)
    txn = ["confluent-kafka", "confluent-kafka"]  # kafka-python's: see the module docstring
    with Workload(cluster, topic_name, 3, rate=60, txn_clients=txn) as load:
        for i, broker_id in enumerate(sorted(cluster.brokers) * rounds):
            time.sleep(2.0)
            kill = i % 2 == 1
            started = load.history.now()
            bounce(cluster, broker_id, kill=kill)
            cluster.wait_for("every replica in sync", lambda: in_sync(cluster), timeout_s=60)
            load.history.span(f"{'kill -9' if kill else 'SIGTERM'} broker {broker_id}", started)
        time.sleep(2.0)
    report = load.report(f"R9 transactions, every broker bounced x{rounds}")
    assert_clean(report, min_acked=500)
    outcomes = report.transactions
    assert outcomes[TxnOutcome.COMMITTED] >= 20 and outcomes[TxnOutcome.ABORTED] >= 3, outcomes
    for producer in load.loads:
        assert producer.acked, f"{producer.writer}: nothing acknowledged; {producer.errors[:3]}"
