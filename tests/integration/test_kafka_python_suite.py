"""kafka-python's own integration suite (its test/integration: admin, consumer, producer,
transactions, groups) run unchanged against a strom broker, as kafka-python runs it
against an external Kafka (``KAFKA_URI``).

The suite is the source release pinned in tests/kafka_python_suite/pin.txt, fetched by
tests/kafka_python_suite/fetch.sh (`bash .ci/run` does) into .ci-thirdparty/kafka-python;
it runs with that release's own ``kafka`` package, whatever kafka-python is installed.
The broker is set up as the suite's Kafka 4.0 fixture sets its own
(servers/4.0.0/resources/kafka.properties in kafka-python's repository: broker id 0, four
partitions per new topic, an authorizer allowing everyone, session timeouts down to 1 s,
no initial rebalance delay). ``KAFKA_VERSION`` is 4.0.0, the release whose API versions
strom advertises: the suite's test_kafka_version_infer checks that kafka-python infers it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from strom.testing.broker import BrokerFactory, free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
SUITE = ROOT / ".ci-thirdparty" / "kafka-python"
KAFKA_VERSION = "4.0.0"
NOT_RUN = {
    # DescribeQuorum is KRaft's: a ZooKeeper-mode Kafka broker, as strom is, has no such API
    # (kafka-python then raises IncompatibleBrokerVersion before sending anything).
    "test/integration/test_admin_integration.py::test_describe_metadata_quorum",
    # The SSL fixture makes Java keystores for a broker it starts itself (its SASL tests
    # skip themselves with an external broker); strom's TLS and SASL are covered by
    # tests/integration/test_security_clients.py with kafka-python among the clients.
    "test/integration/test_ssl_integration.py",
}
FEWEST_PASSED = 50  # 53 of 3.0.12's tests run here: fewer means the suite did not run


def suite_settings(port: int) -> dict[str, str]:
    listener = f"PLAINTEXT://127.0.0.1:{port}"
    return {
        "broker.id": "0",
        "listeners": listener,
        "advertised.listeners": listener,
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "allow.everyone.if.no.acl.found": "true",
        "num.partitions": "4",
        "default.replication.factor": "1",
        "replica.lag.time.max.ms": "1000",
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "log.cleaner.enable": "false",
        "offsets.commit.timeout.ms": "500",
        "offsets.topic.num.partitions": "2",
        "group.min.session.timeout.ms": "1000",
        "group.initial.rebalance.delay.ms": "0",
    }


def test_kafka_python_integration_suite(
    broker_factory: BrokerFactory, require_strom: None, tmp_path: Path
) -> None:
    if not (SUITE / "test" / "integration" / "conftest.py").is_file():
        pytest.fail(
            f"kafka-python's suite is not fetched: bash {ROOT}/tests/kafka_python_suite/fetch.sh"
        )
    port = free_port()
    suite_broker = broker_factory(suite_settings(port), port=port)
    report = tmp_path / "report.xml"
    env = {
        **os.environ,
        "KAFKA_VERSION": KAFKA_VERSION,
        "KAFKA_URI": f"kafka://{suite_broker.bootstrap}",
        "KAFKA_ROOT": str(tmp_path),  # the fixture checks that a Kafka install is there
        "PYTHONPATH": str(SUITE),  # its kafka and test packages, not the installed ones
        "PYTHONWARNINGS": "",
    }
    argv = [sys.executable, "-m", "pytest", "test/integration", "-q", "-p", "no:cacheprovider"]
    # strom's plugin, hypothesis's and xdist's are not the suite's; its own config file
    # (setup.cfg) sets the rest, as when kafka-python runs it
    argv += ["-p", "no:strom", "-p", "no:hypothesispytest", "-p", "no:xdist"]
    argv += ["--timeout", "120", "--tb=short", "--log-level=WARNING", f"--junitxml={report}"]
    argv += [f"--deselect={test}" for test in sorted(NOT_RUN)]
    proc = subprocess.run(
        argv, cwd=SUITE, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    output = proc.stdout[-6000:] + proc.stderr[-3000:]
    assert report.is_file(), output
    suites = ET.parse(report).getroot()
    [totals] = suites.iter("testsuite")
    failed = [
        f"{case.get('classname')}::{case.get('name')}"
        for case in suites.iter("testcase")
        if case.find("failure") is not None or case.find("error") is not None
    ]
    assert not failed, f"{failed}\n{output}"
    ran = int(totals.get("tests", 0)) - int(totals.get("skipped", 0))
    assert ran >= FEWEST_PASSED, output
    assert proc.returncode == 0, output
