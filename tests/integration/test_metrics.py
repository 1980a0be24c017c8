"""metrics.listener: the Prometheus endpoint of a real broker process, checked against
known workloads driven by real clients (N records in -> the counter moved by N)."""

from __future__ import annotations

import re
import time
import urllib.request
from collections.abc import Callable, Mapping

import pytest
from prometheus_client.parser import text_string_to_metric_families

from strom.protocol.generated.produce import ProduceRequest
from strom.protocol.records import build_batch
from strom.testing import BrokerFactory, BrokerProcess, Cluster, free_port
from strom.testing.kafka import create_topic, produce_acked
from strom.testing.wire import RawClient

from .cli_helpers import strom

pytestmark = pytest.mark.integration

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str) -> Samples:
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.status == 200
        text = resp.read().decode()
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum over every series of ``name`` whose labels include ``labels``."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


@pytest.fixture
def metered(broker_factory: BrokerFactory, require_strom: None) -> tuple[BrokerProcess, str]:
    port = free_port()
    proc = broker_factory(
        {
            "metrics.listener": f"http://127.0.0.1:{port}",
            "group.initial.rebalance.delay.ms": "0",
            "offsets.topic.num.partitions": "3",
        }
    )
    return proc, f"http://127.0.0.1:{port}/metrics"


def test_messages_and_bytes_in_and_out_match_the_workload(
    metered: tuple[BrokerProcess, str], topic_name: str
) -> None:
    broker, url = metered
    create_topic(broker.bootstrap, topic_name, partitions=3)
    before = scrape(url)
    records = [(i % 3, b"key-%d" % i, b"value-%d" % i * 10) for i in range(600)]
    produce_acked(broker.bootstrap, topic_name, records, linger_ms=20)
    after = scrape(url)
    name = "kafka_server_brokertopicmetrics_messagesin_total"
    assert value(after, name, topic=topic_name) == 600
    assert value(after, name) - value(before, name) == 600
    bytes_in = value(after, "kafka_server_brokertopicmetrics_bytesin_total", topic=topic_name)
    log_size = total(after, "kafka_log_log_size", topic=topic_name)
    assert bytes_in == log_size > 600 * 10  # batches are stored as sent
    ends = {
        int(dict(ls)["partition"]): v
        for (n, ls), v in after.items()
        if n == "kafka_log_log_logendoffset" and dict(ls).get("topic") == topic_name
    }
    assert ends == {0: 200, 1: 200, 2: 200}
    assert total(after, "kafka_log_log_numlogsegments", topic=topic_name) == 3
    # one reader of everything from the start: every stored byte goes out once
    from strom.testing.kafka import read_all

    assert len(read_all(broker.bootstrap, topic_name, 3)) == 600
    out = scrape(url)
    assert value(out, "kafka_server_brokertopicmetrics_bytesout_total", topic=topic_name) == (
        log_size
    )
    assert value(out, "kafka_server_brokertopicmetrics_totalfetchrequests_total", topic=topic_name)
    assert value(out, "kafka_server_brokertopicmetrics_failedfetchrequests_total") == 0


