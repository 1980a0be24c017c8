"""The transaction coordinator without IO: transitions, fencing, timeouts, replay."""

from __future__ import annotations

import itertools

import pytest

from strom.common.hashing import coordinator_partition as partition_for
from strom.common.hashing import java_string_hash
from strom.common.types import FakeClock, TopicPartition
from strom.coordinator.txn.coordinator import (
    TransactionCoordinator,
    TxnConfig,
    TxnResult,
)
from strom.coordinator.txn.log_records import (
    TxnRecord,
    decode_record,
    encode_record,
)
from strom.coordinator.txn.state import (
    VALID_PREVIOUS_STATES,
    IllegalTransitionError,
    TransactionMetadata,
    TxnState,
)
from strom.protocol.errors import ErrorCode as E

TID = "txn-1"
TP0 = TopicPartition("t", 0)
TP1 = TopicPartition("t", 1)
PARTITIONS = 4


class Harness:
    """A coordinator plus a list standing in for the __transaction_state log."""

    def __init__(self, clock: FakeClock | None = None, **config: int) -> None:
        self.clock = clock or FakeClock()
        self.ids = itertools.count(1000)
        self.coordinator = TransactionCoordinator(
            TxnConfig(num_partitions=PARTITIONS, **config), lambda: next(self.ids)
        )
        self.log: list[tuple[bytes, bytes | None]] = []
        for p in range(PARTITIONS):
            self.coordinator.begin_load(p)
            self.coordinator.complete_load(p, 0)

    def run(self, result: TxnResult) -> E:
        """What the runtime does: append (as bytes), replay, write markers, complete."""
        for record in result.records:
            self.log.append(encode_record(record))
            self.coordinator.replay(record)
        job = self.coordinator.marker_job(result.transactional_id)
        if job is not None:
            self.run(self.coordinator.complete_txn(job, self.clock.now_ms()))
        return result.error

    def init(self, tid: str = TID, timeout_ms: int = 60_000) -> TxnResult:
        result = self.coordinator.init_producer_id(tid, timeout_ms, None, self.clock.now_ms())
        self.run(result)
        return result

    def reloaded(self) -> TransactionCoordinator:
        fresh = TransactionCoordinator(self.coordinator.config, lambda: next(self.ids))
        for p in range(PARTITIONS):
            fresh.begin_load(p)
        for key, value in self.log:
            fresh.replay(decode_record(key, value))
        for p in range(PARTITIONS):
            fresh.complete_load(p, 1)
        return fresh


def test_java_string_hash_and_placement_match_kafka() -> None:
    assert java_string_hash("") == 0
    assert java_string_hash("hello") == 99162322
    assert java_string_hash("polygenelubricants") == -(1 << 31)
    assert partition_for("polygenelubricants", 50) == 0
    assert partition_for("my-txn", 50) == abs(java_string_hash("my-txn")) % 50
    # a negative hash: Utils.abs, not a sign-bit mask (the group coordinator used the mask)
    assert java_string_hash("my-group") < 0
    assert partition_for("my-group", 50) == abs(java_string_hash("my-group")) % 50


def test_transition_table_is_kafkas() -> None:
    S = TxnState
    assert VALID_PREVIOUS_STATES[S.PREPARE_COMMIT] == {S.ONGOING}
    assert VALID_PREVIOUS_STATES[S.PREPARE_ABORT] == {S.ONGOING, S.PREPARE_EPOCH_FENCE}
    assert VALID_PREVIOUS_STATES[S.COMPLETE_COMMIT] == {S.PREPARE_COMMIT}
    assert VALID_PREVIOUS_STATES[S.EMPTY] == {S.EMPTY, S.COMPLETE_COMMIT, S.COMPLETE_ABORT}
    m = TransactionMetadata("x", 1, 0, state=S.EMPTY)
    with pytest.raises(IllegalTransitionError):
        m.prepare_abort_or_commit(True, 0)
    m.prepare_add_partitions(frozenset({TP0}), 0)
    with pytest.raises(IllegalTransitionError):  # pending transition blocks another
        m.prepare_add_partitions(frozenset({TP1}), 0)


