"""``strom dump-log`` on files written here: Kafka's JSON for __consumer_offsets and
__transaction_state records, and the entries of .index / .timeindex files."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from strom.cli.main import main
from strom.protocol import group_records as g
from strom.protocol import txn_log_records as t
from strom.protocol.generated.consumer_protocol_assignment import ConsumerProtocolAssignment
from strom.protocol.generated.consumer_protocol_subscription import (
    ConsumerProtocolSubscription,
)
from strom.protocol.records import build_batch
from strom.protocol.wire import Writer

TS = 1_700_000_000_000


def _versioned(message: object, version: int) -> bytes:
    w = Writer()
    w.int16(version)
    message.encode(w, version)  # type: ignore[attr-defined]
    return w.getvalue()


def _dump(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[list[str], str]:
    assert main(["dump-log", *argv]) == 0
    captured = capsys.readouterr()
    return captured.out.splitlines(), captured.err


def _contents(lines: list[str]) -> list[str]:
    return [line.split(" headerKeys: [] ", 1)[1] for line in lines if line.startswith("| ")]


def test_offsets_decoder_prints_kafkas_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    subscription = ConsumerProtocolSubscription(topics=["t"], user_data=None, generation_id=3)
    assignment = ConsumerProtocolAssignment(
        assigned_partitions=[ConsumerProtocolAssignment.TopicPartition("t", [0, 1])]
    )
    member = g.MemberMetadataValue(
        "m-1",
        None,
        "client",
        "/127.0.0.1",
        300000,
        45000,
        _versioned(subscription, 2),
        _versioned(assignment, 0),
    )
    group = g.GroupMetadataValue("consumer", 4, "range", "m-1", TS, (member,))
    records = [
        (
            g.encode_offset_commit_key(g.OffsetCommitKey("grp", "t", 0)),
            g.encode_offset_commit_value(g.OffsetCommitValue(42, 7, "meta", TS)),
            (),
            TS,
        ),
        (
            g.encode_offset_commit_key(g.OffsetCommitKey("grp", "t", 1)),
            g.encode_offset_commit_value(g.OffsetCommitValue(5, -1, "", TS, TS + 1)),
            (),
            TS,
        ),
        (
            g.encode_group_metadata_key(g.GroupMetadataKey("grp")),
            g.encode_group_metadata_value(group),
            (),
            TS,
        ),
        (g.encode_group_metadata_key(g.GroupMetadataKey("gone")), None, (), TS),
        (b"\x00\x09junk", b"", (), TS),
    ]
    segment = tmp_path / "00000000000000000000.log"
    segment.write_bytes(build_batch(records))
    lines, _ = _dump(capsys, "--offsets-decoder", "--files", str(segment))
    assert _contents(lines) == [
        'key: {"type":"1","data":{"group":"grp","topic":"t","partition":0}} '
        'payload: {"version":"3","data":{"offset":42,"leaderEpoch":7,"metadata":"meta",'
        f'"commitTimestamp":{TS}}}}}',
        'key: {"type":"1","data":{"group":"grp","topic":"t","partition":1}} '
        'payload: {"version":"1","data":{"offset":5,"metadata":"",'
        f'"commitTimestamp":{TS},"expireTimestamp":{TS + 1}}}}}',
        'key: {"type":"2","data":{"group":"grp"}} payload: {"version":"3","data":'
        '{"protocolType":"consumer","generation":4,"protocol":"range","leader":"m-1",'
        f'"currentStateTimestamp":{TS},"members":[{{"memberId":"m-1","groupInstanceId":null,'
        '"clientId":"client","clientHost":"/127.0.0.1","rebalanceTimeout":300000,'
        '"sessionTimeout":45000,"subscription":{"topics":["t"],"userData":null,'
        '"ownedPartitions":[],"generationId":3},"assignment":{"assignedPartitions":'
        '[{"topic":"t","partitions":[0,1]}],"userData":null}}]}}',
        'key: {"type":"2","data":{"group":"gone"}} payload: <DELETE>',
        "key: Unknown record type 9 at offset 4, skipping.",
    ]


def test_transaction_log_decoder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    value = t.TxnLogValue(1000, 2, 60000, 1, (("t", (0, 1)), ("u", (3,))), TS + 5, TS)
    records = [
        (t.encode_key("tid-1"), t.encode_value(value), (), TS),
        (t.encode_key("tid-2"), None, (), TS),
    ]
    segment = tmp_path / "00000000000000000007.log"
    segment.write_bytes(build_batch(records, base_offset=7))
    lines, _ = _dump(capsys, str(segment), "--transaction-log-decoder", "--skip-record-metadata")
    assert lines[1] == "Log starting offset: 7"
    assert [line for line in lines if line.startswith("| ")] == [
        '| key: {"type":"0","data":{"transactionalId":"tid-1"}} payload: {"version":"0","data":'
        '{"producerId":1000,"producerEpoch":2,"transactionTimeoutMs":60000,'
        '"transactionStatus":1,"transactionPartitions":[{"topic":"t","partitionIds":[0,1]},'
        '{"topic":"u","partitionIds":[3]}],'
        f'"transactionLastUpdateTimestampMs":{TS + 5},"transactionStartTimestampMs":{TS}}}}}',
        '| key: {"type":"0","data":{"transactionalId":"tid-2"}} payload: <DELETE>',
    ]


def test_index_and_time_index(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = 100
    batches = [
        build_batch([(None, b"a", (), TS), (None, b"b", (), TS + 1)], base_offset=100),
        build_batch([(None, b"c", (), TS + 9)], base_offset=102),
        build_batch([(None, b"d", (), TS + 20), (None, b"e", (), TS + 30)], base_offset=103),
    ]
    (tmp_path / "00000000000000000100.log").write_bytes(b"".join(batches))
    second, third = len(batches[0]), len(batches[0]) + len(batches[1])
    index = tmp_path / "00000000000000000100.index"
    # two good entries, one pointing at the wrong batch, then preallocated zeros
    index.write_bytes(
        struct.pack(">ii", 102 - base, second)
        + struct.pack(">ii", 104 - base, third)
        + struct.pack(">ii", 103 - base, second)
        + bytes(16)
    )
    time_index = tmp_path / "00000000000000000100.timeindex"
    time_index.write_bytes(
        struct.pack(">qi", TS + 9, 102 - base) + struct.pack(">qi", TS + 30, 104 - base)
    )
    lines, err = _dump(capsys, "--files", f"{index},{time_index}")
    assert lines == [
        f"Dumping {index}",
        f"offset: 102 position: {second}",
        f"offset: 104 position: {third}",
        f"offset: 103 position: {second}",
        f"Dumping {time_index}",
        f"timestamp: {TS + 9} offset: 102",
        f"timestamp: {TS + 30} offset: 104",
    ]
    assert err.splitlines() == [
        f"Mismatches in :{index}",
        "  Index offset: 103, log offset: 102",
    ]
    empty = tmp_path / "00000000000000000200.index"
    empty.write_bytes(b"")
    lines, _ = _dump(capsys, str(empty))
    assert lines == [f"Dumping {empty}", f"{empty} is empty."]