def test_request_counts_latency_and_errors_per_api(
    metered: tuple[BrokerProcess, str], topic_name: str
) -> None:
    broker, url = metered
    create_topic(broker.bootstrap, topic_name, partitions=1)
    before = scrape(url)
    batch = build_batch([(None, b"x", (), int(time.time() * 1000))])
    produce = ProduceRequest(
        acks=1,
        timeout_ms=5000,
        topic_data=[
            ProduceRequest.TopicProduceData(
                topic_name, [ProduceRequest.PartitionProduceData(0, batch)]
            )
        ],
    )
    missing = ProduceRequest(
        acks=1,
        timeout_ms=5000,
        topic_data=[
            ProduceRequest.TopicProduceData(
                topic_name, [ProduceRequest.PartitionProduceData(7, batch)]
            )
        ],
    )
    with RawClient(broker.bootstrap) as raw:
        for _ in range(5):
            assert raw.request(produce, 9).responses[0].partition_responses[0].error_code == 0
        opened = scrape(url)  # the broker has accepted this connection by now
        error = raw.request(missing, 9).responses[0].partition_responses[0].error_code
        assert error == 3  # UNKNOWN_TOPIC_OR_PARTITION
    after = scrape(url)
    requests = "kafka_network_requestmetrics_requests_total"
    assert (
        value(after, requests, request="Produce", version="9")
        - value(before, requests, request="Produce", version="9")
        == 6
    )
    count = "kafka_network_requestmetrics_totaltimems_count"
    assert value(after, count, request="Produce") - value(before, count, request="Produce") == 6
    buckets = [
        v
        for (n, ls), v in after.items()
        if n == "kafka_network_requestmetrics_totaltimems_bucket"
        and dict(ls)["request"] == "Produce"
    ]
    assert max(buckets) == value(after, count, request="Produce")  # +Inf holds them all
    errors = "kafka_network_requestmetrics_errors_total"
    labels = {"request": "Produce", "error": "UNKNOWN_TOPIC_OR_PARTITION"}
    assert value(after, errors, **labels) - value(before, errors, **labels) == 1
    # an expected error (Kafka's list) is not a failed produce request
    assert value(after, "kafka_server_brokertopicmetrics_failedproducerequests_total") == 0
    assert value(after, "kafka_server_brokertopicmetrics_messagesin_total", topic=topic_name) == 5
    produce_count = "kafka_server_brokertopicmetrics_totalproducerequests_total"
    assert value(after, produce_count, topic=topic_name) == 6
    connections = "kafka_server_socket_server_metrics_connection_count"
    was_open = value(opened, connections, listener="PLAINTEXT")
    assert was_open >= 1
    _wait(  # the broker sees the close a moment later
        "the closed connection to be counted",
        lambda: value(scrape(url), connections, listener="PLAINTEXT") <= was_open - 1,
    )
    assert value(after, "kafka_controller_kafkacontroller_activecontrollercount") == 1
    assert value(after, "kafka_server_replicamanager_leadercount") >= 1
    assert value(after, "process_cpu_seconds_total") > 0


def test_log_flush_latency_counts_every_flush(
    metered: tuple[BrokerProcess, str], topic_name: str
) -> None:
    broker, url = metered
    create_topic(broker.bootstrap, topic_name, partitions=1, config={"flush.messages": "1"})
    before = scrape(url)
    produce_acked(
        broker.bootstrap, topic_name, [(0, None, b"%d" % i) for i in range(4)], linger_ms=0
    )
    after = scrape(url)
    name = "kafka_log_logflushstats_logflushrateandtimems_count"
    assert value(after, name) - value(before, name) >= 1
    assert value(after, "kafka_log_logflushstats_logflushrateandtimems_sum") > 0


def _lag_from_cli(bootstrap: str, group: str) -> dict[tuple[str, int], int]:
    result = strom(
        "consumer-groups", "--bootstrap-server", bootstrap, "--describe", "--group", group
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    header = lines[0].split()
    out = {}
    for line in lines[1:]:
        row = dict(zip(header, line.split(), strict=False))
        out[(row["TOPIC"], int(row["PARTITION"]))] = int(row["LAG"])
    return out


def test_consumer_group_lag_is_what_consumer_groups_prints(
    metered: tuple[BrokerProcess, str], topic_name: str
) -> None:
    from confluent_kafka import Consumer, TopicPartition

    broker, url = metered
    create_topic(broker.bootstrap, topic_name, partitions=2)
    produce_acked(broker.bootstrap, topic_name, [(i % 2, None, b"%d" % i) for i in range(100)])
    group = f"lagging-{topic_name}"
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group})
    try:
        consumer.commit(
            offsets=[TopicPartition(topic_name, 0, 20), TopicPartition(topic_name, 1, 45)],
            asynchronous=False,
        )
    finally:
        consumer.close()
    samples = scrape(url)
    lag = {
        (dict(ls)["topic"], int(dict(ls)["partition"])): int(v)
        for (n, ls), v in samples.items()
        if n == "kafka_consumergroup_lag" and dict(ls)["consumergroup"] == group
    }
    assert lag == {(topic_name, 0): 30, (topic_name, 1): 5}
    assert lag == _lag_from_cli(broker.bootstrap, group)
    current = "kafka_consumergroup_current_offset"
    assert value(samples, current, consumergroup=group, topic=topic_name, partition="1") == 45
    lag_sum = "kafka_consumergroup_lag_sum"
    assert value(samples, lag_sum, consumergroup=group, topic=topic_name) == 35


def test_a_bad_metrics_listener_is_refused_at_start(
    broker_factory: BrokerFactory, require_strom: None
) -> None:
    from strom.testing import BrokerExitedError

    with pytest.raises(BrokerExitedError, match=r"metrics\.listener.*http://HOST:PORT"):
        broker_factory({"metrics.listener": "tcp://127.0.0.1:1"})