def test_init_then_commit_walks_the_states() -> None:
    h = Harness()
    c = h.coordinator
    first = h.init()
    assert (first.error, first.producer_id, first.producer_epoch) == (E.NONE, 1000, 0)
    assert c.transactions[TID].state == TxnState.EMPTY
    assert h.run(c.add_partitions(TID, 1000, 0, [TP0], h.clock.now_ms())) == E.NONE
    assert c.transactions[TID].state == TxnState.ONGOING
    # adding partitions already in the transaction writes nothing
    assert c.add_partitions(TID, 1000, 0, [TP0], h.clock.now_ms()).records == []
    end = c.end_txn(TID, 1000, 0, True, h.clock.now_ms())
    assert end.records[0].value is not None
    assert end.records[0].value.state == TxnState.PREPARE_COMMIT
    job = None
    for record in end.records:
        c.replay(record)
    job = c.marker_job(TID)
    assert job is not None and job.commit and job.partitions == {TP0}
    # while markers are pending, a second EndTxn(commit) is told to retry
    assert c.end_txn(TID, 1000, 0, True, 0).error == E.CONCURRENT_TRANSACTIONS
    assert c.end_txn(TID, 1000, 0, False, 0).error == E.INVALID_TXN_STATE
    assert c.add_partitions(TID, 1000, 0, [TP1], 0).error == E.CONCURRENT_TRANSACTIONS
    h.run(c.complete_txn(job, h.clock.now_ms()))
    m = c.transactions[TID]
    assert (m.state, m.partitions) == (TxnState.COMPLETE_COMMIT, set())
    # a retried EndTxn(commit) succeeds, an abort does not
    assert c.end_txn(TID, 1000, 0, True, 0).error == E.NONE
    assert c.end_txn(TID, 1000, 0, False, 0).error == E.INVALID_TXN_STATE


def test_producer_errors() -> None:
    h = Harness()
    c = h.coordinator
    h.init()
    now = h.clock.now_ms()
    assert c.add_partitions("other", 1000, 0, [TP0], now).error == E.INVALID_PRODUCER_ID_MAPPING
    assert c.add_partitions(TID, 999, 0, [TP0], now).error == E.INVALID_PRODUCER_ID_MAPPING
    assert c.add_partitions(TID, 1000, 1, [TP0], now).error == E.PRODUCER_FENCED
    assert c.end_txn(TID, 1000, 0, True, now).error == E.INVALID_TXN_STATE  # Empty
    assert c.init_producer_id(TID, 900_001, None, now).error == E.INVALID_TRANSACTION_TIMEOUT
    assert c.init_producer_id(TID, 0, None, now).error == E.INVALID_TRANSACTION_TIMEOUT
    assert c.init_producer_id("", 1000, None, now).error == E.INVALID_REQUEST
    assert c.describe("nope") == (E.TRANSACTIONAL_ID_NOT_FOUND, None)


def test_not_coordinator_and_loading() -> None:
    h = Harness()
    c = h.coordinator
    p = c.partition_for(TID)
    c.unload(p)
    assert c.init_producer_id(TID, 1000, None, 0).error == E.NOT_COORDINATOR
    c.begin_load(p)
    assert c.init_producer_id(TID, 1000, None, 0).error == E.COORDINATOR_LOAD_IN_PROGRESS
    assert c.list_transactions(set(), set(), -1, 0)[0] == E.COORDINATOR_LOAD_IN_PROGRESS


def test_second_producer_fences_the_first_and_aborts_its_transaction() -> None:
    h = Harness()
    c = h.coordinator
    h.init()
    h.run(c.add_partitions(TID, 1000, 0, [TP0, TP1], h.clock.now_ms()))
    zombie_fence = c.init_producer_id(TID, 60_000, None, h.clock.now_ms())
    # the open transaction is aborted with a bumped epoch; the client retries
    assert zombie_fence.error == E.CONCURRENT_TRANSACTIONS
    assert zombie_fence.records[0].value is not None
    assert zombie_fence.records[0].value.state == TxnState.PREPARE_ABORT
    assert zombie_fence.records[0].value.producer_epoch == 1
    for record in zombie_fence.records:
        c.replay(record)
    job = c.marker_job(TID)
    assert job is not None and not job.commit and job.producer_epoch == 1
    assert job.partitions == {TP0, TP1}
    assert c.init_producer_id(TID, 60_000, None, 0).error == E.CONCURRENT_TRANSACTIONS
    h.run(c.complete_txn(job, h.clock.now_ms()))
    retry = h.init()
    assert (retry.error, retry.producer_id, retry.producer_epoch) == (E.NONE, 1000, 2)
    # the zombie (epoch 0) is fenced everywhere
    assert c.end_txn(TID, 1000, 0, True, 0).error == E.PRODUCER_FENCED
    assert c.add_partitions(TID, 1000, 0, [TP0], 0).error == E.PRODUCER_FENCED
    assert c.verify_partitions(TID, 1000, 0, [TP0]) == {TP0: E.PRODUCER_FENCED}


def test_kip360_reinitialisation_with_expected_epoch() -> None:
    h = Harness()
    c = h.coordinator
    h.init()
    bumped = c.init_producer_id(TID, 60_000, (1000, 0), 0)
    assert (bumped.producer_id, bumped.producer_epoch) == (1000, 1)
    h.run(bumped)
    # a retry of the same request (the producer never saw the answer) gets the same epoch
    again = c.init_producer_id(TID, 60_000, (1000, 0), 0)
    assert (again.error, again.producer_epoch) == (E.NONE, 1)
    h.run(again)
    assert c.init_producer_id(TID, 60_000, (1000, 5), 0).error == E.PRODUCER_FENCED
    assert c.init_producer_id(TID, 60_000, (4242, 0), 0).error == E.PRODUCER_FENCED


