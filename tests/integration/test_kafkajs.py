"""kafkajs (Node.js), the mission's fifth client, through one session against a broker:
admin (create with its errors, metadata, cluster, configs, partitions, offsets, record
deletion, groups, topic deletion), an idempotent producer with gzip, a consumer group,
and a transactional producer with offsets in the transaction read back read_committed.

tests/kafkajs/scenario.js prints a JSON line per step; this checks every line. kafkajs is
pinned in tests/kafkajs/package-lock.json; `bash .ci/run` installs it (`npm ci`).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from strom.testing import BrokerProcess

pytestmark = pytest.mark.integration

HERE = Path(__file__).resolve().parent.parent / "kafkajs"


def run_scenario(bootstrap: str, topic: str) -> dict[str, dict[str, Any]]:
    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        pytest.fail("Node.js is not installed (apt-get install nodejs npm)")
    if not (HERE / "node_modules" / "kafkajs").is_dir():
        pytest.fail(f"kafkajs is not installed: npm ci --prefix {HERE} (bash .ci/run does)")
    proc = subprocess.run(
        [node, str(HERE / "scenario.js"), bootstrap, topic],
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )
    steps = {}
    for line in proc.stdout.splitlines():
        entry = json.loads(line)
        steps[entry["step"]] = entry
    assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr}"
    return steps


def value(steps: dict[str, dict[str, Any]], name: str) -> Any:
    entry = steps.get(name)
    assert entry is not None, f"step {name!r} did not run: {sorted(steps)}"
    assert entry["ok"], f"step {name!r} failed: {entry}"
    return entry["value"]


def test_kafkajs_session(broker: BrokerProcess, topic_name: str) -> None:
    steps = run_scenario(broker.bootstrap, topic_name)
    assert value(steps, "createTopics") is True
    assert value(steps, "createTopics again") is False  # TOPIC_ALREADY_EXISTS, as kafkajs reads it
    invalid = steps["createTopics invalid name"]
    assert not invalid["ok"]
    assert invalid["type"] == "INVALID_TOPIC_EXCEPTION"
    cluster = value(steps, "describeCluster")
    [[node, host, port]] = cluster["brokers"]
    assert (host, port) == (broker.host, broker.port)
    assert cluster["controller"] == node
    assert value(steps, "metadata") == [[p, node, [node], [node]] for p in range(3)]
    assert value(steps, "describeConfigs") == [["retention.ms", "123456789"]]
    value(steps, "createPartitions")
    assert value(steps, "send") == [[p, 0, "0"] for p in range(4)]
    assert value(steps, "send gzip") == [[0, 0, "5"]]
    assert value(steps, "fetchTopicOffsets") == [[0, "0", "7"], *[[p, "0", "5"] for p in (1, 2, 3)]]

    consumed = value(steps, "consume")
    by_key = {r["key"]: r for r in consumed}
    assert len(consumed) == 22
    assert len(by_key) == 22
    for i in range(20):
        record = by_key[f"k{i}"]
        assert (record["partition"], record["value"], record["headers"]) == (
            i % 4,
            f"v{i}",
            {"h": f"x{i}"},
        )
        assert record["offset"] == str(i // 4)
    assert (by_key["gk"]["offset"], by_key["gk2"]["offset"]) == ("5", "6")
    assert value(steps, "describeGroups") == {
        "state": "Stable",
        "protocol": "RoundRobinAssigner",
        "members": 1,
    }
    assert value(steps, "fetchOffsets") == [[0, "7"], [1, "5"], [2, "5"], [3, "5"]]
    assert value(steps, "fetchOffsets after set") == "1"
    assert value(steps, "low watermark") == "2"
    value(steps, "txn commit")
    value(steps, "txn abort")
    assert value(steps, "fetchOffsets after txn") == "1"  # committed with the transaction
    assert value(steps, "read_committed") == ["v2", "v6", "v10", "v14", "v18", "committed"]
    assert value(steps, "deleteGroups") == [[f"g-{topic_name}", 0]]
    value(steps, "deleteTopics")
    assert value(steps, "listTopics after delete") is False
