"""The cluster tools against real 3-broker clusters (ZooKeeper, broker processes):
``strom reassign-partitions``, ``leader-election``, ``cluster``, the partition reports
of ``topics --describe`` and ``dev-cluster``, their output compared with what Kafka's
kafka-reassign-partitions.sh, kafka-leader-election.sh, kafka-cluster.sh and
kafka-topics.sh print (ReassignPartitionsCommand, LeaderElectionCommand, ClusterTool,
TopicCommand)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from strom.client.admin_types import AlterConfigOp, ConfigResource, ConfigResourceType, NewTopic
from strom.client.sync import Admin
from strom.protocol.generated.metadata import MetadataRequest
from strom.testing import Cluster
from strom.testing.kafka import produce_acked, read_all
from strom.testing.wire import RawClient
from tests.integration.cli_helpers import strom

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("require_strom")]

ClusterFactory = Callable[..., Cluster]
NO_REBALANCE = {"auto.leader.rebalance.enable": "false"}


def serving(cluster: Cluster) -> Cluster:
    """``cluster`` once every broker's Metadata lists every broker and a controller."""
    n = len(cluster.brokers)

    def serves(bootstrap: str) -> bool:
        with RawClient(bootstrap, timeout_s=5) as c:
            md = c.request(MetadataRequest(topics=[], allow_auto_topic_creation=False), 12)
        return len(md.brokers) == n and md.controller_id >= 0

    cluster.wait_for(
        "every broker to know the cluster",
        lambda: all(serves(b.bootstrap) for b in cluster.brokers.values() if b.is_running()),
    )
    return cluster


def create(cluster: Cluster, topic: str, assignments: dict[int, list[int]], **configs: str) -> None:
    """A topic with explicit replicas, waited for until every partition has its leader."""
    with Admin({"bootstrap.servers": cluster.bootstrap}) as admin:
        admin.create_topics([NewTopic(topic, configs=configs, assignments=assignments)])
    cluster.wait_for(
        f"{topic} to have leaders",
        lambda: all(
            p.leader_id >= 0 and len(p.isr_nodes) == len(p.replica_nodes)
            for p in cluster.metadata([topic]).topics[0].partitions
        ),
    )


def tool(cluster: Cluster, name: str, *args: str) -> subprocess.CompletedProcess[str]:
    return strom(name, "--bootstrap-server", cluster.bootstrap, *args)


def ok(r: subprocess.CompletedProcess[str]) -> list[str]:
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stderr == "", r.stderr
    return r.stdout.splitlines()


def reassignment_json(parts: dict[tuple[str, int], list[int]]) -> str:
    """Kafka's formatAsReassignmentJson for these partitions (compact, sorted)."""
    return json.dumps(
        {
            "version": 1,
            "partitions": [
                {"topic": t, "partition": p, "replicas": r, "log_dirs": ["any"] * len(r)}
                for (t, p), r in sorted(parts.items())
            ],
        },
        separators=(",", ":"),
    )


def replicas(cluster: Cluster, topic: str) -> dict[int, list[int]]:
    return {
        p.partition_index: list(p.replica_nodes)
        for p in cluster.metadata([topic]).topics[0].partitions
    }


# -- strom cluster ----------------------------------------------------------------------


def test_cluster_id_describe_and_unregister(cluster_factory: ClusterFactory) -> None:
    cluster = serving(cluster_factory(3))
    md = cluster.metadata([])
    assert ok(tool(cluster, "cluster", "cluster-id")) == [f"Cluster ID: {md.cluster_id}"]
    short = strom("cluster", "cluster-id", "-b", cluster.broker(1).bootstrap)
    assert ok(short) == [f"Cluster ID: {md.cluster_id}"]

    lines = ok(strom("cluster", "describe", "--bootstrap-server", cluster.bootstrap))
    assert lines[:2] == [f"Cluster ID: {md.cluster_id}", f"Controller: {md.controller_id}"]
    rows = [line.split() for line in lines[2:]]
    assert rows[0] == ["BROKER", "HOST:PORT", "RACK", "CONTROLLER"]
    assert rows[1:] == [
        [str(i), b.bootstrap, "-", "yes" if i == md.controller_id else "no"]
        for i, b in sorted(cluster.brokers.items())
    ]

    unregister = strom("cluster", "unregister", "--id", "1", "-b", cluster.bootstrap)
    assert ok(unregister) == ["The target cluster does not support the broker unregistration API."]
    missing = strom("cluster", "cluster-id")
    assert missing.returncode == 1
    assert missing.stderr.strip() == "Error: Please specify --bootstrap-server."


