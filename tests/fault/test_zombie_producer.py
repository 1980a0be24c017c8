"""R8: a zombie transactional producer. A producer process writes records in a
transaction and is paused (SIGSTOP) before it commits; a new producer with the same
transactional.id starts (which fences the old epoch and aborts its transaction) and
commits transactions of its own; the old process is resumed and goes on: its late
records and its commit are refused as fenced, and its abort, tried next, cannot
touch the new epoch's transactions either. read_committed consumers never see a
value of the zombie's transaction; every committed transaction of the new producer
is read whole, once (the checker).

Short form: the zombie stays paused while the new producer commits 3 transactions;
long form (STROM_FAULT_LONG=1): 30 of them.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from strom.protocol.errors import ErrorCode
from strom.testing import Cluster
from strom.testing.history import TxnOutcome, writer_value
from tests.fault.scenario import Workload, assert_clean, create_topic, pick

pytestmark = [pytest.mark.integration, pytest.mark.fault, pytest.mark.usefixtures("require_strom")]

ClusterFactory = Callable[..., Cluster]
SETTINGS = {"transaction.abort.timed.out.transaction.cleanup.interval.ms": "500"}

ZOMBIE = r"""
import json, sys
from confluent_kafka import KafkaException, Producer
bootstrap, topic, txn_id, first, late = sys.argv[1:4] + [int(a) for a in sys.argv[4:6]]
p = Producer({"bootstrap.servers": bootstrap, "transactional.id": txn_id, "linger.ms": 5})
p.init_transactions(30)
p.begin_transaction()
acked, failed = [], []
def done(err, msg):
    if err is None:
        acked.append([msg.value().decode(), msg.partition(), msg.offset()])
    else:
        failed.append([msg.value().decode(), str(err)])
def send(start, n):
    for i in range(start, start + n):
        p.produce(topic, b"zombie:%08d" % i, b"zombie", partition=i % 3, on_delivery=done)
    p.flush(30)
send(0, first)
print(json.dumps({"acked": acked}), flush=True)
sys.stdin.readline()  # paused here, then resumed
result = {}
try:
    send(first, late)
except KafkaException as exc:
    result["send"] = str(exc)
for step in ("commit_transaction", "abort_transaction"):
    try:
        getattr(p, step)(10)
        result[step] = "ok"
    except KafkaException as exc:
        result[step] = str(exc)
result["late_acked"], result["late_failed"] = acked[first:], failed
print(json.dumps(result), flush=True)
"""


def stale_end_txn(cluster: Cluster, txn_id: str) -> tuple[str, list[int]]:
    """EndTxn (commit, then abort) with the epoch before the current one, as a zombie's
    late EndTxn reaches the coordinator: (the transaction's state then, error codes)."""
    from strom.protocol.generated.describe_transactions import DescribeTransactionsRequest
    from strom.protocol.generated.end_txn import EndTxnRequest
    from strom.protocol.generated.find_coordinator import FindCoordinatorRequest
    from strom.testing.wire import RawClient

    with RawClient(cluster.bootstrap.split(",")[0]) as c:
        req = FindCoordinatorRequest(key_type=1, coordinator_keys=[txn_id])
        found = c.request(req, 4).coordinators[0]
    with RawClient(f"{found.host}:{found.port}") as c:
        req = DescribeTransactionsRequest(transactional_ids=[txn_id])
        now = c.request(req, 0).transaction_states[0]
        codes = [
            c.request(
                EndTxnRequest(txn_id, now.producer_id, now.producer_epoch - 1, end), 3
            ).error_code
            for end in (True, False)
        ]
    return now.transaction_state, codes


def test_r8_zombie_transactional_producer_is_fenced(
    cluster_factory: ClusterFactory, topic_name: str, tmp_path: Path
) -> None:
    cluster = cluster_factory(3, SETTINGS)
    create_topic(cluster, topic_name)
    script = tmp_path / "zombie.py"
    script.write_text(ZOMBIE)
    load = Workload(cluster, topic_name, 3, clients=(), txn_clients=["confluent-kafka"])
    heir = load.loads[0]
    first, late = 30, 10
    zombie = subprocess.Popen(
        [sys.executable, str(script), cluster.bootstrap, topic_name, heir.transactional_id,
         str(first), str(late)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert zombie.stdin is not None and zombie.stdout is not None
    try:
        early = json.loads(zombie.stdout.readline())["acked"]
        assert len(early) == first
        zombie.send_signal(signal.SIGSTOP)
        h = load.history
        h.begin("zombie#0")
        writes = {}
        for i in range(first + late):
            writes[i] = h.sent("zombie", i % 3, writer_value("zombie", i), "zombie#0")
        for value, _, offset in early:
            h.acked(writes[int(value.split(":")[1])], offset)
        paused_at = h.now()
        committed = pick(3, 30)
        with load:
            load.history.event("SIGSTOP the zombie; a producer with its transactional.id starts")
            cluster.wait_for(
                f"{committed} transactions of the new producer",
                lambda: sum(o == TxnOutcome.COMMITTED for o in h.txns.values()) >= committed,
                timeout_s=60,
            )
            zombie.send_signal(signal.SIGCONT)
            h.span("the zombie paused", paused_at)
            zombie.stdin.write("go\n")
            zombie.stdin.flush()
            outcome = json.loads(zombie.stdout.readline())
            # librdkafka gives up before its EndTxn leaves (its records were fenced):
            # send the late commit and abort of the old epoch ourselves
            states = [stale_end_txn(cluster, heir.transactional_id) for _ in range(5)]
            time.sleep(2.0)  # the new producer goes on after the zombie's attempts
    finally:
        zombie.send_signal(signal.SIGCONT)
        zombie.kill()
        zombie.communicate()
    print(f"zombie: {outcome}\nstale EndTxn (state then, codes): {states}")
    assert outcome["late_acked"] == []
    assert outcome["commit_transaction"] != "ok" and "FENCED" in outcome["commit_transaction"]
    assert outcome["abort_transaction"] != "ok"
    for state, codes in states:  # PRODUCER_FENCED (or INVALID_PRODUCER_EPOCH before v2)
        assert all(code in (ErrorCode.PRODUCER_FENCED, ErrorCode.INVALID_PRODUCER_EPOCH)
                   for code in codes), (state, codes)  # fmt: skip
    h.ended("zombie#0", TxnOutcome.ABORTED)  # aborted by the fencing InitProducerId
    report = load.report("R8 zombie transactional producer")
    assert_clean(report, min_acked=50)
    assert report.aborted_reads == [] and report.never_committed_reads == []
    assert heir.producers == 1, heir.errors  # the new producer itself was never fenced
