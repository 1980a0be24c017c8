"""console-producer and console-consumer against a live broker: Kafka's formatters,
deserializers, --include, the prompt, --batch-size, and the count on Ctrl-C."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from strom.client.blocking import Producer
from strom.testing.broker import BrokerProcess
from tests.integration.cli_helpers import create, new_topic, strom

pytestmark = pytest.mark.integration
STROM = [sys.executable, "-m", "strom"]


def consume(
    bootstrap: str, topic: str, count: int, *extra: str
) -> subprocess.CompletedProcess[str]:
    return strom(
        "console-consumer",
        "--bootstrap-server",
        bootstrap,
        "--topic",
        topic,
        "--from-beginning",
        "--max-messages",
        str(count),
        "--timeout-ms",
        "15000",
        *extra,
    )


def produce_binary(bootstrap: str, topic: str, records: list[tuple[bytes | None, bytes]]) -> None:
    with Producer({"bootstrap.servers": bootstrap, "linger.ms": 0}) as p:
        for key, value in records:
            p.send(topic, value, key=key, partition=0).result(30)


def test_kafka_deserializers_print_what_java_prints(broker: BrokerProcess) -> None:
    topic = new_topic("deser")
    create(broker.bootstrap, topic)
    produce_binary(
        broker.bootstrap,
        topic,
        [
            (struct.pack(">i", 42), struct.pack(">d", 3.5)),
            (struct.pack(">i", -7), struct.pack(">d", 1.5e10)),
            (None, struct.pack(">d", 0.001)),
        ],
    )
    r = consume(
        broker.bootstrap,
        topic,
        3,
        "--key-deserializer",
        "org.apache.kafka.common.serialization.IntegerDeserializer",
        "--value-deserializer",
        "DoubleDeserializer",
        "--property",
        "print.key=true",
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["42\t3.5", "-7\t1.5E10", "null\t0.001"]
    assert r.stderr.splitlines()[-1] == "Processed a total of 3 messages"


def test_a_deserializer_error_stops_unless_skipped(broker: BrokerProcess) -> None:
    topic = new_topic("deser-bad")
    create(broker.bootstrap, topic)
    produce_binary(
        broker.bootstrap, topic, [(None, struct.pack(">q", 5)), (None, b"abc"), (None, b"\0" * 8)]
    )
    args = ("--value-deserializer", "LongDeserializer")
    r = consume(broker.bootstrap, topic, 3, *args)
    assert r.returncode == 1
    assert r.stdout == "5\n"
    assert r.stderr.splitlines()[-2:] == [
        "Processed a total of 1 messages",
        "Error: Error processing message, terminating consumer process: "
        "Size of data received by LongDeserializer is not 8",
    ]
    r = consume(broker.bootstrap, topic, 3, *args, "--skip-message-on-error")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["5", "0"]
    assert "Error processing message, skipping this message: Size of data" in r.stderr
    assert r.stderr.splitlines()[-1] == "Processed a total of 3 messages"


@pytest.mark.parametrize(
    ("formatter", "expected"),
    [
        ("org.apache.kafka.tools.consumer.NoOpMessageFormatter", ""),
        ("kafka.tools.LoggingMessageFormatter", "k\tv\n"),
        ("DefaultMessageFormatter", "k\tv\n"),
    ],
)
def test_formatters_by_kafkas_class_names(
    broker: BrokerProcess, formatter: str, expected: str
) -> None:
    topic = new_topic("fmt")
    create(broker.bootstrap, topic)
    produce_binary(broker.bootstrap, topic, [(b"k", b"v")])
    r = consume(
        broker.bootstrap, topic, 1, "--formatter", formatter, "--property", "print.key=true"
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout == expected
    assert r.stderr.splitlines()[-1] == "Processed a total of 1 messages"
    bad = consume(broker.bootstrap, topic, 1, "--formatter", "com.example.Fancy")
    assert bad.returncode == 1 and "Unknown formatter com.example.Fancy" in bad.stderr


def test_include_reads_every_matching_topic(broker: BrokerProcess) -> None:
    base = new_topic("incl")
    for suffix in ("a", "b", "other"):
        create(broker.bootstrap, f"{base}-{suffix}")
        produce_binary(broker.bootstrap, f"{base}-{suffix}", [(None, suffix.encode())])
    r = strom(
        "console-consumer",
        "--bootstrap-server",
        broker.bootstrap,
        "--include",
        f"{base}-a, {base}-b",  # Kafka's IncludeList: commas mean |, spaces dropped
        "--from-beginning",
        "--max-messages",
        "2",
        "--timeout-ms",
        "15000",
    )
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.splitlines()) == ["a", "b"]
    both = strom("console-consumer", "--bootstrap-server", "x:1", "--topic", "t", "--include", "t")
    assert both.returncode == 1 and "not allowed with argument" in both.stderr


def test_ctrl_c_still_prints_the_count(broker: BrokerProcess) -> None:
    topic = new_topic("ctrlc")
    create(broker.bootstrap, topic)
    produce_binary(broker.bootstrap, topic, [(None, b"one"), (None, b"two"), (None, b"three")])
    with subprocess.Popen(
        [
            *STROM,
            "console-consumer",
            "--bootstrap-server",
            broker.bootstrap,
            "--topic",
            topic,
            "--from-beginning",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        lines = [proc.stdout.readline() for _ in range(3)]
        assert lines == ["one\n", "two\n", "three\n"]
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=30)
        err = proc.stderr.read()
    assert code == 130
    assert err.splitlines()[-1] == "Processed a total of 3 messages"


def test_producer_prompts_on_a_terminal(broker: BrokerProcess) -> None:
    topic = new_topic("prompt")
    create(broker.bootstrap, topic)
    leader, follower = pty.openpty()
    with subprocess.Popen(
        [*STROM, "console-producer", "--bootstrap-server", broker.bootstrap, "--topic", topic],
        stdin=follower,
        stdout=follower,
        stderr=follower,
    ) as proc:
        os.close(follower)
        shown = _read_until(leader, b">")
        os.write(leader, b"first\n")
        shown += _read_until(leader, b">")
        os.write(leader, b"\x04")  # Ctrl-D: end of input
        code = proc.wait(timeout=30)
    os.close(leader)
    assert code == 0
    assert shown.count(b">") == 2
    r = consume(broker.bootstrap, topic, 1)
    assert r.stdout == "first\n"


def _read_until(fd: int, wanted: bytes, timeout: float = 30) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while wanted not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            seen += os.read(fd, 1024)
    assert wanted in seen, seen
    return seen


def test_batch_size_is_batch_size_in_bytes(broker: BrokerProcess) -> None:
    topic = new_topic("batch")
    create(broker.bootstrap, topic)
    lines = "".join(f"{i:02d}-{'x' * 37}\n" for i in range(20))  # 40 bytes each
    r = strom(
        "console-producer",
        "--bootstrap-server",
        broker.bootstrap,
        "--topic",
        topic,
        "--batch-size",
        "250",
        "--timeout",
        "60000",  # linger.ms: only full batches (and the final flush) are sent
        stdin=lines,
    )
    assert r.returncode == 0, r.stderr
    segment = Path(broker.data_dir) / "log" / f"{topic}-0" / "00000000000000000000.log"
    dumped = strom("dump-log", "--files", str(segment))
    counts = [int(m) for m in re.findall(r" count: (\d+) ", dumped.stdout)]
    assert sum(counts) == 20
    assert len(counts) > 1 and max(counts) < 10  # 250-byte batches, not 250 records
