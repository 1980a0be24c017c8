"""The coordinator's IO edge on real logs: markers are never lost across a crash.

A Broker object (no sockets) over a temporary directory; "crash" means the
broker is dropped without the steps that follow the last append.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from strom.broker.broker import Broker
from strom.common.config import BrokerConfig
from strom.common.types import FakeClock, TopicPartition
from strom.coordinator.txn.state import TxnState
from strom.protocol.records import build_batch
from strom.testing.inprocess import open_broker

TP = TopicPartition("t", 0)


def _broker(tmp_path: Path, clock: FakeClock) -> Broker:
    config = BrokerConfig(
        {
            "listeners": "PLAINTEXT://127.0.0.1:9092",
            "log.dirs": str(tmp_path / "log"),
            "transaction.state.log.num.partitions": "3",
        }
    )
    return open_broker(config, clock)


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(scenario())  # type: ignore[arg-type]


async def _ready(broker: Broker) -> None:
    assert await broker.transactions.find_coordinator("any") != (0, -1)
    await broker.producer_ids.ensure_available(broker)


async def _open_transaction(
    broker: Broker, txn_id: str, timeout_ms: int = 60_000
) -> tuple[int, int]:
    rt = broker.transactions
    await _ready(broker)
    now = broker.now_ms()
    init = rt.coordinator.init_producer_id(txn_id, timeout_ms, None, now)
    assert await rt.execute(init) == 0
    pid, epoch = init.producer_id, init.producer_epoch
    assert await rt.execute(rt.coordinator.add_partitions(txn_id, pid, epoch, [TP], now)) == 0
    batch = build_batch(
        [(None, b"x", (), now)],
        producer_id=pid,
        producer_epoch=epoch,
        base_sequence=0,
        is_transactional=True,
    )
    broker.replicas.append(TP, batch, -1, now)
    return pid, epoch


def test_prepared_commit_is_completed_after_a_crash(tmp_path: Path) -> None:
    run(lambda: _prepared_commit_is_completed_after_a_crash(tmp_path))


async def _prepared_commit_is_completed_after_a_crash(tmp_path: Path) -> None:
    clock = FakeClock()
    broker = _broker(tmp_path, clock)
    await broker.topics.create("t", 1, 1)
    pid, epoch = await _open_transaction(broker, "tx")
    log = broker.replicas.get_partition(TP).log
    assert log.last_stable_offset == 0
    prepare = broker.transactions.coordinator.end_txn("tx", pid, epoch, True, clock.now_ms())
    # PrepareCommit reaches the log; the broker dies before any marker is written
    assert await broker.transactions._append_records(prepare) == 0
    broker.shutdown()

    again = _broker(tmp_path, clock)
    await again.transactions.retry_markers()
    log = again.replicas.get_partition(TP).log
    assert log.log_end_offset == 2  # the record and the COMMIT marker
    assert log.last_stable_offset == 2
    assert log.collect_aborted_transactions(0, 2) == []
    m = again.transactions.coordinator.transactions["tx"]
    assert m.state == TxnState.COMPLETE_COMMIT
    again.shutdown()


def test_open_transaction_is_aborted_after_its_timeout_across_restart(tmp_path: Path) -> None:
    run(lambda: _open_transaction_is_aborted_after_its_timeout_across_restart(tmp_path))


async def _open_transaction_is_aborted_after_its_timeout_across_restart(tmp_path: Path) -> None:
    clock = FakeClock()
    broker = _broker(tmp_path, clock)
    await broker.topics.create("t", 1, 1)
    pid, epoch = await _open_transaction(broker, "tx", timeout_ms=5000)
    broker.shutdown()

    clock.advance(4000)
    again = _broker(tmp_path, clock)
    rt = again.transactions
    assert await rt.abort_timed_out_transactions() == 0
    clock.advance(1001)
    assert await rt.abort_timed_out_transactions() == 1
    m = rt.coordinator.transactions["tx"]
    assert (m.state, m.producer_id, m.producer_epoch) == (TxnState.COMPLETE_ABORT, pid, epoch + 1)
    log = again.replicas.get_partition(TP).log
    assert log.last_stable_offset == log.log_end_offset == 2
    assert [a.producer_id for a in log.collect_aborted_transactions(0, 2)] == [pid]
    # the fenced producer can no longer end its transaction
    assert rt.coordinator.end_txn("tx", pid, epoch, True, clock.now_ms()).error != 0
    again.shutdown()


def test_expired_transactional_id_is_gone_after_restart(tmp_path: Path) -> None:
    run(lambda: _expired_transactional_id_is_gone_after_restart(tmp_path))


async def _expired_transactional_id_is_gone_after_restart(tmp_path: Path) -> None:
    clock = FakeClock()
    broker = _broker(tmp_path, clock)
    rt = broker.transactions
    await _ready(broker)
    init = rt.coordinator.init_producer_id("idle", 1000, None, clock.now_ms())
    assert await rt.execute(init) == 0
    clock.advance(604_800_000)
    assert await rt.expire_transactional_ids() == 1
    broker.shutdown()
    again = _broker(tmp_path, clock)
    assert "idle" not in again.transactions.coordinator.transactions
    again.shutdown()


def test_new_coordinator_loads_records_above_its_high_watermark(tmp_path: Path) -> None:
    run(lambda: _new_coordinator_loads_records_above_its_high_watermark(tmp_path))


async def _new_coordinator_loads_records_above_its_high_watermark(tmp_path: Path) -> None:
    """A follower of ``__transaction_state`` holds the leader's last record (the
    Ongoing state with the partitions added) but not yet the high watermark that
    covers it (the leader died before its next fetch answer). Promoted, it loads
    up to its log end offset, as Kafka's TransactionStateManager does: a load
    stopped at the high watermark finds the previous CompleteCommit, forgets the
    open transaction, and the records it already has on ``t-0`` are later
    committed by the next transaction's marker (incident: 4 of 10 values read)."""
    clock = FakeClock()
    broker = _broker(tmp_path, clock)
    await broker.topics.create("t", 1, 1)
    pid, epoch = await _open_transaction(broker, "tx")
    rt = broker.transactions
    txn_tp = TopicPartition("__transaction_state", rt.coordinator.partition_for("tx"))
    txn_log = broker.replicas.get_partition(txn_tp).log
    ongoing_offset = txn_log.log_end_offset - 1
    # the follower's view: the record is there, the high watermark is not past it
    txn_log.high_watermark = ongoing_offset
    rt.on_leadership(txn_tp, True, 1)
    m = rt.coordinator.transactions["tx"]
    assert (m.state, m.partitions) == (TxnState.ONGOING, frozenset({TP}))
    # the producer's restart fences it: the open transaction is aborted, not forgotten
    init = rt.coordinator.init_producer_id("tx", 60_000, None, clock.now_ms())
    await rt.execute(init)
    log = broker.replicas.get_partition(TP).log
    aborted = log.collect_aborted_transactions(0, log.log_end_offset)
    assert [a.producer_id for a in aborted] == [pid]
    assert rt.coordinator.transactions["tx"].producer_epoch > epoch
    broker.shutdown()
