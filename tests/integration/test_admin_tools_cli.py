"""get-offsets, delete-records, log-dirs and broker-api-versions against a live
broker, compared with the output of Kafka's scripts."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from strom.client.blocking import Producer
from strom.testing.broker import BrokerProcess
from tests.integration.cli_helpers import create, new_topic, strom

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def topic(broker: BrokerProcess) -> str:
    """Three partitions holding 4, 2 and 0 records."""
    name = new_topic("tools")
    create(broker.bootstrap, name, 3)
    with Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0}) as p:
        for partition, count in ((0, 4), (1, 2)):
            for i in range(count):
                p.send(name, b"v%d" % i, partition=partition, timestamp=1_700_000_000_000 + i)
        p.flush()
    return name


def test_get_offsets_prints_topic_partition_offset(broker: BrokerProcess, topic: str) -> None:
    b = broker.bootstrap
    latest = strom("get-offsets", "--bootstrap-server", b, "--topic", topic)
    assert latest.returncode == 0, latest.stderr
    assert latest.stdout.splitlines() == [f"{topic}:0:4", f"{topic}:1:2", f"{topic}:2:0"]
    earliest = strom("get-offsets", "--bootstrap-server", b, "--topic", topic, "--time", "-2")
    assert earliest.stdout.splitlines() == [f"{topic}:0:0", f"{topic}:1:0", f"{topic}:2:0"]
    at = strom(
        "get-offsets",
        "--bootstrap-server",
        b,
        "--topic-partitions",
        f"{topic}:0-2",
        "--time",
        "1700000000001",
    )
    # the first record at or after the time; partition 2 is outside the range 0-2
    assert at.stdout.splitlines() == [f"{topic}:0:1", f"{topic}:1:1"]
    one = strom(
        "get-offsets",
        "--bootstrap-server",
        b,
        "--topic",
        topic,
        "--partitions",
        "1",
        "--time",
        "max-timestamp",
    )
    assert one.stdout.splitlines() == [f"{topic}:1:1"]
    none = strom("get-offsets", "--bootstrap-server", b, "--topic", "no-such-topic-.*")
    assert none.returncode == 1
    assert (
        none.stderr.strip()
        == "Error: Could not match any topic-partitions with the specified filters"
    )
    bad = strom("get-offsets", "--bootstrap-server", b, "--time", "yesterday")
    assert bad.stderr.startswith(
        "Error: Malformed time argument yesterday. Please use -1 or latest"
    )


def test_delete_records_with_kafkas_json_file(broker: BrokerProcess, tmp_path: Path) -> None:
    name = new_topic("delete")
    create(broker.bootstrap, name, 1)
    with Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0}) as p:
        for _ in range(5):
            p.send(name, b"x", partition=0)
        p.flush()
    offsets = tmp_path / "offsets.json"
    offsets.write_text(
        json.dumps(
            {
                "partitions": [
                    {"topic": name, "partition": 0, "offset": 3},
                    {"topic": name, "partition": 9, "offset": 1},
                ],
                "version": 1,
            }
        )
    )
    r = strom(
        "delete-records", "--bootstrap-server", broker.bootstrap, "--offset-json-file", str(offsets)
    )
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[:3] == [
        "Executing records delete operation",
        "Records delete operation completed:",
        f"partition: {name}-0\tlow_watermark: 3",
    ]
    assert re.fullmatch(rf"partition: {name}-9\terror: .+", lines[3])
    earliest = strom(
        "get-offsets", "--bootstrap-server", broker.bootstrap, "--topic", name, "--time", "earliest"
    )
    assert earliest.stdout.splitlines() == [f"{name}:0:3"]

    offsets.write_text(
        json.dumps({"partitions": [{"topic": "a", "partition": 0, "offset": o} for o in (1, 2)]})
    )
    dup = strom(
        "delete-records", "--bootstrap-server", broker.bootstrap, "--offset-json-file", str(offsets)
    )
    assert dup.returncode == 1
    assert dup.stderr.strip() == "Error: Offset json file contains duplicate topic partitions: a-0"
    offsets.write_text('{"version": 2, "partitions": []}')
    v2 = strom(
        "delete-records", "--bootstrap-server", broker.bootstrap, "--offset-json-file", str(offsets)
    )
    assert v2.stderr.strip() == "Error: Not supported version field value 2"


def test_log_dirs_describe(broker: BrokerProcess, topic: str) -> None:
    r = strom(
        "log-dirs", "--bootstrap-server", broker.bootstrap, "--describe", "--topic-list", topic
    )
    assert r.returncode == 0, r.stderr
    querying, received, line = r.stdout.splitlines()
    assert querying == "Querying brokers for log directories information"
    assert re.fullmatch(r"Received log directory information from brokers \d+", received)
    assert line.startswith('{"brokers":[{"broker":') and line.endswith('],"version":1}')
    data = json.loads(line)
    (entry,) = data["brokers"]
    (log_dir,) = entry["logDirs"]
    assert list(log_dir) == ["partitions", "error", "logDir"]
    assert log_dir["error"] is None
    assert [p["partition"] for p in log_dir["partitions"]] == [f"{topic}-{i}" for i in range(3)]
    assert list(log_dir["partitions"][0]) == ["partition", "size", "offsetLag", "isFuture"]
    assert log_dir["partitions"][0]["size"] > log_dir["partitions"][2]["size"] == 0
    missing = strom(
        "log-dirs", "--bootstrap-server", broker.bootstrap, "--describe", "--broker-list", "77"
    )
    assert missing.returncode == 1
    assert (
        "The given brokers do not exist from --broker-list: 77. Current existent brokers: "
        in missing.stderr
    )


def test_broker_api_versions(broker: BrokerProcess) -> None:
    r = strom("broker-api-versions", "--bootstrap-server", broker.bootstrap)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert re.fullmatch(
        rf"{re.escape(broker.bootstrap)} \(id: \d+ rack: null isFenced: false\) -> \(", lines[0]
    )
    assert lines[-1] == ")"
    body = lines[1:-1]
    assert all(line.startswith("\t") for line in body)
    assert all(line.endswith(",") for line in body[:-1]) and not body[-1].endswith(",")
    assert re.fullmatch(r"\tProduce\(0\): 0 to 11 \[usable: 11\],", body[0])
    assert "\tApiVersions(18): 0 to 4 [usable: 4]," in body
    assert "\tCreateDelegationToken(38): UNSUPPORTED," in body
    keys = [int(re.search(r"\((\d+)\):", line).group(1)) for line in body]  # type: ignore[union-attr]
    assert keys == sorted(keys)
