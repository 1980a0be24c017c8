"""Transactional appends: last stable offset, markers, aborted-transaction index."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from strom.protocol.append_origin import AppendOrigin
from strom.protocol.errors import KafkaError
from strom.protocol.records import build_batch, build_control_batch
from strom.storage.config import LogConfig
from strom.storage.log import PartitionLog

NOW = 1_700_000_000_000


def _txn(pid: int, seq: int, n: int = 2) -> bytes:
    return build_batch(
        [(None, b"t", (), NOW)] * n,
        producer_id=pid,
        producer_epoch=0,
        base_sequence=seq,
        is_transactional=True,
    )


def _plain(n: int = 1) -> bytes:
    return build_batch([(None, b"p", (), NOW)] * n)


def _marker(log: PartitionLog, pid: int, commit: bool) -> int:
    info = log.append_as_leader(
        build_control_batch(pid, 0, commit, 0, NOW), 0, NOW, origin=AppendOrigin.COORDINATOR
    )
    log.update_high_watermark(log.log_end_offset)
    return info.first_offset


def _append(log: PartitionLog, data: bytes) -> None:
    log.append_as_leader(data, 0, NOW)
    log.update_high_watermark(log.log_end_offset)


def test_lso_stops_at_the_first_open_transaction(tmp_path: Path) -> None:
    log = PartitionLog.open(tmp_path, LogConfig(), NOW, True)
    _append(log, _plain())  # 0
    _append(log, _txn(1, 0))  # 1-2
    _append(log, _plain())  # 3
    _append(log, _txn(2, 0))  # 4-5
    assert log.last_stable_offset == 1
    _marker(log, 1, commit=True)  # 6
    assert log.last_stable_offset == 4
    _marker(log, 2, commit=False)  # 7
    assert log.last_stable_offset == log.high_watermark == 8
    aborted = log.collect_aborted_transactions(0, 8)
    assert [(a.producer_id, a.first_offset, a.last_offset) for a in aborted] == [(2, 4, 7)]
    assert log.collect_aborted_transactions(8, 8) == []


@pytest.mark.parametrize("clean", [True, False])
def test_open_transaction_and_aborts_survive_reopen(tmp_path: Path, clean: bool) -> None:
    log = PartitionLog.open(tmp_path, LogConfig(segment_bytes=200), NOW, True)
    _append(log, _txn(1, 0))
    _marker(log, 1, commit=False)
    _append(log, _txn(2, 0))
    hw = log.high_watermark
    if clean:
        log.close()
    again = PartitionLog.open(tmp_path, LogConfig(segment_bytes=200), NOW, clean, high_watermark=hw)
    assert again.last_stable_offset == 3
    assert [a.producer_id for a in again.collect_aborted_transactions(0, 10)] == [1]
    _marker(again, 2, commit=True)
    assert again.last_stable_offset == again.log_end_offset


def test_truncation_reopens_a_transaction(tmp_path: Path) -> None:
    log = PartitionLog.open(tmp_path, LogConfig(), NOW, True)
    _append(log, _txn(1, 0))
    marker = _marker(log, 1, commit=False)
    log.truncate_to(marker)
    log.update_high_watermark(log.log_end_offset)
    assert log.collect_aborted_transactions(0, 10) == []
    assert log.last_stable_offset == 0


def _walked_first_unstable(log: PartitionLog) -> int | None:
    """first_unstable_offset by a walk over every producer (what the answer kept
    between transaction changes must equal)."""
    firsts = [
        e.current_txn_first_offset
        for e in log.producer_state.producers.values()
        if e.current_txn_first_offset >= 0
    ]
    return min(firsts) if firsts else None


def test_the_kept_first_unstable_offset_follows_every_change(tmp_path: Path) -> None:
    rng = random.Random(5)
    log = PartitionLog.open(tmp_path, LogConfig(segment_bytes=2000), NOW, True)
    seqs: dict[tuple[int, int], int] = {}
    epochs = {pid: 0 for pid in range(1, 6)}
    for step in range(300):
        pid = rng.randrange(1, 6)
        action = rng.random()
        if action < 0.4:
            seq = seqs.get((pid, epochs[pid]), 0)
            data = build_batch(
                [(None, b"t", (), NOW)],
                producer_id=pid,
                producer_epoch=epochs[pid],
                base_sequence=seq,
                is_transactional=rng.random() < 0.6,
            )
            try:
                _append(log, data)
                seqs[(pid, epochs[pid])] = seq + 1
            except KafkaError:  # the state moved under the model (expiry, truncation)
                epochs[pid] += 1  # a new epoch starts at sequence 0
        elif action < 0.7:
            log.append_as_leader(
                build_control_batch(pid, epochs[pid], rng.random() < 0.5, 0, NOW),
                0,
                NOW,
                origin=AppendOrigin.COORDINATOR,
            )
            log.update_high_watermark(log.log_end_offset)
        elif action < 0.8:
            epochs[pid] += 1
        elif action < 0.85:
            log.producer_state.remove_expired(NOW + 10**12)
        elif action < 0.9 and log.log_end_offset > 2:
            log.truncate_to(rng.randrange(1, log.log_end_offset))
            seqs.clear()
            epochs = {p: e + 1 for p, e in epochs.items()}  # new epochs start at sequence 0
        elif action < 0.93:
            log.close()
            log = PartitionLog.open(
                tmp_path, LogConfig(segment_bytes=2000), NOW, rng.random() < 0.5
            )
        assert log.producer_state.first_unstable_offset() == _walked_first_unstable(log), step
