"""The consumer group records of ``__consumer_offsets`` (KIP-848): keys and values round
trip, their bytes follow Kafka's schemas, tags of newer Kafka versions are skipped, and
``strom dump-log --offsets-decoder`` prints them as Kafka's JSON."""

from __future__ import annotations

from pathlib import Path

import pytest

from strom.cli.main import main
from strom.protocol import consumer_group_records as cg
from strom.protocol.errors import DecodeError
from strom.protocol.group_records import decode_key
from strom.protocol.records import build_batch

T = bytes(range(16))
VALUES: list[cg.ConsumerGroupValue] = [
    cg.GroupEpochValue(7),
    cg.PartitionMetadataValue((cg.TopicMetadataValue(T, "t", 3, ((0, ("r1", "r2")),)),)),
    cg.MemberMetadataValue("i", "r", "c", "/h", ("a", "b"), None, 300_000, "range"),
    cg.MemberMetadataValue(
        None,
        None,
        "c",
        "/h",
        (),
        "x.*",
        -1,
        None,
        cg.ClassicMemberMetadata(45_000, (("range", b"\x00\x01"),)),
    ),
    cg.AssignmentEpochValue(7),
    cg.TargetAssignmentValue(((T, (0, 2)),)),
    cg.CurrentAssignmentValue(7, 6, 1, ((T, (0,)),), ((T, (2,)),)),
    cg.RegularExpressionValue(("t",), 5, 6),
]
TYPES = [3, 4, 5, 5, 6, 7, 8, 16]


@pytest.mark.parametrize(("record_type", "value"), list(zip(TYPES, VALUES, strict=True)))
def test_values_round_trip(record_type: int, value: cg.ConsumerGroupValue) -> None:
    assert cg.decode_value(record_type, cg.encode_value(value)) == value


def test_bytes_follow_kafkas_layout() -> None:
    assert cg.encode_value(cg.GroupEpochValue(7)) == b"\x00\x00\x00\x00\x00\x07\x00"
    key = cg.ConsumerGroupKey(cg.TARGET_ASSIGNMENT_MEMBER, "g", "m")
    assert cg.encode_key(key) == b"\x00\x07\x00\x01g\x00\x01m"
    assert decode_key(cg.encode_key(key)) == key
    regex = cg.ConsumerGroupKey(cg.REGULAR_EXPRESSION, "g", "a.*")
    assert decode_key(cg.encode_key(regex)) == regex
    # a tagged field Kafka 4.1 adds (MetadataHash, tag 0) is skipped
    with_tag = b"\x00\x00\x00\x00\x00\x07\x01\x00\x08" + bytes(8)
    assert cg.decode_value(cg.GROUP_METADATA, with_tag) == cg.GroupEpochValue(7)
    with pytest.raises(DecodeError):
        cg.decode_value(cg.GROUP_METADATA, b"\x00\x01\x00\x00\x00\x07\x00")
    with pytest.raises(DecodeError):
        cg.decode_value(cg.CURRENT_MEMBER_ASSIGNMENT, b"\x00\x00\x00")


def test_dump_log_prints_consumer_group_records(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = [
        (cg.encode_key(cg.ConsumerGroupKey(3, "g")), cg.encode_value(VALUES[0]), (), 0),
        (cg.encode_key(cg.ConsumerGroupKey(8, "g", "m")), cg.encode_value(VALUES[6]), (), 0),
        (cg.encode_key(cg.ConsumerGroupKey(5, "g", "m")), None, (), 0),
    ]
    segment = tmp_path / "00000000000000000000.log"
    segment.write_bytes(build_batch(records))
    assert main(["dump-log", "--offsets-decoder", "--files", str(segment)]) == 0
    lines = [ln.split(" headerKeys: [] ", 1)[1] for ln in capsys.readouterr().out.splitlines()
             if ln.startswith("| ")]  # fmt: skip
    tid = "AAECAwQFBgcICQoLDA0ODw"
    assert lines == [
        'key: {"type":"3","data":{"groupId":"g"}} payload: {"version":"0","data":{"epoch":7}}',
        'key: {"type":"8","data":{"groupId":"g","memberId":"m"}} payload: {"version":"0",'
        '"data":{"memberEpoch":7,"previousMemberEpoch":6,"state":1,"assignedPartitions":'
        f'[{{"topicId":"{tid}","partitions":[0]}}],"partitionsPendingRevocation":'
        f'[{{"topicId":"{tid}","partitions":[2]}}]}}}}',
        'key: {"type":"5","data":{"groupId":"g","memberId":"m"}} payload: <DELETE>',
    ]
