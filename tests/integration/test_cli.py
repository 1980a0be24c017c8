"""The ``strom`` command against a live broker (and dump-log against a file)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from strom.protocol.records import build_batch, build_control_batch
from strom.testing.broker import BrokerFactory, BrokerProcess
from tests.integration.cli_helpers import create, new_topic, strom
from tests.integration.test_client_support import lacks

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def bootstrap(broker: BrokerProcess) -> str:
    """The module's broker (tests/conftest.py) as HOST:PORT."""
    return broker.bootstrap


def test_topics_lifecycle(bootstrap: str) -> None:
    topic = new_topic()
    create(bootstrap, topic, 3, "--config", "retention.ms=3600000")
    listed = strom("topics", "--bootstrap-server", bootstrap, "--list")
    assert listed.returncode == 0 and topic in listed.stdout.splitlines()

    again = strom("topics", "--bootstrap-server", bootstrap, "--create", "--topic", topic)
    assert again.returncode == 1
    assert again.stderr.strip() == f"Error: Topic '{topic}' already exists."
    assert "Traceback" not in again.stderr
    quiet = strom(
        "topics", "--bootstrap-server", bootstrap, "--create", "--topic", topic, "--if-not-exists"
    )
    assert quiet.returncode == 0 and quiet.stdout == ""

    described = strom("topics", "--bootstrap-server", bootstrap, "--describe", "--topic", topic)
    assert described.returncode == 0, described.stderr
    lines = described.stdout.splitlines()
    assert re.fullmatch(
        rf"Topic: {topic}\tTopicId: [A-Za-z0-9_-]{{22}}\tPartitionCount: 3\t"
        r"ReplicationFactor: 1\tConfigs: .*",
        lines[0],
    )
    for i, line in enumerate(lines[1:]):
        assert re.fullmatch(
            rf"\tTopic: {topic}\tPartition: {i}\tLeader: (\d+)\tReplicas: \1\tIsr: \1"
            r"\tElr: \tLastKnownElr: ",
            line,
        ), line

    deleted = strom("topics", "--bootstrap-server", bootstrap, "--delete", "--topic", topic)
    assert deleted.returncode == 0, deleted.stderr
    missing = strom("topics", "--bootstrap-server", bootstrap, "--delete", "--topic", topic)
    assert missing.returncode == 1
    assert missing.stderr.strip() == f"Error: Topic '{topic}' does not exist as expected"
    tolerated = strom(
        "topics", "--bootstrap-server", bootstrap, "--delete", "--topic", topic, "--if-exists"
    )
    assert tolerated.returncode == 0


def test_alter_adds_partitions(bootstrap: str, broker_kind: str) -> None:
    topic = new_topic()
    create(bootstrap, topic, 1)
    r = strom(
        "topics", "--bootstrap-server", bootstrap, "--alter", "--topic", topic, "--partitions", "3"
    )
    if "no usable version of CREATE_PARTITIONS" in r.stderr:
        lacks(broker_kind, "lacks CreatePartitions")
    assert r.returncode == 0, r.stderr
    described = strom("topics", "--bootstrap-server", bootstrap, "--describe", "--topic", topic)
    assert "PartitionCount: 3" in described.stdout


def test_alter_config_points_at_strom_configs(bootstrap: str) -> None:
    topic = new_topic()
    create(bootstrap, topic, 1)
    r = strom(
        "topics", "--bootstrap-server", bootstrap, "--alter", "--topic", topic, "--config", "a=b"
    )
    assert r.returncode == 1
    assert r.stderr.strip() == (
        'Error: Option combination "[bootstrap-server],[config]" can\'t be used with option '
        '"[alter]" (To alter topic configurations, the strom configs tool can be used.)'
    )


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_produce_and_consume_keyed_lines(bootstrap: str, codec: str) -> None:
    topic = new_topic(codec)
    create(bootstrap, topic, 3)
    lines = [f"key{i}:value {i}" for i in range(20)]
    produced = strom(
        "console-producer",
        "--bootstrap-server",
        bootstrap,
        "--topic",
        topic,
        "--property",
        "parse.key=true",
        "--property",
        "key.separator=:",
        "--compression-codec",
        codec,
        stdin="\n".join(lines) + "\n",
    )
    assert produced.returncode == 0, produced.stderr
    consumed = strom(
        "console-consumer",
        "--bootstrap-server",
        bootstrap,
        "--topic",
        topic,
        "--from-beginning",
        "--max-messages",
        "20",
        "--property",
        "print.key=true",
        "--property",
        "print.partition=true",
        "--property",
        "print.offset=true",
        "--timeout-ms",
        "20000",
    )
    assert consumed.returncode == 0, consumed.stderr
    assert "Processed a total of 20 messages" in consumed.stderr
    rows = [line.split("\t") for line in consumed.stdout.splitlines()]
    assert sorted((k, v) for _, _, k, v in rows) == sorted(
        tuple(line.split(":", 1)) for line in lines
    )
    # Same key, same partition (murmur2); offsets increase per partition.
    by_key = {k: p for p, _, k, _ in rows}
    assert len(by_key) == 20
    for partition in {p for p, _, _, _ in rows}:
        offsets = [int(o.removeprefix("Offset:")) for p, o, _, _ in rows if p == partition]
        assert offsets == list(range(len(offsets)))


