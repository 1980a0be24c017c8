import pytest

from strom.client.fetcher import AbortedTxn, parse_records
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.records import build_batch, build_control_batch


def _batch(base: int, n: int, compression: int = 0) -> bytes:
    return build_batch(
        [(None, b"v%d" % (base + i), (), 1000 + i) for i in range(n)],
        base_offset=base,
        compression=compression,
    )


def test_skips_records_before_the_requested_offset() -> None:
    data = _batch(0, 5) + _batch(5, 3, compression=3)
    records, next_offset = parse_records(data, 3)
    assert [r.offset for r in records] == [3, 4, 5, 6, 7]
    assert records[0].value == b"v3"
    assert next_offset == 8


def test_truncated_final_batch_is_ignored() -> None:
    data = _batch(0, 2) + _batch(2, 2)[:-5]
    records, next_offset = parse_records(data, 0)
    assert [r.offset for r in records] == [0, 1]
    assert next_offset == 2


def test_control_batches_are_skipped_but_move_the_position() -> None:
    marker = build_control_batch(7, 0, True, 0, 1234, base_offset=2)
    data = _batch(0, 2) + marker + _batch(3, 1)
    records, next_offset = parse_records(data, 0)
    assert [r.offset for r in records] == [0, 1, 3]
    assert next_offset == 4
    records, next_offset = parse_records(marker, 2)
    assert records == [] and next_offset == 3


def test_empty_and_null_and_max_records() -> None:
    assert parse_records(None, 9) == ([], 9)
    assert parse_records(b"", 9) == ([], 9)
    records, next_offset = parse_records(_batch(0, 5), 1, max_records=2)
    assert [r.offset for r in records] == [1, 2] and next_offset == 3


def test_read_committed_drops_aborted_transactions() -> None:
    aborted_txn = build_batch(
        [(None, b"gone", (), 1)],
        base_offset=2,
        producer_id=9,
        producer_epoch=0,
        base_sequence=0,
        is_transactional=True,
    )
    data = _batch(0, 2) + aborted_txn + build_control_batch(9, 0, False, 0, 1, base_offset=3)
    data += _batch(4, 1)
    aborted = [AbortedTxn(9, 2)]
    records, next_offset = parse_records(data, 0, aborted=aborted, read_committed=True)
    assert [r.value for r in records] == [b"v0", b"v1", b"v4"] and next_offset == 5
    records, _ = parse_records(data, 0, aborted=aborted)
    assert [r.value for r in records] == [b"v0", b"v1", b"gone", b"v4"]


def test_corrupt_data_raises_once_the_good_records_are_out() -> None:
    bad = bytearray(_batch(2, 2))
    bad[-3] ^= 0xFF
    records, next_offset = parse_records(_batch(0, 2) + bytes(bad), 0)
    assert [r.offset for r in records] == [0, 1] and next_offset == 2
    with pytest.raises(KafkaError) as info:
        parse_records(bytes(bad), 2)
    assert info.value.code == ErrorCode.CORRUPT_MESSAGE