# -- strom reassign-partitions ------------------------------------------------------------


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


# -- strom leader-election ----------------------------------------------------------------


def test_preferred_and_unclean_elections(
    cluster_factory: ClusterFactory, topic_name: str, tmp_path: Path
) -> None:
    cluster = serving(cluster_factory(3, NO_REBALANCE, session_timeout_ms=4000))
    controller = cluster.controller_id()
    preferred = next(i for i in (2, 1, 0) if i != controller)
    other = next(i for i in (0, 1, 2) if i not in (preferred, controller))
    create(cluster, topic_name, {0: [preferred, other], 1: [preferred, controller]})
    elect = ("leader-election", "--bootstrap-server", cluster.bootstrap)

    assert ok(strom(*elect, "--election-type", "PREFERRED", "--all-topic-partitions")) == []
    cluster.broker(preferred).stop()
    cluster.wait_for(
        "leaders off the stopped broker",
        lambda: all(
            p.leader_id not in (preferred, -1)
            for p in cluster.metadata([topic_name]).topics[0].partitions
        ),
    )
    cluster.broker(preferred).start()
    cluster.wait_for(
        "the preferred replica back in sync",
        lambda: all(
            preferred in p.isr_nodes for p in cluster.metadata([topic_name]).topics[0].partitions
        ),
        timeout_s=30,
    )
    one = ok(
        strom(*elect, "--election-type", "preferred", "--topic", topic_name, "--partition", "0")
    )
    assert one == [
        f"Successfully completed leader election (PREFERRED) for partitions {topic_name}-0"
    ]
    assert cluster.leader(topic_name, 0) == preferred
    listing = tmp_path / "elect.json"
    listing.write_text(
        json.dumps({"partitions": [{"topic": topic_name, "partition": p} for p in (0, 1, 7)]})
    )
    r = strom(*elect, "--election-type", "PREFERRED", "--path-to-json-file", str(listing))
    assert r.returncode == 1
    assert r.stdout.splitlines()[:2] == [
        f"Successfully completed leader election (PREFERRED) for partitions {topic_name}-1",
        f"Valid replica already elected for partitions {topic_name}-0",
    ]
    assert re.fullmatch(
        rf"Error completing leader election \(PREFERRED\) for partition: {topic_name}-7: "
        r"org\.apache\.kafka\.common\.errors\.UnknownTopicOrPartitionException: .+",
        r.stdout.splitlines()[2],
    )
    assert r.stderr.strip() == "Error: 1 replica(s) could not be elected"
    assert cluster.leader(topic_name, 1) == preferred

    unclean = strom(*elect, "--election-type", "UNCLEAN", "--topic", topic_name, "--partition", "0")
    assert ok(unclean) == [f"Valid replica already elected for partitions {topic_name}-0"]