def test_consume_one_partition_from_an_offset(bootstrap: str) -> None:
    topic = new_topic()
    create(bootstrap, topic, 2)
    values = "".join(f"v{i}\n" for i in range(6))
    produced = strom(
        "console-producer",
        "--bootstrap-server",
        bootstrap,
        "--topic",
        topic,
        "--producer-property",
        "linger.ms=0",
        stdin=values,
    )
    assert produced.returncode == 0, produced.stderr
    out = strom(
        "console-consumer",
        "--bootstrap-server",
        bootstrap,
        "--topic",
        topic,
        "--partition",
        "0",
        "--offset",
        "1",
        "--timeout-ms",
        "3000",
        "--property",
        "print.offset=true",
        "--property",
        "print.timestamp=true",
    )
    assert out.returncode == 0, out.stderr
    rows = [line.split("\t") for line in out.stdout.splitlines()]
    # Round-robin without keys: partition 0 holds v0, v2, v4 at offsets 0, 1, 2.
    assert [(o, v) for _, o, v in rows] == [("Offset:1", "v2"), ("Offset:2", "v4")]
    assert all(re.fullmatch(r"CreateTime:\d{13}", ts) for ts, _, _ in rows)
    assert "Processed a total of 2 messages" in out.stderr


def test_consumer_timeout_without_records(bootstrap: str) -> None:
    topic = new_topic()
    create(bootstrap, topic, 1)
    out = strom(
        "console-consumer",
        "--bootstrap-server",
        bootstrap,
        "--topic",
        topic,
        "--timeout-ms",
        "1000",
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout == ""
    assert "Processed a total of 0 messages" in out.stderr


def test_producer_rejects_a_line_without_separator(bootstrap: str) -> None:
    topic = new_topic()
    create(bootstrap, topic, 1)
    r = strom(
        "console-producer",
        "--bootstrap-server",
        bootstrap,
        "--topic",
        topic,
        "--property",
        "parse.key=true",
        stdin="no separator here\n",
    )
    assert r.returncode == 1
    assert r.stderr.strip() == "Error: No key separator found on line number 1: 'no separator here'"


def _first_stderr_line_and_rest(argv: list[str], stdin: str = "") -> tuple[str, float, str, int]:
    """Run ``strom argv``; the first stderr line, the seconds until it came, the rest of
    stderr and the exit code."""
    start = time.monotonic()
    with subprocess.Popen(
        [sys.executable, "-m", "strom", *argv],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    ) as proc:
        assert proc.stdin is not None and proc.stderr is not None
        proc.stdin.write(stdin)
        proc.stdin.close()
        first = proc.stderr.readline()
        seconds = time.monotonic() - start
        rest = proc.stderr.read()
        code = proc.wait(timeout=60)
    return first, seconds, rest, code


WARN = r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}\] WARN "


def test_unreachable_bootstrap_says_what_it_waits_for_then_fails(tmp_path: Path) -> None:
    props = tmp_path / "client.properties"
    props.write_text("request.timeout.ms = \\\n    6000\n")
    argv = ["topics", "--bootstrap-server", "127.0.0.1:1", "--list", "--command-config"]
    first, seconds, rest, code = _first_stderr_line_and_rest([*argv, str(props)])
    assert re.fullmatch(
        WARN + r"\[clientId=strom\] Connection to the bootstrap servers 127\.0\.0\.1:1 could "
        r"not be established \(last error: .*\)\. Brokers may not be available; retrying "
        r"until request\.timeout\.ms \(6000 ms\) has passed\. \(strom\.client\.aio\.client\)\n",
        first,
    ), first
    assert seconds < 4.5  # said after a second or so, long before the 6 s are over
    assert code == 1
    assert rest.splitlines()[-1].startswith(
        "Error: could not reach any of the bootstrap servers 127.0.0.1:1 within 6000 ms"
    )
    assert "Traceback" not in rest


def test_producer_to_a_missing_topic_says_so_then_fails_with_kafkas_message(
    broker_factory: BrokerFactory, require_strom: None
) -> None:
    b = broker_factory({"auto.create.topics.enable": "false"})
    topic = new_topic("missing")
    argv = ["console-producer", "--bootstrap-server", b.bootstrap, "--topic", topic]
    first, seconds, rest, code = _first_stderr_line_and_rest(
        [*argv, "--max-block-ms", "5000"], stdin="hello\n"
    )
    assert re.fullmatch(
        WARN + rf"\[Producer clientId=console-producer\] Error while fetching metadata: "
        rf"\{{{topic}=UNKNOWN_TOPIC_OR_PARTITION\}}; waiting up to max\.block\.ms \(5000 ms\) "
        r"for the topic to appear\. \(strom\.client\.aio\.producer\)\n",
        first,
    ), first
    assert seconds < 4
    assert code == 1
    assert rest.splitlines()[-1] == f"Error: Topic {topic} not present in metadata after 5000 ms."