def test_exhausted_epoch_rotates_the_producer_id() -> None:
    h = Harness()
    c = h.coordinator
    h.init()
    c.transactions[TID].producer_epoch = 32_766
    rotated = h.init()
    assert (rotated.producer_id, rotated.producer_epoch) == (1001, 0)
    assert c.transactions[TID].last_producer_id == 1000


def test_verification_of_partitions() -> None:
    h = Harness()
    c = h.coordinator
    h.init()
    assert c.verify_partitions(TID, 1000, 0, [TP0]) == {TP0: E.INVALID_TXN_STATE}
    h.run(c.add_partitions(TID, 1000, 0, [TP0], 0))
    assert c.verify_partitions(TID, 1000, 0, [TP0, TP1]) == {
        TP0: E.NONE,
        TP1: E.INVALID_TXN_STATE,
    }
    assert c.verify_partitions("nope", 1, 0, [TP0]) == {TP0: E.INVALID_PRODUCER_ID_MAPPING}


def test_timeout_aborts_and_fences_with_a_fake_clock() -> None:
    clock = FakeClock()
    h = Harness(clock)
    c = h.coordinator
    h.init(timeout_ms=10_000)
    h.run(c.add_partitions(TID, 1000, 0, [TP0], clock.now_ms()))
    clock.advance(10_000)
    assert c.timed_out(clock.now_ms()) == []
    clock.advance(1)
    assert c.timed_out(clock.now_ms()) == [TID]
    result = c.abort_timed_out(TID, clock.now_ms())
    for record in result.records:
        c.replay(record)
    job = c.marker_job(TID)
    assert job is not None and not job.commit and job.producer_epoch == 1
    h.run(c.complete_txn(job, clock.now_ms()))
    assert c.transactions[TID].state == TxnState.COMPLETE_ABORT
    assert c.timed_out(clock.now_ms()) == []
    # the timed-out producer can neither commit nor continue
    assert c.end_txn(TID, 1000, 0, True, clock.now_ms()).error == E.PRODUCER_FENCED
    assert c.add_partitions(TID, 1000, 0, [TP1], clock.now_ms()).error == E.PRODUCER_FENCED


def test_transactional_id_expiration() -> None:
    clock = FakeClock()
    h = Harness(clock, id_expiration_ms=1000)
    c = h.coordinator
    h.init()
    h.init("busy")
    h.run(c.add_partitions("busy", 1001, 0, [TP0], clock.now_ms()))
    clock.advance(1000)
    results = c.expire_transactional_ids(clock.now_ms())
    assert [r.transactional_id for res in results for r in res.records] == [TID]
    for res in results:
        h.run(res)
    assert TID not in c.transactions and "busy" in c.transactions
    assert h.reloaded().transactions.keys() == {"busy"}


def test_replay_rebuilds_state_and_lists_prepared_markers() -> None:
    h = Harness()
    c = h.coordinator
    h.init()
    h.run(c.add_partitions(TID, 1000, 0, [TP0, TP1], 5))
    prepare = c.end_txn(TID, 1000, 0, True, 6)
    for record in prepare.records:  # written, then the broker dies before the markers
        h.log.append(encode_record(record))
        c.replay(record)
    fresh = TransactionCoordinator(c.config, lambda: 1)
    p = fresh.partition_for(TID)
    fresh.begin_load(p)
    for key, value in h.log:
        fresh.replay(decode_record(key, value))
    jobs = fresh.complete_load(p, 3)
    assert len(jobs) == 1
    assert (jobs[0].commit, jobs[0].coordinator_epoch, jobs[0].partitions) == (True, 3, {TP0, TP1})
    m = fresh.transactions[TID]
    assert (m.producer_id, m.producer_epoch, m.txn_start_timestamp) == (1000, 0, 5)


def test_value_round_trip_and_tombstone() -> None:
    h = Harness()
    h.init()
    h.run(h.coordinator.add_partitions(TID, 1000, 0, [TP1, TP0], 7))
    key, value = h.log[-1]
    assert key == b"\x00\x00\x00\x05txn-1"
    record = decode_record(key, value)
    assert record.value is not None
    assert record.value.partitions == {TP0, TP1}
    assert record.value.state == TxnState.ONGOING
    assert decode_record(*encode_record(TxnRecord(TID, None))) == TxnRecord(TID, None)


def test_list_transactions_filters() -> None:
    h = Harness()
    c = h.coordinator
    h.init("a")
    h.init("b")
    h.run(c.add_partitions("b", 1001, 0, [TP0], h.clock.now_ms()))
    _, found = c.list_transactions({TxnState.ONGOING}, set(), -1, 0)
    assert [m.transactional_id for m in found] == ["b"]
    _, found = c.list_transactions(set(), {1000}, -1, 0)
    assert [m.transactional_id for m in found] == ["a"]
    _, found = c.list_transactions(set(), set(), -1, 0)
    assert [m.transactional_id for m in found] == ["a", "b"]
