"""``strom reassign-partitions`` against real 3-broker clusters: --generate, --execute,
--verify, --list and --cancel, their output compared with what Kafka's
kafka-reassign-partitions.sh prints (ReassignPartitionsCommand)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from strom.testing.kafka import produce_acked, read_all
from tests.integration.cli_helpers import strom
from tests.integration.cluster_helpers import (
    NO_REBALANCE,
    ClusterFactory,
    create,
    ok,
    reassignment_json,
    replicas,
    serving,
    tool,
)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("require_strom")]


def test_generate_execute_verify_and_list(
    cluster_factory: ClusterFactory, topic_name: str, tmp_path: Path
) -> None:
    cluster = serving(cluster_factory(3, NO_REBALANCE))
    create(cluster, topic_name, {0: [0, 1], 1: [1, 0]})
    produce_acked(
        cluster.bootstrap, topic_name, [(i % 2, None, f"v{i}".encode()) for i in range(20)]
    )
    current = {(topic_name, 0): [0, 1], (topic_name, 1): [1, 0]}

    topics_file = tmp_path / "topics.json"
    topics_file.write_text(json.dumps({"topics": [{"topic": topic_name}], "version": 1}))
    generated = ok(
        tool(
            cluster,
            "reassign-partitions",
            "--generate",
            "--topics-to-move-json-file",
            str(topics_file),
            "--broker-list",
            "1,2",
        )
    )
    assert generated[:3] == ["Current partition replica assignment", reassignment_json(current), ""]
    assert generated[3] == "Proposed partition reassignment configuration"
    assert len(generated) == 5
    proposed = json.loads(generated[4])
    assert proposed["version"] == 1
    assert [(p["topic"], p["partition"]) for p in proposed["partitions"]] == sorted(current)
    for p in proposed["partitions"]:
        assert sorted(p["replicas"]) == [1, 2] and p["log_dirs"] == ["any", "any"]

    plan = tmp_path / "plan.json"
    target = {(topic_name, 0): [2, 1], (topic_name, 1): [1, 2]}
    plan.write_text(reassignment_json(target))
    executed = ok(
        tool(cluster, "reassign-partitions", "--execute", "--reassignment-json-file", str(plan))
    )
    assert executed == [
        "Current partition replica assignment",
        "",
        reassignment_json(current),
        "",
        "Save this to use as the --reassignment-json-file option during rollback",
        f"Successfully started partition reassignments for {topic_name}-0,{topic_name}-1",
    ]

    def verified() -> list[str]:
        return ok(
            tool(cluster, "reassign-partitions", "--verify", "--reassignment-json-file", str(plan))
        )

    cluster.wait_for("the reassignment to complete", lambda: "in progress" not in str(verified()))
    assert verified() == [
        "Status of partition reassignment:",
        f"Reassignment of partition {topic_name}-0 is completed.",
        f"Reassignment of partition {topic_name}-1 is completed.",
    ]
    assert replicas(cluster, topic_name) == {0: [2, 1], 1: [1, 2]}
    assert ok(tool(cluster, "reassign-partitions", "--list")) == [
        "No partition reassignments found."
    ]
    assert sorted(r.value for r in read_all(cluster.bootstrap, topic_name, 2)) == sorted(
        f"v{i}".encode() for i in range(20)
    )

    # the rollback file, verified before it is executed: Kafka's "no active reassignment"
    rollback = tmp_path / "rollback.json"
    rollback.write_text(reassignment_json(current))
    assert ok(
        tool(cluster, "reassign-partitions", "--verify", "--reassignment-json-file", str(rollback))
    ) == [
        "Status of partition reassignment:",
        f"There is no active reassignment of partition {topic_name}-0, but replica set is "
        "2,1 rather than 0,1.",
        f"There is no active reassignment of partition {topic_name}-1, but replica set is "
        "1,2 rather than 1,0.",
    ]

    # errors: a broker that does not exist, a partition that does not exist
    bad = tmp_path / "bad.json"
    bad.write_text(reassignment_json({(topic_name, 0): [0, 7]}))
    r = tool(cluster, "reassign-partitions", "--execute", "--reassignment-json-file", str(bad))
    assert (r.returncode, r.stderr.strip()) == (1, "Error: Unknown broker id 7")
    bad.write_text(reassignment_json({(topic_name, 5): [0, 1]}))
    r = tool(cluster, "reassign-partitions", "--execute", "--reassignment-json-file", str(bad))
    assert (r.returncode, r.stderr.strip()) == (
        1,
        f"Error: Unable to find partition: {topic_name}-5",
    )


def test_a_reassignment_in_progress_is_listed_described_and_cancelled(
    cluster_factory: ClusterFactory, topic_name: str, tmp_path: Path
) -> None:
    # 20 s sessions: a paused broker stays registered (alive to the controller) meanwhile
    cluster = serving(cluster_factory(3, NO_REBALANCE, session_timeout_ms=20000))
    controller = cluster.controller_id()
    paused = next(i for i in (2, 1, 0) if i != controller)
    kept = [i for i in (0, 1, 2) if i != paused]
    create(cluster, topic_name, {0: kept})
    plan = tmp_path / "plan.json"
    plan.write_text(reassignment_json({(topic_name, 0): [kept[0], paused]}))

    cluster.broker(paused).pause()
    try:
        started = time.monotonic()
        executed = ok(
            tool(cluster, "reassign-partitions", "--execute", "--reassignment-json-file", str(plan))
        )
        assert executed[-1] == f"Successfully started partition reassignment for {topic_name}-0"
        again = tool(
            cluster, "reassign-partitions", "--execute", "--reassignment-json-file", str(plan)
        )
        assert again.returncode == 1
        assert again.stderr.strip() == (
            "Error: Cannot execute because there is an existing partition assignment.  Use "
            "--additional to override this and create a new partition assignment in addition "
            "to the existing one. The --additional flag can also be used to change the "
            "throttle by resubmitting the current reassignment."
        )
        assert ok(tool(cluster, "reassign-partitions", "--list")) == [
            "Current partition reassignments:",
            f"{topic_name}-0: replicas: {kept[0]},{paused},{kept[1]}. adding: {paused}. "
            f"removing: {kept[1]}.",
        ]
        assert ok(
            tool(cluster, "reassign-partitions", "--verify", "--reassignment-json-file", str(plan))
        ) == [
            "Status of partition reassignment:",
            f"Reassignment of partition {topic_name}-0 is still in progress.",
        ]
        described = ok(tool(cluster, "topics", "--describe", "--topic", topic_name))
        assert re.fullmatch(
            rf"Topic: {topic_name}\tTopicId: \S+\tPartitionCount: 1\tReplicationFactor: 2\t"
            r"Configs: .*",
            described[0],
        )
        assert described[1] == (
            f"\tTopic: {topic_name}\tPartition: 0\tLeader: {kept[0]}\t"
            f"Replicas: {kept[0]},{paused},{kept[1]}\tIsr: {kept[0]},{kept[1]}\t"
            f"Adding Replicas: {paused}\tRemoving Replicas: {kept[1]}\tElr: \tLastKnownElr: "
        )
        cancelled = ok(
            tool(cluster, "reassign-partitions", "--cancel", "--reassignment-json-file", str(plan))
        )
        assert cancelled == [
            f"Successfully cancelled partition reassignment for: {topic_name}-0",
            "None of the specified partition moves are active.",
        ]
        assert time.monotonic() - started < 18, "the paused broker's session may have expired"
    finally:
        cluster.broker(paused).resume()
    assert ok(tool(cluster, "reassign-partitions", "--list")) == [
        "No partition reassignments found."
    ]
    assert replicas(cluster, topic_name) == {0: kept}
    none = ok(
        tool(cluster, "reassign-partitions", "--cancel", "--reassignment-json-file", str(plan))
    )
    assert none == [
        "None of the specified partition reassignments are active.",
        "None of the specified partition moves are active.",
    ]


def test_reassign_partitions_refuses_bad_arguments(tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text('{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1,1]}]}')
    cases = {
        ("--list", "--verify"): "Command must include exactly one action: --generate, "
        "--execute, --verify, --cancel, --list",
        ("--verify",): 'Missing required argument "[reassignment-json-file]"',
        ("--list", "--additional"): 'Option "[additional]" can\'t be used with action "[list]"',
        ("--execute", "--reassignment-json-file", str(plan), "--throttle", "1000"): (
            "--throttle: strom has no replication quotas, so a reassignment cannot be "
            "throttled; run it without --throttle"
        ),
        ("--execute", "--reassignment-json-file", str(plan)): (
            "Partition replica lists may not contain duplicate entries: t-0 contains multiple "
            "entries for 1"
        ),
    }
    for args, message in cases.items():
        r = strom("reassign-partitions", "--bootstrap-server", "127.0.0.1:1", *args)
        assert (r.returncode, r.stderr.strip()) == (1, f"Error: {message}"), args