# -- a cluster: under-replicated partitions, ISR shrinks and expands ----------------------


def _wait(what: str, check: Callable[[], bool], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _wait_for_more(url: str, before: Samples, name: str) -> None:
    _wait(f"{name} to grow", lambda: value(scrape(url), name) > value(before, name))


@pytest.mark.slow
def test_isr_shrink_and_expand_in_a_cluster(
    cluster_factory: Callable[..., Cluster], topic_name: str
) -> None:
    ports = {i: free_port() for i in range(3)}

    def per_broker(i: int) -> Mapping[str, str]:
        return {"metrics.listener": f"http://127.0.0.1:{ports[i]}"}

    cluster = cluster_factory(
        3, {"replica.lag.time.max.ms": "2000"}, per_broker=per_broker, session_timeout_ms=20000
    )
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    new = NewTopic(topic_name, 1, 3, config={"min.insync.replicas": "3"})
    admin.create_topics([new])[topic_name].result(30)
    # (wait_for retries while a broker does not know the new topic yet)
    cluster.wait_for("the ISR", lambda: len(cluster.partition(topic_name).isr_nodes) == 3)
    leader = cluster.leader(topic_name)
    url = f"http://127.0.0.1:{ports[leader]}/metrics"
    # not the controller: it must stay awake to take the leader's AlterPartition
    controller = cluster.controller_id()
    follower = next(i for i in range(3) if i not in (leader, controller))
    before = scrape(url)
    assert value(before, "kafka_server_replicamanager_underreplicatedpartitions") == 0
    cluster.broker(follower).pause()  # SIGSTOP: it stops fetching, its session lives on
    try:
        # a follower that is behind (not merely idle) leaves the ISR (Kafka's isCaughtUp)
        produce_acked(cluster.bootstrap, topic_name, [(0, None, b"behind")], acks="1")
        _wait_for_more(url, before, "kafka_server_replicamanager_isrshrinks_total")
        shrunk = scrape(url)
        assert value(shrunk, "kafka_server_replicamanager_underreplicatedpartitions") == 1
        assert value(shrunk, "kafka_server_replicamanager_underminisrpartitioncount") == 1
    finally:
        cluster.broker(follower).resume()
    _wait_for_more(url, before, "kafka_server_replicamanager_isrexpands_total")
    healed = scrape(url)
    assert value(healed, "kafka_server_replicamanager_underreplicatedpartitions") == 0
    controllers = sum(
        value(
            scrape(f"http://127.0.0.1:{p}/metrics"),
            "kafka_controller_kafkacontroller_activecontrollercount",
        )
        for p in ports.values()
    )
    assert controllers == 1


def test_the_grafana_dashboard_uses_exported_metrics(
    metered: tuple[BrokerProcess, str], topic_name: str
) -> None:
    """Every series the dashboard queries is one the endpoint exports (after a workload
    that makes each of them appear)."""
    import json
    from pathlib import Path

    from confluent_kafka import Consumer, TopicPartition

    broker, url = metered
    create_topic(broker.bootstrap, topic_name, partitions=1)
    produce_acked(broker.bootstrap, topic_name, [(0, None, b"x")])
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "dashboard"})
    consumer.commit(offsets=[TopicPartition(topic_name, 0, 0)], asynchronous=False)
    consumer.close()
    batch = build_batch([(None, b"x", (), int(time.time() * 1000))])
    missing = ProduceRequest(
        acks=1,
        topic_data=[
            ProduceRequest.TopicProduceData(
                topic_name, [ProduceRequest.PartitionProduceData(9, batch)]
            )
        ],
    )
    with RawClient(broker.bootstrap) as raw:  # an error, for the errors panel
        assert raw.request(missing, 9).responses[0].partition_responses[0].error_code == 3
    exported = {name for name, _ in scrape(url)}
    path = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "strom-dashboard.json"
    dashboard = json.loads(path.read_text())
    queries = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])] + [
        v["definition"] for v in dashboard["templating"]["list"] if "definition" in v
    ]
    used = {m for q in queries for m in re.findall(r"\b(?:kafka|process)_[a-z_]+", q)}
    assert len(used) >= 25
    assert used - exported == set()
    assert {p["title"] for p in dashboard["panels"]} >= {"Lag per partition", "Connections"}
