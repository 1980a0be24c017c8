"""Idempotent appends: duplicates, sequence gaps, epochs, and recovery of the state."""

from __future__ import annotations

from pathlib import Path

import pytest

from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.records import build_batch, iter_batches
from strom.storage.config import LogConfig
from strom.storage.log import PartitionLog
from strom.storage.producer_state import ProducerStateManager, in_sequence

NOW = 1_700_000_000_000


def _batch(pid: int, epoch: int, seq: int, n: int = 3) -> bytes:
    return build_batch(
        [(None, b"v%d" % (seq + i), (), NOW) for i in range(n)],
        producer_id=pid,
        producer_epoch=epoch,
        base_sequence=seq,
    )


def _open(d: Path, clean: bool = True, **cfg: int) -> PartitionLog:
    return PartitionLog.open(d, LogConfig(**cfg), NOW, clean)


def _count(log: PartitionLog) -> int:
    data = log.read(log.log_start_offset, 1 << 30).slices
    return sum(h.records_count for s in data for h, _ in iter_batches(s.read()))


def test_retried_batch_returns_original_offsets_without_a_second_copy(tmp_path: Path) -> None:
    log = _open(tmp_path)
    first = log.append_as_leader(_batch(7, 0, 0), 0, NOW)
    second = log.append_as_leader(_batch(7, 0, 3), 0, NOW)
    again = log.append_as_leader(_batch(7, 0, 0), 0, NOW)
    assert (again.first_offset, again.last_offset) == (first.first_offset, first.last_offset)
    assert log.log_end_offset == second.last_offset + 1 == 6
    assert _count(log) == 6


def test_gap_in_sequence_is_out_of_order(tmp_path: Path) -> None:
    log = _open(tmp_path)
    log.append_as_leader(_batch(7, 0, 0), 0, NOW)
    with pytest.raises(KafkaError) as e:
        log.append_as_leader(_batch(7, 0, 5), 0, NOW)
    assert e.value.code == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
    assert log.log_end_offset == 3


def test_stale_epoch_is_refused_and_new_epoch_must_start_at_zero(tmp_path: Path) -> None:
    log = _open(tmp_path)
    log.append_as_leader(_batch(7, 1, 0), 0, NOW)
    with pytest.raises(KafkaError) as e:
        log.append_as_leader(_batch(7, 0, 3), 0, NOW)
    assert e.value.code == ErrorCode.INVALID_PRODUCER_EPOCH
    with pytest.raises(KafkaError) as e:
        log.append_as_leader(_batch(7, 2, 3), 0, NOW)
    assert e.value.code == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
    log.append_as_leader(_batch(7, 2, 0), 0, NOW)
    assert log.log_end_offset == 6


def test_unknown_producer_may_start_at_any_sequence(tmp_path: Path) -> None:
    log = _open(tmp_path)
    log.append_as_leader(_batch(9, 0, 40), 0, NOW)
    log.append_as_leader(_batch(9, 0, 43), 0, NOW)
    assert log.log_end_offset == 6


@pytest.mark.parametrize("clean", [True, False])
def test_state_survives_reopen(tmp_path: Path, clean: bool) -> None:
    log = _open(tmp_path, segment_bytes=300)
    for seq in range(0, 30, 3):
        log.append_as_leader(_batch(7, 0, seq), 0, NOW)
    if clean:
        log.close()
    reopened = _open(tmp_path, clean=clean, segment_bytes=300)
    again = reopened.append_as_leader(_batch(7, 0, 27), 0, NOW)
    assert again.first_offset == 27
    assert reopened.log_end_offset == 30
    with pytest.raises(KafkaError):
        reopened.append_as_leader(_batch(7, 0, 40), 0, NOW)
    reopened.append_as_leader(_batch(7, 0, 30), 0, NOW)
    assert reopened.log_end_offset == 33


def test_truncation_rewinds_producer_state(tmp_path: Path) -> None:
    log = _open(tmp_path)
    for seq in (0, 3, 6):
        log.append_as_leader(_batch(7, 0, seq), 0, NOW)
    log.truncate_to(6)
    log.append_as_leader(_batch(7, 0, 6), 0, NOW)  # no longer a duplicate
    assert log.log_end_offset == 9


def test_corrupt_snapshot_is_ignored_and_state_replayed(tmp_path: Path) -> None:
    log = _open(tmp_path)
    log.append_as_leader(_batch(7, 0, 0), 0, NOW)
    log.close()
    snaps = list(tmp_path.glob("*.snapshot"))
    assert snaps
    snaps[0].write_bytes(b"\x00\x01garbage")
    reopened = _open(tmp_path, clean=False)
    assert reopened.append_as_leader(_batch(7, 0, 0), 0, NOW).first_offset == 0
    assert reopened.log_end_offset == 3


def test_expiry_forgets_idle_producers(tmp_path: Path) -> None:
    m = ProducerStateManager(tmp_path, expiration_ms=1000)
    from strom.protocol.records import parse_header

    m.update([parse_header(_batch(7, 0, 0))])
    assert m.remove_expired(NOW + 500) == 0
    assert m.remove_expired(NOW + 1000) == 1
    assert not m.producers


def test_sequence_wraps_at_int_max() -> None:
    assert in_sequence(2_147_483_647, 0)
    assert in_sequence(4, 5)
    assert not in_sequence(4, 6)