def test_usage_errors_exit_1() -> None:
    r = strom("topics", "--list")
    assert r.returncode == 1
    assert r.stderr.startswith("Error: the following arguments are required: --bootstrap-server")
    r = strom("console-consumer", "--bootstrap-server", "x:1", "--topic", "t", "--offset", "5")
    assert r.returncode == 1
    assert r.stderr.strip() == "Error: The partition is required when offset is specified."


def test_dump_log(tmp_path: Path) -> None:
    segment = tmp_path / "00000000000000000000.log"
    first = build_batch(
        [
            (None, b"hello", (), 1_700_000_000_000),
            (b"k", b"world", [("h", b"1")], 1_700_000_000_005),
        ],
        base_offset=0,
    )
    marker = build_control_batch(5, 0, True, 3, 1_700_000_000_010, base_offset=2)
    third = build_batch([(None, b"zipped", (), 1_700_000_000_020)], base_offset=3, compression=1)
    segment.write_bytes(first + marker + third + third[:10])

    plain = strom("dump-log", str(segment))
    assert plain.returncode == 0, plain.stderr
    lines = plain.stdout.splitlines()
    assert lines[0] == f"Dumping {segment}"
    assert lines[1] == "Log starting offset: 0"
    assert lines[2].startswith("baseOffset: 0 lastOffset: 1 count: 2 baseSequence: -1 ")
    assert " position: 0 CreateTime: 1700000000005 size: " in lines[2]
    assert lines[2].endswith("isvalid: true")
    assert " magic: 2 compresscodec: none crc: " in lines[2]
    assert "isTransactional: true isControl: true" in lines[3]
    assert "compresscodec: gzip" in lines[4]
    assert lines[5] == f"Found 10 invalid bytes at the end of {segment.name}"

    data = strom("dump-log", str(segment), "--print-data-log")
    rows = [line for line in data.stdout.splitlines() if line.startswith("| ")]
    assert rows[0] == (
        "| offset: 0 CreateTime: 1700000000000 keySize: -1 valueSize: 5 sequence: -1 "
        "headerKeys: [] payload: hello"
    )
    assert rows[1] == (
        "| offset: 1 CreateTime: 1700000000005 keySize: 1 valueSize: 5 sequence: -1 "
        "headerKeys: [h] key: k payload: world"
    )
    assert rows[2].endswith("endTxnMarker: COMMIT coordinatorEpoch: 3")
    assert rows[3].endswith("payload: zipped")


def test_dump_log_missing_file(tmp_path: Path) -> None:
    r = strom("dump-log", str(tmp_path / "00000000000000000000.log"))
    assert r.returncode == 1 and r.stderr.startswith("Error: cannot read ")


@pytest.mark.parametrize(
    "argv",
    [
        ["topics", "--list"],
        ["console-producer", "--topic", "t"],
        ["console-consumer", "--topic", "t"],
        ["consumer-groups", "--list"],
        [
            "producer-perf-test",
            "--topic",
            "t",
            "--num-records",
            "1",
            "--record-size",
            "1",
            "--throughput",
            "-1",
        ],
        ["consumer-perf-test", "--topic", "t", "--messages", "1"],
        ["configs", "--describe", "--topic", "t"],
        ["get-offsets"],
        ["delete-records", "--offset-json-file", "OFFSETS"],
        ["log-dirs", "--describe"],
        ["broker-api-versions"],
        ["transactions", "list"],
    ],
    ids=lambda argv: argv[0],
)
def test_every_tool_takes_client_configs_from_command_config(
    tmp_path: Path, argv: list[str]
) -> None:
    """The --command-config file's request.timeout.ms (a Java properties file) is the
    timeout each tool's client gives up after."""
    props = tmp_path / "client.properties"
    props.write_text("# an unreachable broker, a short wait\nrequest.timeout.ms : 1500\n")
    offsets = tmp_path / "offsets.json"
    offsets.write_text('{"partitions": [{"topic": "t", "partition": 0, "offset": 1}]}')
    args = [str(offsets) if a == "OFFSETS" else a for a in argv]
    tool, rest = args[0], args[1:]
    if tool == "transactions":  # global options come before the subcommand
        args = [tool, "--bootstrap-server", "127.0.0.1:1", "--command-config", str(props), *rest]
    else:
        args = [*args, "--bootstrap-server", "127.0.0.1:1", "--command-config", str(props)]
    r = strom(*args, stdin="", timeout=30)
    assert r.returncode == 1, r.stdout
    assert r.stderr.splitlines()[-1].startswith(
        "Error: could not reach any of the bootstrap servers 127.0.0.1:1 within 1500 ms"
    ), r.stderr