def test_leader_election_refuses_bad_arguments() -> None:
    base = ("leader-election", "--bootstrap-server", "127.0.0.1:1")
    cases = {
        ("leader-election", "--topic", "t", "--partition", "0"): (
            "Missing required option(s): bootstrap-server, election-type"
        ),
        (*base, "--election-type", "preferred"): (
            "One and only one of the following options is required: topic, "
            "all-topic-partitions, path-to-json-file"
        ),
        (*base, "--election-type", "preferred", "--topic", "t", "--all-topic-partitions"): (
            "One and only one of the following options is required: topic, "
            "all-topic-partitions, path-to-json-file"
        ),
        (*base, "--election-type", "preferred", "--topic", "t"): (
            "Missing required option(s): partition"
        ),
        (*base, "--election-type", "unclean", "--all-topic-partitions", "--partition", "1"): (
            "Option partition is only allowed if topic is used"
        ),
    }
    for args, message in cases.items():
        r = strom(*args)
        assert (r.returncode, r.stderr.strip()) == (1, f"Error: {message}"), args


# -- strom topics --describe reports ----------------------------------------------------


def set_min_isr(cluster: Cluster, topic: str, value: str) -> None:
    """min.insync.replicas of ``topic``, waited for until every broker describes it.
    (Set with IncrementalAlterConfigs: the brokers that are not the controller do not
    see a config given at creation, see the report.)"""
    resource = ConfigResource(ConfigResourceType.TOPIC, topic)
    with Admin({"bootstrap.servers": cluster.bootstrap}) as admin:
        admin.incremental_alter_configs({resource: [AlterConfigOp("min.insync.replicas", value)]})

    def described(bootstrap: str) -> str | None:
        with Admin({"bootstrap.servers": bootstrap}) as admin:
            entries = admin.describe_configs([resource])[resource]
        return next(e.value for e in entries if e.name == "min.insync.replicas")

    cluster.wait_for(
        "every broker to describe the config",
        lambda: all(described(b.bootstrap) == value for b in cluster.brokers.values()),
    )


def test_topics_describe_reports(cluster_factory: ClusterFactory, topic_name: str) -> None:
    cluster = serving(cluster_factory(3, NO_REBALANCE, session_timeout_ms=4000))
    controller = cluster.controller_id()
    victim = next(i for i in (2, 1, 0) if i != controller)
    wide, narrow = f"{topic_name}-wide", f"{topic_name}-narrow"
    create(cluster, wide, {0: [0, 1, 2], 1: [1, 2, 0]})
    set_min_isr(cluster, wide, "2")
    create(cluster, narrow, {0: [victim]})
    both = f"{wide}|{narrow}"

    def report(*flags: str) -> list[str]:
        return ok(tool(cluster, "topics", "--describe", "--topic", both, *flags))

    def line(topic: str, partition: int, leader: str, replicas: str, isr: str) -> str:
        return (
            f"\tTopic: {topic}\tPartition: {partition}\tLeader: {leader}\t"
            f"Replicas: {replicas}\tIsr: {isr}\tElr: \tLastKnownElr: "
        )

    for flag in ("--under-replicated-partitions", "--unavailable-partitions"):
        assert report(flag) == []
    assert report("--under-min-isr-partitions") == []
    # one replica in sync, min.insync.replicas 1: at the minimum
    narrow_line = line(narrow, 0, str(victim), str(victim), str(victim))
    assert report("--at-min-isr-partitions") == [narrow_line]
    overrides = report("--topics-with-overrides")
    assert len(overrides) == 1
    assert re.fullmatch(
        rf"Topic: {wide}\tTopicId: \S+\tPartitionCount: 2\tReplicationFactor: 3\t"
        r"Configs: min.insync.replicas=2",
        overrides[0],
    )

    cluster.broker(victim).stop()
    cluster.wait_for(
        "the stopped broker out of every ISR",
        lambda: all(
            victim not in p.isr_nodes for p in cluster.metadata([wide]).topics[0].partitions
        ),
    )
    wide_lines = []
    for p in cluster.metadata([wide]).topics[0].partitions:
        ids = [str(i) for i in p.replica_nodes]
        isr = [str(i) for i in p.isr_nodes]
        wide_lines.append(
            line(wide, p.partition_index, str(p.leader_id), ",".join(ids), ",".join(isr))
        )
    # the offline partition keeps its last ISR, as Kafka's controller leaves it
    offline = line(narrow, 0, "none", str(victim), str(victim))
    assert report("--under-replicated-partitions") == wide_lines
    assert report("--at-min-isr-partitions") == [offline, *wide_lines]
    assert report("--unavailable-partitions") == [offline]
    assert report("--under-min-isr-partitions") == [offline]
    # several reports: the partitions that match any of them, each once
    assert report("--unavailable-partitions", "--under-replicated-partitions") == [
        offline,
        *wide_lines,
    ]
    wrong = tool(cluster, "topics", "--list", "--under-replicated-partitions")
    assert (wrong.returncode, wrong.stderr.strip()) == (
        1,
        'Error: Option "[under-replicated-partitions]" can\'t be used with option "[list]"',
    )
    both_kinds = tool(
        cluster, "topics", "--describe", "--at-min-isr-partitions", "--topics-with-overrides"
    )
    assert both_kinds.stderr.strip() == (
        'Error: Option "[at-min-isr-partitions]" can\'t be used with option '
        '"[topics-with-overrides]"'
    )


