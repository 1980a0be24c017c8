"""``strom producer-perf-test`` and ``consumer-perf-test`` against a live broker:
Kafka's output lines, the timeout warning, and the progress bars on a terminal."""

from __future__ import annotations

import re
from typing import Any

import pytest

from strom.testing.broker import BrokerProcess
from tests.integration.cli_helpers import create, new_topic, strom, strom_on_terminal

pytestmark = pytest.mark.integration

PRODUCER_TOTAL = (
    r"(\d+) records sent, [\d.]+ records/sec \([\d.]+ MB/sec\), [\d.]+ ms avg latency, "
    r"[\d.]+ ms max latency, \d+ ms 50th, \d+ ms 95th, \d+ ms 99th, \d+ ms 99\.9th\."
)
CONSUMER_HEADER = (
    "start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, "
    "rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec"
)
TIME = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d:\d{3}"
CONSUMER_ROW = rf"{TIME}, {TIME}, [\d.]+, [\d.]+, (\d+), [\d.]+, \d+, \d+, [\d.]+, [\d.]+"


@pytest.fixture(scope="module")
def filled_topic(broker: BrokerProcess) -> str:
    """A topic with 300 records of 100 bytes, written by producer-perf-test."""
    topic = new_topic("perf")
    create(broker.bootstrap, topic, 2)
    r = strom(
        "producer-perf-test",
        "--topic",
        topic,
        "--num-records",
        "300",
        "--record-size",
        "100",
        "--throughput",
        "-1",
        "--bootstrap-server",
        broker.bootstrap,
    )
    assert r.returncode == 0, r.stderr
    match = re.fullmatch(PRODUCER_TOTAL, r.stdout.splitlines()[-1])
    assert match and match.group(1) == "300", r.stdout
    assert r.stderr == ""  # no progress bar when standard error is not a terminal
    return topic


def consumer_perf(broker: BrokerProcess, topic: str, messages: int, *extra: str) -> Any:
    return strom(
        "consumer-perf-test",
        "--bootstrap-server",
        broker.bootstrap,
        "--topic",
        topic,
        "--messages",
        str(messages),
        *extra,
    )


def test_consumer_perf_reads_all_and_prints_kafkas_lines(
    broker: BrokerProcess, filled_topic: str
) -> None:
    r = consumer_perf(broker, filled_topic, 300)
    assert r.returncode == 0, r.stderr
    header, row = r.stdout.splitlines()
    assert header == CONSUMER_HEADER
    match = re.fullmatch(CONSUMER_ROW, row)
    assert match and match.group(1) == "300", row
    assert r.stderr == ""


def test_consumer_perf_short_of_messages_warns_and_fails(
    broker: BrokerProcess, filled_topic: str
) -> None:
    r = consumer_perf(broker, filled_topic, 1000, "--timeout", "5000")
    assert r.returncode == 1
    header, warning, row = r.stdout.splitlines()
    assert header == CONSUMER_HEADER
    assert warning == (
        "WARNING: Exiting before consuming the expected number of messages: timeout (5000 ms) "
        "exceeded. You can use the --timeout option to increase the timeout."
    )
    match = re.fullmatch(CONSUMER_ROW, row)
    assert match and match.group(1) == "300", row


def _plain(shown: str) -> str:
    """Terminal output without its colour and cursor escapes."""
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", shown)


def test_progress_bars_on_a_terminal(broker: BrokerProcess, filled_topic: str) -> None:
    code, out, shown = strom_on_terminal(
        "consumer-perf-test",
        "--bootstrap-server",
        broker.bootstrap,
        "--topic",
        filled_topic,
        "--messages",
        "300",
    )
    assert code == 0, shown
    assert re.search(r"consume ━+ 300/300 100% [1-9][\d,]* records/s 0:00:00", _plain(shown))
    assert re.fullmatch(CONSUMER_ROW, out.splitlines()[-1])

    code, out, shown = strom_on_terminal(
        "producer-perf-test",
        "--topic",
        filled_topic,
        "--num-records",
        "200",
        "--record-size",
        "10",
        "--throughput",
        "-1",
        "--bootstrap-server",
        broker.bootstrap,
    )
    assert code == 0, shown
    assert re.search(
        r"produce ━+ 200/200 100% [\d,]+ records/s \S+ acked 200 \([\d,]+ records/s\)",
        _plain(shown),
    ), _plain(shown)
    assert re.fullmatch(PRODUCER_TOTAL, out.splitlines()[-1])
