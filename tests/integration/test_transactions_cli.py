"""``strom transactions`` (kafka-transactions.sh) against a live broker: an open
transaction listed, described, seen in its partition's producers, not reported
as hanging while its coordinator knows it, then aborted with a marker."""

from __future__ import annotations

import re
import subprocess
import uuid
from collections.abc import Iterator

import pytest

from strom.client.blocking import Producer
from strom.testing.broker import BrokerProcess
from tests.integration.cli_helpers import create, new_topic, strom

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("require_strom")]


@pytest.fixture(scope="module")
def broker_overrides() -> dict[str, str]:
    return {"transaction.state.log.num.partitions": "3", "offsets.topic.num.partitions": "3"}


def txn(broker: BrokerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return strom("transactions", "--bootstrap-server", broker.bootstrap, *args)


def rows(stdout: str) -> list[list[str]]:
    """Kafka's table: every column padded and followed by a tab."""
    lines = stdout.splitlines()
    assert all(line.endswith("\t") for line in lines), lines
    return [[cell.rstrip() for cell in line.split("\t")[:-1]] for line in lines]


@pytest.fixture(scope="module")
def open_txn(broker: BrokerProcess) -> Iterator[tuple[str, str, Producer]]:
    """A topic with a transaction left open on partition 0: (topic, transactional id,
    producer)."""
    topic, tid = new_topic("txn"), f"tid-{uuid.uuid4().hex[:6]}"
    create(broker.bootstrap, topic, 2)
    producer = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": tid})
    producer.init_transactions()
    producer.begin_transaction()
    producer.send(topic, b"open", partition=0).result(30)
    yield topic, tid, producer
    producer.close()


def test_list_and_describe(broker: BrokerProcess, open_txn: tuple[str, str, Producer]) -> None:
    topic, tid, _ = open_txn
    listed = txn(broker, "list")
    assert listed.returncode == 0, listed.stderr
    table = rows(listed.stdout)
    assert table[0] == ["TransactionalId", "Coordinator", "ProducerId", "TransactionState"]
    (mine,) = [row for row in table[1:] if row[0] == tid]
    assert mine[3] == "Ongoing" and mine[1].isdigit() and mine[2].isdigit()
    widths = [len(cell) for cell in listed.stdout.splitlines()[0].split("\t")[:-1]]
    assert widths[0] >= len(tid)  # padded to the widest value

    described = txn(broker, "describe", "--transactional-id", tid)
    assert described.returncode == 0, described.stderr
    header, row = rows(described.stdout)
    assert header == [
        "CoordinatorId",
        "TransactionalId",
        "ProducerId",
        "ProducerEpoch",
        "TransactionState",
        "TransactionTimeoutMs",
        "CurrentTransactionStartTimeMs",
        "TransactionDurationMs",
        "TopicPartitions",
    ]
    assert row[0] == mine[1] and row[1] == tid and row[2] == mine[2]
    assert row[4] == "Ongoing" and row[5] == "60000" and row[8] == f"{topic}-0"
    assert re.fullmatch(r"\d{13}", row[6]) and row[7].isdigit()

    missing = txn(broker, "describe", "--transactional-id", "no-such-id")
    assert missing.returncode == 1
    assert missing.stderr.startswith(
        "Error: Failed to describe transaction state of transactional-id `no-such-id`: "
    )
    assert missing.stderr.strip().endswith(". Enable debug logging for additional detail.")


def test_producers_hanging_and_abort(
    broker: BrokerProcess, open_txn: tuple[str, str, Producer]
) -> None:
    topic, _, _ = open_txn
    producers = txn(broker, "describe-producers", "--topic", topic, "--partition", "0")
    assert producers.returncode == 0, producers.stderr
    header, row = rows(producers.stdout)
    assert header == [
        "ProducerId",
        "ProducerEpoch",
        "LatestCoordinatorEpoch",
        "LastSequence",
        "LastTimestamp",
        "CurrentTransactionStartOffset",
    ]
    assert row[3] == "0" and row[5] == "0"

    # open for longer than 0 minutes, but its coordinator knows it: not hanging
    hanging = txn(broker, "find-hanging", "--topic", topic, "--max-transaction-timeout", "0")
    assert hanging.returncode == 0, hanging.stderr
    assert rows(hanging.stdout) == [
        [
            "Topic",
            "Partition",
            "ProducerId",
            "ProducerEpoch",
            "CoordinatorEpoch",
            "StartOffset",
            "LastTimestamp",
            "Duration(min)",
        ]
    ]
    no_scope = txn(broker, "find-hanging")
    assert no_scope.stderr.strip() == (
        "Error: The `find-hanging` command requires either --topic or --broker-id to limit the "
        "scope of the search"
    )

    nothing = txn(broker, "abort", "--topic", topic, "--partition", "0", "--start-offset", "7")
    assert nothing.returncode == 1
    assert nothing.stderr.strip() == (
        f"Error: Could not find any open transactions starting at offset 7 on partition {topic}-0"
    )
    aborted = txn(broker, "abort", "--topic", topic, "--partition", "0", "--start-offset", "0")
    assert aborted.returncode == 0, aborted.stderr
    assert aborted.stdout == ""
    after = txn(broker, "describe-producers", "--topic", topic, "--partition", "0")
    assert rows(after.stdout)[1][5] == "None"  # the marker closed the transaction there
