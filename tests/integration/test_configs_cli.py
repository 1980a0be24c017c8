"""``strom configs`` (kafka-configs.sh) against a live broker: Kafka's describe
lines and messages; entity types the broker does not implement fail with what
the broker answered."""

from __future__ import annotations

import re
import subprocess

import pytest

from strom.testing.broker import BrokerProcess
from tests.integration.cli_helpers import create, new_topic, strom

pytestmark = pytest.mark.integration


def configs(broker: BrokerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return strom("configs", "--bootstrap-server", broker.bootstrap, *args)


def test_topic_configs_describe_and_alter(broker: BrokerProcess) -> None:
    topic = new_topic("cfg")
    create(broker.bootstrap, topic, 1, "--config", "retention.ms=3600000")
    r = configs(broker, "--describe", "--entity-type", "topics", "--entity-name", topic)
    assert r.returncode == 0, r.stderr
    header, line = r.stdout.splitlines()
    assert header == f"Dynamic configs for topic {topic} are:"
    assert re.fullmatch(
        r"  retention\.ms=3600000 sensitive=false "
        r"synonyms=\{DYNAMIC_TOPIC_CONFIG:retention\.ms=3600000(, [A-Z_]+:[a-z.]+=\d+)*\}",
        line,
    ), line
    r = configs(
        broker,
        "--alter",
        "--topic",
        topic,
        "--add-config",
        "cleanup.policy=[compact,delete], max.message.bytes = 2000",
        "--delete-config",
        "retention.ms",
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"Completed updating config for topic {topic}.\n"
    lines = configs(broker, "--describe", "--topic", topic).stdout.splitlines()
    assert lines[0] == f"Dynamic configs for topic {topic} are:"
    assert [line.split(" sensitive=")[0] for line in lines[1:]] == [
        "  cleanup.policy=compact,delete",
        "  max.message.bytes=2000",
    ]
    every = configs(broker, "--describe", "--topic", topic, "--all").stdout.splitlines()
    assert every[0] == f"All configs for topic {topic} are:"
    assert any(line.startswith("  segment.bytes=1073741824 sensitive=false ") for line in every)
    bad = configs(broker, "--alter", "--topic", topic, "--delete-config", "retention.ms")
    assert bad.returncode == 1 and bad.stderr.strip() == "Error: Invalid config(s): retention.ms"
    missing = configs(broker, "--describe", "--topic", "no-such-topic")
    assert (
        missing.stdout
        == "The topic 'no-such-topic' doesn't exist and doesn't have dynamic config.\n"
    )


def test_broker_and_broker_default_configs(broker: BrokerProcess) -> None:
    r = configs(broker, "--alter", "--broker-defaults", "--add-config", "log.retention.ms=7200000")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "Completed updating default config for brokers in the cluster.\n"
    r = configs(broker, "--describe", "--entity-type", "brokers", "--entity-default")
    assert r.stdout.splitlines() == [
        "Default configs for brokers in the cluster are:",
        "  log.retention.ms=7200000 sensitive=false "
        "synonyms={DYNAMIC_DEFAULT_BROKER_CONFIG:log.retention.ms=7200000}",
    ]
    every = configs(broker, "--describe", "--entity-type", "brokers").stdout.splitlines()
    assert re.fullmatch(r"Dynamic configs for broker \d+ are:", every[0])
    assert every[-2:] == r.stdout.splitlines()  # the default entity comes last
    r = configs(broker, "--alter", "--broker-defaults", "--delete-config", "log.retention.ms")
    assert r.returncode == 0, r.stderr
    bad = configs(broker, "--describe", "--broker", "one")
    assert bad.stderr.strip() == (
        "Error: The entity name for brokers must be a valid integer broker id, but it is: one"
    )


@pytest.mark.parametrize(
    ("args", "api", "what"),
    [
        (
            ["--describe", "--entity-type", "users", "--entity-name", "alice"],
            "DescribeClientQuotas (API key 48)",
            "users cannot be described",
        ),
        (
            ["--describe", "--user", "alice", "--client", "app"],
            "DescribeClientQuotas (API key 48)",
            "clients and users cannot be described",
        ),
        (
            ["--alter", "--client-defaults", "--add-config", "consumer_byte_rate=1024"],
            "DescribeClientQuotas (API key 48)",
            "clients cannot be altered",
        ),
    ],
)
def test_quota_entities_fail_naming_the_api_the_broker_lacks(
    broker: BrokerProcess, require_strom: None, args: list[str], api: str, what: str
) -> None:
    r = configs(broker, *args)
    assert r.returncode == 1
    assert r.stderr.strip() == (
        f"Error: The broker does not support {api}: its ApiVersions answer lists no version of "
        f"it, so the quota configs of {what}."
    )


def test_broker_loggers_show_what_the_broker_answers(
    broker: BrokerProcess, require_strom: None
) -> None:
    describe = configs(
        broker, "--describe", "--entity-type", "broker-loggers", "--entity-name", "1"
    )
    assert describe.returncode == 0, describe.stderr
    assert describe.stdout == "Dynamic configs for broker-logger 1 are:\n"  # no loggers listed
    alter = configs(broker, "--alter", "--broker-logger", "1", "--add-config", "root=DEBUG")
    assert alter.returncode == 1
    assert (
        alter.stderr.strip()
        == "Error: Invalid broker logger(s): root (the broker lists no loggers)"
    )
    group = configs(broker, "--describe", "--group", "g", "--all")
    assert group.returncode == 1
    assert group.stderr.strip().endswith("INVALID_REQUEST: Unsupported resource type 32")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--describe"], "At least one entity type must be specified"),
        (
            ["--describe", "--alter", "--topic", "t"],
            "Command must include exactly one action: --describe, --alter",
        ),
        (
            ["--describe", "--entity-name", "x", "--topic", "t"],
            "--entity-{type,name,default} should not be used in conjunction with specific "
            "entity flags",
        ),
        (
            ["--alter", "--topic", "t"],
            "At least one of --add-config, --add-config-file, or --delete-config must be "
            "specified with --alter",
        ),
        (
            ["--alter", "--topic", "t", "--add-config", "a=b=c"],
            'Invalid entity config: all configs to be added must be in the format "key=val" or '
            ' "key=[val1,val2]" to group values which contain commas.',
        ),
        (
            ["--describe", "--entity-type", "things"],
            "Invalid entity type things, the entity type must be one of broker-loggers, topics, "
            "clients, users, brokers, ips, client-metrics, groups with a --bootstrap-server or "
            "--bootstrap-controller argument",
        ),
        (
            ["--describe", "--topic", "a", "--broker", "1"],
            "Only 'users' and 'clients' entity types may be specified together",
        ),
        (
            ["--alter", "--entity-type", "topics", "--add-config", "a=b"],
            "An entity name must be specified with --alter of topics",
        ),
    ],
)
def test_usage_errors_have_kafkas_messages(args: list[str], message: str) -> None:
    r = strom("configs", "--bootstrap-server", "127.0.0.1:1", *args)
    assert r.returncode == 1
    assert r.stderr.strip() == f"Error: {message}"
