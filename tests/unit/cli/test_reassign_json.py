"""The JSON files of reassign-partitions and leader-election, and errors as Kafka's
tools print them (no broker needed)."""

from __future__ import annotations

import pytest

from strom.cli.common import CliError
from strom.cli.kafka_errors import exception_class, exception_message, exception_text
from strom.cli.reassign_json import (
    format_reassignment,
    parse_broker_list,
    parse_election,
    parse_execute,
    parse_reassignment,
    parse_topics,
)
from strom.client.errors import error_for
from strom.common.types import TopicPartition
from strom.protocol.errors import ErrorCode, KafkaError

T0, T1 = TopicPartition("t", 0), TopicPartition("t", 1)


def test_format_is_kafkas_compact_sorted_json() -> None:
    text = format_reassignment({T1: [2, 1], T0: [0, 1], TopicPartition("a", 3): [4]})
    assert text == (
        '{"version":1,"partitions":['
        '{"topic":"a","partition":3,"replicas":[4],"log_dirs":["any"]},'
        '{"topic":"t","partition":0,"replicas":[0,1],"log_dirs":["any","any"]},'
        '{"topic":"t","partition":1,"replicas":[2,1],"log_dirs":["any","any"]}]}'
    )
    assert parse_execute(text)[T1] == [2, 1]


def test_reassignment_file_defaults_and_log_dirs() -> None:
    parts, dirs = parse_reassignment(
        '{"partitions":[{"topic":"t","partition":0,"replicas":[1,2],"log_dirs":["any","/data/b"]}]}'
    )
    assert parts == [(T0, [1, 2])]
    assert dirs == {(T0, 2): "/data/b"}
    with pytest.raises(CliError, match="does not move replicas between log directories"):
        parse_execute(
            '{"partitions":[{"topic":"t","partition":0,"replicas":[1],"log_dirs":["/d"]}]}'
        )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"version":1,"partitions":[]}', "Partition reassignment list cannot be empty"),
        (
            '{"partitions":[{"topic":"t","partition":0,"replicas":[]}]}',
            "Partition replica list cannot be empty",
        ),
        (
            '{"partitions":[{"topic":"t","partition":0,"replicas":[1]},'
            '{"topic":"t","partition":0,"replicas":[2]}]}',
            "Partition reassignment contains duplicate topic partitions: t-0",
        ),
        (
            '{"partitions":[{"topic":"t","partition":0,"replicas":[1,2,1]},'
            '{"topic":"t","partition":1,"replicas":[3,3]}]}',
            "Partition replica lists may not contain duplicate entries: t-0 contains multiple "
            "entries for 1. t-1 contains multiple entries for 3",
        ),
        (
            '{"partitions":[{"topic":"t","partition":0,"replicas":[1],"log_dirs":[]}]}',
            "Size of replicas list [1] is different from size of log dirs list [] for "
            "partition t-0",
        ),
        ('{"version":2,"partitions":[]}', "Not supported version field value 2"),
        ('{"partitions":[{"partition":0,"replicas":[1]}]}', "No such field exists: `topic`"),
        ("[1", "The input string is not a valid JSON"),
    ],
)
def test_execute_file_checks(text: str, message: str) -> None:
    with pytest.raises(CliError) as refused:
        parse_execute(text)
    assert str(refused.value).startswith(message)


def test_topics_broker_list_and_election_files() -> None:
    assert parse_topics('{"topics":[{"topic":"a"},{"topic":"b"}],"version":1}') == ["a", "b"]
    assert parse_broker_list("0,1,2") == [0, 1, 2]
    with pytest.raises(CliError, match=r"^Broker list contains duplicate entries: \[1\]$"):
        parse_broker_list("1,2,1")
    with pytest.raises(CliError, match=r'^For input string: "x"$'):
        parse_broker_list("1,x")
    assert parse_election('{"partitions":[{"topic":"t","partition":1}]}') == {T1}
    with pytest.raises(CliError, match=r"^Replica election data contains duplicate partitions: "):
        parse_election('{"partitions":[{"topic":"t","partition":1},{"topic":"t","partition":1}]}')
    with pytest.raises(CliError, match='missing "partitions" field'):
        parse_election("{}")


def test_errors_as_kafkas_exceptions() -> None:
    with_message = error_for(ErrorCode.PREFERRED_LEADER_NOT_AVAILABLE, "partition t-0", "gone")
    assert with_message is not None
    assert exception_text(with_message) == (
        "org.apache.kafka.common.errors.PreferredLeaderNotAvailableException: gone"
    )
    default = error_for(ErrorCode.NO_REASSIGNMENT_IN_PROGRESS, "partition t-0")
    assert default is not None
    assert exception_message(default) == "No partition reassignment is in progress."
    assert exception_class(ErrorCode.CLUSTER_AUTHORIZATION_FAILED).endswith(
        ".ClusterAuthorizationException"
    )
    own = KafkaError(ErrorCode.NOT_CONTROLLER, "ElectLeaders: no controller answered")
    assert exception_message(own) == "ElectLeaders: no controller answered"