# -- strom dev-cluster --------------------------------------------------------------------


def _start_dev_cluster(data: Path) -> tuple[subprocess.Popen[str], list[str]]:
    """``strom dev-cluster`` as a subprocess; its lines up to the bootstrap line."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "strom",
            "dev-cluster",
            "--brokers",
            "3",
            "--data",
            str(data),
            "--port",
            "0",
            "--zookeeper-port",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if line.startswith("Ctrl-C"):
            return proc, lines
    proc.kill()
    _, err = proc.communicate()
    raise AssertionError(f"dev-cluster did not start: {lines} {err}")


def _stop_dev_cluster(proc: subprocess.Popen[str], pids: list[int]) -> None:
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert out.splitlines() == ["Stopping the brokers, then ZooKeeper...", "Stopped."]
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_dev_cluster_serves_stops_on_sigint_and_keeps_its_data(tmp_path: Path) -> None:
    data = tmp_path / "dev"
    proc, lines = _start_dev_cluster(data)
    try:
        pids = [int(m) for line in lines for m in re.findall(r"\(pid (\d+)\)", line)]
        assert len(pids) == 4  # ZooKeeper and three brokers
        assert re.fullmatch(r"zookeeper\.connect=127\.0\.0\.1:\d+/strom", lines[-3])
        bootstrap = lines[-2].removeprefix("bootstrap.servers=")
        assert re.fullmatch(r"127\.0\.0\.1:\d+(,127\.0\.0\.1:\d+){2}", bootstrap)
        for i in range(3):
            assert (data / f"broker-{i}" / "log").is_dir()
        created = strom(
            "topics", "--bootstrap-server", bootstrap, "--create", "--topic", "dev",
            "--partitions", "2", "--replication-factor", "3",
        )  # fmt: skip
        assert created.returncode == 0, created.stderr
        produce_acked(bootstrap, "dev", [(i % 2, None, f"r{i}".encode()) for i in range(10)])
        assert len(read_all(bootstrap, "dev", 2)) == 10
    except BaseException:
        proc.kill()
        proc.communicate()
        raise
    _stop_dev_cluster(proc, pids)

    proc, lines = _start_dev_cluster(data)
    try:
        pids = [int(m) for line in lines for m in re.findall(r"\(pid (\d+)\)", line)]
        bootstrap = lines[-2].removeprefix("bootstrap.servers=")
        values = sorted(r.value for r in read_all(bootstrap, "dev", 2))
        assert values == sorted(f"r{i}".encode() for i in range(10))
    except BaseException:
        proc.kill()
        proc.communicate()
        raise
    _stop_dev_cluster(proc, pids)


def test_dev_cluster_names_the_zookeeper_package_when_it_is_missing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from strom.testing import devcluster

    monkeypatch.setattr(devcluster, "zookeeper_installed", lambda: False)
    assert devcluster.main(["--data", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: Apache ZooKeeper is not installed")
    assert "apt-get install zookeeper" in err
