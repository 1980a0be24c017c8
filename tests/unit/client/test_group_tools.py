"""Pure parts of the consumer-groups tooling: reset plans, argument parsing,
assignment decoding, lag rows and Kafka's table layouts."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from strom.client.aio.group_admin import GroupAdminMixin
from strom.client.config import ClientConfig
from strom.client.group_tables import (
    assignment_string,
    delete_offsets_table,
    listing_table,
    members_table,
    offsets_table,
    reset_table,
    state_table,
)
from strom.client.group_tools import (
    ResetError,
    ResetKind,
    ResetSpec,
    parse_datetime_ms,
    parse_duration_ns,
    parse_topic_arg,
    plan_reset,
    timestamp_before,
)
from strom.client.group_types import (
    GroupDescription,
    GroupListing,
    MemberDescription,
    OffsetAndMetadata,
    PartitionLag,
    decode_assignment,
    lag_of,
    lag_rows,
)
from strom.client.metadata import BrokerMetadata
from strom.common.types import TopicPartition
from strom.protocol.api_versions import ApiKey
from strom.protocol.errors import DecodeError, ErrorCode, KafkaError
from strom.protocol.generated.consumer_protocol_assignment import ConsumerProtocolAssignment
from strom.protocol.generated.describe_groups import DescribeGroupsResponse
from strom.protocol.generated.find_coordinator import FindCoordinatorResponse
from strom.protocol.generated.offset_fetch import OffsetFetchResponse
from strom.protocol.wire import Writer

T0 = TopicPartition("t", 0)
T1 = TopicPartition("t", 1)
T2 = TopicPartition("t", 2)
STARTS = {T0: 10, T1: 0, T2: 5}
ENDS = {T0: 100, T1: 0, T2: 50}
NODE = BrokerMetadata(1, "127.0.0.1", 9092)


def _plan(spec: ResetSpec, **kw: object) -> dict[TopicPartition, int]:
    committed = kw.pop("committed", {})
    plan = plan_reset(
        [T0, T1, T2],
        spec,
        committed=committed,  # type: ignore[arg-type]
        log_start_offsets=STARTS,
        log_end_offsets=ENDS,
        timestamp_offsets=kw.pop("by_time", None),  # type: ignore[arg-type]
    )
    return plan.offsets


# -- reset plans ---------------------------------------------------------------


def test_reset_to_earliest_and_latest() -> None:
    assert _plan(ResetSpec(ResetKind.TO_EARLIEST)) == {T0: 10, T1: 0, T2: 5}
    assert _plan(ResetSpec(ResetKind.TO_LATEST)) == {T0: 100, T1: 0, T2: 50}


def test_reset_to_offset_is_clamped_into_the_log_with_warnings() -> None:
    plan = plan_reset(
        [T0, T1, T2],
        ResetSpec(ResetKind.TO_OFFSET, 20),
        committed={},
        log_start_offsets=STARTS,
        log_end_offsets=ENDS,
    )
    assert plan.offsets == {T0: 20, T1: 0, T2: 20}
    assert plan.warnings == [
        "New offset (20) is higher than latest offset for topic partition t-1. "
        "Value will be set to 0."
    ]
    low = plan_reset(
        [T0],
        ResetSpec(ResetKind.TO_OFFSET, 3),
        committed={},
        log_start_offsets=STARTS,
        log_end_offsets=ENDS,
    )
    assert low.offsets == {T0: 10}
    assert (
        "lower than earliest offset for topic partition t-0. Value will be set to 10."
        in (low.warnings[0])
    )


def test_shift_by_moves_from_the_committed_offset_and_clamps() -> None:
    committed = {T0: OffsetAndMetadata(40), T1: OffsetAndMetadata(0), T2: OffsetAndMetadata(48)}
    assert _plan(ResetSpec(ResetKind.SHIFT_BY, 5), committed=committed) == {
        T0: 45,
        T1: 0,
        T2: 50,
    }
    assert _plan(ResetSpec(ResetKind.SHIFT_BY, -35), committed=committed) == {
        T0: 10,
        T1: 0,
        T2: 13,
    }


def test_shift_by_without_a_commit_is_an_error() -> None:
    with pytest.raises(ResetError, match="Cannot shift offset for partition t-0 since there"):
        _plan(ResetSpec(ResetKind.SHIFT_BY, 1), committed={T1: OffsetAndMetadata(0)})


def test_to_current_keeps_commits_and_uses_the_end_otherwise() -> None:
    committed = {T0: OffsetAndMetadata(42)}
    assert _plan(ResetSpec(ResetKind.TO_CURRENT), committed=committed) == {
        T0: 42,
        T1: 0,
        T2: 50,
    }


def test_by_timestamp_falls_back_to_the_end_when_nothing_is_that_new() -> None:
    plan = plan_reset(
        [T0, T2],
        ResetSpec(ResetKind.TO_DATETIME, 1_700_000_000_000),
        committed={},
        log_start_offsets=STARTS,
        log_end_offsets=ENDS,
        timestamp_offsets={T0: 33, T2: -1},
    )
    assert plan.offsets == {T0: 33, T2: 50}
    assert plan.warnings == [
        "Warn: Partition 2 from topic t is empty. Falling back to latest known offset."
    ]


def test_missing_log_offsets_are_reported() -> None:
    with pytest.raises(ResetError, match="t-9"):
        plan_reset(
            [TopicPartition("t", 9)],
            ResetSpec(ResetKind.TO_EARLIEST),
            committed={},
            log_start_offsets=STARTS,
            log_end_offsets=ENDS,
        )


# -- arguments -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2023-11-14T22:13:20.000", 1_700_000_000_000),
        ("2023-11-14T22:13:20.123Z", 1_700_000_000_123),
        ("2023-11-14T23:13:20.000+01:00", 1_700_000_000_000),
        ("2023-11-14T23:13:20.000+0100", 1_700_000_000_000),
        ("2023-11-14T21:13:20.000-01", 1_700_000_000_000),
        ("1970-01-01T00:00:00.5", 5),  # SimpleDateFormat reads the digits as milliseconds
    ],
)
def test_parse_datetime(text: str, expected: int) -> None:
    assert parse_datetime_ms(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "2023-11-14 22:13:20.000",
        "2023-11-14T22:13:20",
        "2023-13-01T00:00:00.000",
        "2023-02-30T00:00:00.000",
        "2023-11-14T22:13:20.1234",
        "2023-11-14T24:00:00.000",
    ],
)
def test_parse_datetime_rejects(text: str) -> None:
    with pytest.raises(ResetError):
        parse_datetime_ms(text)


def test_parse_datetime_without_t_has_kafkas_message() -> None:
    with pytest.raises(ResetError, match="does not contain a 'T' according to ISO8601"):
        parse_datetime_ms("2023-11-14")


S = 1_000_000_000


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("PT1H", 3600 * S),
        ("P1DT2H3M4S", (86_400 + 7_200 + 180 + 4) * S),
        ("pt15m", 900 * S),
        ("PT0.5S", S // 2),
        ("PT-1.5S", -(3 * S) // 2),
        ("-PT10S", -10 * S),
        ("P2D", 2 * 86_400 * S),
        ("PT1H-30M", 1800 * S),
        ("PT1,25S", S + S // 4),
    ],
)
def test_parse_duration(text: str, ns: int) -> None:
    assert parse_duration_ns(text) == ns


@pytest.mark.parametrize("text", ["", "P", "PT", "1H", "P1H", "PT1D", "P1W", "PT1.S.S", "P1Y"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ResetError, match="cannot be parsed to a Duration"):
        parse_duration_ns(text)


def test_timestamp_before_floors_like_to_epoch_milli() -> None:
    assert timestamp_before(10_000, 3 * S) == 7_000
    assert timestamp_before(10_000, S // 2 + 1) == 9_499


def test_parse_topic_arg() -> None:
    assert parse_topic_arg("orders") == ("orders", None)
    assert parse_topic_arg("orders:0,2") == ("orders", [0, 2])
    with pytest.raises(ResetError, match="expected topic name and partitions"):
        parse_topic_arg("orders:")
    with pytest.raises(ResetError, match="expected topic name and partitions"):
        parse_topic_arg("a:b:1")
    with pytest.raises(ResetError, match="Invalid partition 'x'"):
        parse_topic_arg("orders:1,x")


# -- assignments and lag -------------------------------------------------------


def _assignment_bytes(version: int, parts: dict[str, list[int]]) -> bytes:
    w = Writer()
    w.int16(version)
    ConsumerProtocolAssignment(
        [ConsumerProtocolAssignment.TopicPartition(t, ps) for t, ps in parts.items()], None
    ).encode(w, min(version, 3))
    return w.getvalue()


def test_decode_assignment_all_versions_and_newer() -> None:
    for version in (0, 1, 3, 7):
        data = _assignment_bytes(version, {"a": [1, 0], "b": [2]})
        assert decode_assignment(data) == (
            TopicPartition("a", 1),
            TopicPartition("a", 0),
            TopicPartition("b", 2),
        )
    assert decode_assignment(b"") == ()
    with pytest.raises(DecodeError):
        decode_assignment(b"\x00\x00\x00\x00\x00\x05")


def test_lag_is_exact_and_unknown_without_a_commit() -> None:
    assert lag_of(7, 10) == 3
    assert lag_of(10, 10) == 0
    assert lag_of(None, 10) is None
    assert lag_of(-1, 10) is None
    assert lag_of(3, None) is None


def test_lag_rows_order_members_then_unowned_commits() -> None:
    a0, b0, b1 = TopicPartition("a", 0), TopicPartition("b", 0), TopicPartition("b", 1)
    small = MemberDescription("m-small", None, "c1", "/10.0.0.1", (a0,))
    big = MemberDescription("m-big", "static-1", "c2", "/10.0.0.2", (b1, b0))
    idle = MemberDescription("m-idle", None, "c3", "/10.0.0.3", ())
    d = GroupDescription("g", "Stable", "consumer", "range", (small, big, idle), NODE)
    committed = {
        b0: OffsetAndMetadata(5, "", 3),
        a0: OffsetAndMetadata(2),
        TopicPartition("z", 0): OffsetAndMetadata(9),
    }
    ends = {a0: 2, b0: 8, b1: 4, TopicPartition("z", 0): 10}
    rows = lag_rows(d, committed, ends)
    assert [(str(r.topic_partition), r.member_id) for r in rows] == [
        ("b-0", "m-big"),
        ("b-1", "m-big"),
        ("a-0", "m-small"),
        ("z-0", None),
    ]
    assert [(r.committed_offset, r.log_end_offset, r.lag) for r in rows] == [
        (5, 8, 3),
        (None, 4, None),
        (2, 2, 0),
        (9, 10, 1),
    ]
    assert rows[0].leader_epoch == 3 and rows[2].leader_epoch is None


# -- tables --------------------------------------------------------------------


def test_offsets_table_matches_kafkas_layout() -> None:
    rows = [
        PartitionLag(T0, 3, 10, 7, None, "consumer-1-abc", "/127.0.0.1", "consumer-1"),
        PartitionLag(T1, None, 4, None),
    ]
    text = offsets_table("my-group", rows)
    assert text == (
        "\n"
        "GROUP           TOPIC           PARTITION  CURRENT-OFFSET  LOG-END-OFFSET  LAG"
        "             CONSUMER-ID     HOST            CLIENT-ID\n"
        "my-group        t               0          3               10              7"
        "               consumer-1-abc  /127.0.0.1      consumer-1\n"
        "my-group        t               1          -               4               -"
        "               -               -               -\n"
    )


def test_offsets_table_widens_for_long_values_and_verbose_adds_leader_epoch() -> None:
    long_topic = TopicPartition("a-rather-long-topic-name", 0)
    member = "consumer-1-0123456789abcdef"
    rows = [PartitionLag(long_topic, 1, 2, 1, 5, member, "/1.2.3.4", "c")]
    lines = offsets_table("g", rows, verbose=True).splitlines()
    assert lines[0] == ""
    header, row = lines[1], lines[2]
    assert header.startswith("GROUP           TOPIC                    PARTITION  LEADER-EPOCH")
    assert row.index(member) == header.index("CONSUMER-ID")
    assert row.index("/1.2.3.4") == header.index("HOST")
    assert row.split() == ["g", long_topic.topic, "0", "5", "1", "2", "1", member, "/1.2.3.4", "c"]


def test_members_table() -> None:
    a = MemberDescription("consumer-1-x", None, "consumer-1", "/127.0.0.1", (T1, T0))
    b = MemberDescription("consumer-2-y", None, "consumer-2", "/127.0.0.1", ())
    d = GroupDescription("g", "Stable", "consumer", "range", (a, b), NODE)
    assert members_table(d) == (
        "\n"
        "GROUP           CONSUMER-ID     HOST            CLIENT-ID       #PARTITIONS     \n"
        "g               consumer-1-x    /127.0.0.1      consumer-1      2               \n"
        "g               consumer-2-y    /127.0.0.1      consumer-2      0               \n"
    )
    verbose = members_table(d, verbose=True).splitlines()
    assert verbose[1].endswith(
        "#PARTITIONS     CURRENT-EPOCH   CURRENT-ASSIGNMENT   TARGET-EPOCH    TARGET-ASSIGNMENT   "
    )
    assert "-               t:0,1                -               -" in verbose[2]


def test_members_table_shows_instance_ids_when_any_member_has_one() -> None:
    a = MemberDescription("m", "static-1", "c", "/h", ())
    d = GroupDescription("g", "Stable", "consumer", "range", (a,), NODE)
    header = members_table(d).splitlines()[1]
    assert header.split() == [
        "GROUP",
        "CONSUMER-ID",
        "GROUP-INSTANCE-ID",
        "HOST",
        "CLIENT-ID",
        "#PARTITIONS",
    ]


def test_state_table() -> None:
    d = GroupDescription("g", "Empty", "consumer", "", (), NODE)
    assert state_table(d) == (
        "\n"
        "GROUP           COORDINATOR (ID)          ASSIGNMENT-STRATEGY  STATE"
        "                #MEMBERS\n"
        "g               127.0.0.1:9092  (1)       -                    Empty                0\n"
    )


def test_listing_reset_and_delete_offsets_tables() -> None:
    listings = [GroupListing("g1", "consumer", "Stable"), GroupListing("g2", "consumer", None)]
    assert listing_table(listings, include_state=True) == (
        "GROUP                     STATE               \n"
        "g1                        Stable              \n"
        "g2                        Unknown             \n"
    )
    assert reset_table({"g": {T1: 4, T0: 0}}) == (
        "\nGROUP           TOPIC           PARTITION  NEW-OFFSET\n"
        "g               t               0          0\n"
        "g               t               1          4\n"
    )
    assert reset_table({}) == "\n"
    statuses = {T0: "Successful", TopicPartition("gone", -1): "Error: x"}
    assert delete_offsets_table(statuses) == (
        "\nTOPIC           PARTITION  STATUS         \n"
        "gone            -          Error: x       \n"
        "t               0          Successful     \n"
    )


def test_assignment_string() -> None:
    tps = [TopicPartition("b", 2), TopicPartition("a", 1), TopicPartition("a", 0)]
    assert assignment_string(tps) == "a:0,1;b:2"
    assert assignment_string([]) == "-"


# -- the admin's coordinator handling, over a fake connection ------------------


class FakeConn:
    """Answers requests from a script of callables; records what was sent."""

    def __init__(self, versions: dict[int, int], answer: Any) -> None:
        self.versions = versions
        self.host, self.port = "127.0.0.1", 9092
        self.sent: list[Any] = []
        self._answer = answer

    async def send(self, request: Any) -> Any:
        self.sent.append(request)
        return self._answer(request)


class FakeClient:
    def __init__(self, conn: FakeConn) -> None:
        self.config = ClientConfig.from_dict({"retry.backoff.ms": 1})
        self.conn = conn

    async def any_connection(self) -> FakeConn:
        return self.conn

    async def connect(self, host: str, port: int) -> FakeConn:
        return self.conn


class FakeAdmin(GroupAdminMixin):
    def __init__(self, conn: FakeConn) -> None:
        self.client = FakeClient(conn)  # type: ignore[assignment]
        self._timeout_ms = 2000
        self._coordinators = {}


_FC = FindCoordinatorResponse


def _coords(req: Any, code: int = 0, node_id: int = 1) -> FindCoordinatorResponse:
    return _FC(
        coordinators=[_FC.Coordinator(k, node_id, "h", 1, code) for k in req.coordinator_keys]
    )


def test_find_coordinators_batches_with_v4_and_retries_unavailable() -> None:
    calls = {"n": 0}

    def answer(req: Any) -> Any:
        calls["n"] += 1
        code = ErrorCode.COORDINATOR_NOT_AVAILABLE if calls["n"] == 1 else ErrorCode.NONE
        return _FC(
            coordinators=[_FC.Coordinator(k, 3, "h", 1, code, None) for k in req.coordinator_keys]
        )

    conn = FakeConn({ApiKey.FIND_COORDINATOR: 4}, answer)
    found = asyncio.run(FakeAdmin(conn).find_coordinators(["a", "b"]))
    assert found == {"a": BrokerMetadata(3, "h", 1), "b": BrokerMetadata(3, "h", 1)}
    assert [r.coordinator_keys for r in conn.sent] == [["a", "b"], ["a", "b"]]


def test_find_coordinator_one_key_per_request_before_v4() -> None:
    conn = FakeConn({ApiKey.FIND_COORDINATOR: 3}, lambda req: _FC(node_id=1, host="x", port=2))
    found = asyncio.run(FakeAdmin(conn).find_coordinators(["a", "b"]))
    assert set(found) == {"a", "b"}
    assert [r.key for r in conn.sent] == ["a", "b"]


def test_group_requests_follow_a_moved_coordinator_and_unknown_groups_are_dead() -> None:
    describes = {"n": 0}

    def answer(req: Any) -> Any:
        if hasattr(req, "coordinator_keys"):
            return _coords(req)
        describes["n"] += 1
        code = ErrorCode.NOT_COORDINATOR if describes["n"] == 1 else ErrorCode.GROUP_ID_NOT_FOUND
        return DescribeGroupsResponse(
            groups=[DescribeGroupsResponse.DescribedGroup(code, g) for g in req.groups]
        )

    conn = FakeConn({ApiKey.FIND_COORDINATOR: 4, ApiKey.DESCRIBE_GROUPS: 5}, answer)
    result = asyncio.run(FakeAdmin(conn).describe_groups(["g"]))
    assert result["g"].state == "Dead" and not result["g"].exists
    kinds = [type(r).__name__ for r in conn.sent]
    assert kinds == [
        "FindCoordinatorRequest",
        "DescribeGroupsRequest",
        "FindCoordinatorRequest",
        "DescribeGroupsRequest",
    ]


def test_offset_fetch_v8_batches_groups_and_drops_missing_commits() -> None:
    R = OffsetFetchResponse

    def answer(req: Any) -> Any:
        if hasattr(req, "coordinator_keys"):
            return _coords(req)
        parts = [
            R.OffsetFetchResponsePartitions(0, 5, 2, "meta"),
            R.OffsetFetchResponsePartitions(1, -1),
        ]
        topics = [R.OffsetFetchResponseTopics("t", parts)]
        return R(groups=[R.OffsetFetchResponseGroup(g.group_id, topics) for g in req.groups])

    conn = FakeConn({ApiKey.FIND_COORDINATOR: 4, ApiKey.OFFSET_FETCH: 8}, answer)
    out = asyncio.run(FakeAdmin(conn).list_groups_offsets({"a": None, "b": [T0]}))
    assert out == {
        "a": {T0: OffsetAndMetadata(5, "meta", 2)},
        "b": {T0: OffsetAndMetadata(5, "meta", 2)},
    }
    fetch = conn.sent[-1]
    assert (fetch.groups[0].group_id, fetch.groups[0].topics) == ("a", None)
    assert fetch.groups[1].topics[0].partition_indexes == [0]


def test_coordinator_errors_give_up_after_the_timeout() -> None:
    conn = FakeConn(
        {ApiKey.FIND_COORDINATOR: 4},
        lambda req: _FC(
            coordinators=[_FC.Coordinator(k, error_code=15) for k in req.coordinator_keys]
        ),
    )
    admin = FakeAdmin(conn)
    admin._timeout_ms = 20
    with pytest.raises(KafkaError) as info:
        asyncio.run(admin.find_coordinator("g"))
    assert info.value.code == ErrorCode.COORDINATOR_NOT_AVAILABLE


def test_reset_plan_csv_round_trip_and_errors() -> None:
    from strom.client.group_tools import export_reset_csv, parse_reset_csv

    tp0, tp1 = TopicPartition("t", 0), TopicPartition("t", 1)
    one = export_reset_csv({"g": {tp1: 7, tp0: 3}}, single_group=True)
    assert one == "t,0,3\nt,1,7\n"
    assert parse_reset_csv(one, "g") == {"g": {tp0: 3, tp1: 7}}
    many = export_reset_csv({"g": {tp0: 3}, "h": {tp1: 1}}, single_group=False)
    assert many == "g,t,0,3\nh,t,1,1\n"
    assert parse_reset_csv(many, None) == {"g": {tp0: 3}, "h": {tp1: 1}}
    assert parse_reset_csv(many, "g") == {"g": {tp0: 3}, "h": {tp1: 1}}  # four fields: groups
    for bad in ["t,x,1\n", "t,0\n", "g,t,0,1,2\n"]:
        with pytest.raises(ResetError, match="Invalid reset plan line 1"):
            parse_reset_csv(bad, "g")
