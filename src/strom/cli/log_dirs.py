"""``strom log-dirs``: kafka-log-dirs.sh --describe (Kafka's LogDirsCommand).

Prints "Querying brokers for log directories information", "Received log
directory information from brokers 1,2", then one JSON line laid out as
Kafka's Jackson/HashMap output is (the same key order, no spaces).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from strom.cli.common import CliError, add_bootstrap, add_command_config, client_config, run_admin
from strom.client.admin_types import LogDirDescription
from strom.client.aio.admin import AIOAdmin
from strom.protocol.errors import ErrorCode

# Kafka reports a log dir error as the exception's class name.
_ERROR_CLASSES = {
    ErrorCode.KAFKA_STORAGE_ERROR: "org.apache.kafka.common.errors.KafkaStorageException",
    ErrorCode.CLUSTER_AUTHORIZATION_FAILED: (
        "org.apache.kafka.common.errors.ClusterAuthorizationException"
    ),
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_bootstrap(p)
    add_command_config(p)
    p.add_argument(
        "--describe",
        action="store_true",
        required=True,
        help="REQUIRED: Describe the specified log directories on the specified brokers.",
    )
    p.add_argument(
        "--topic-list",
        default="",
        metavar="TOPICS",
        help='The list of topics to be queried in the form "topic1,topic2,topic3". All topics '
        "will be queried if no topic list is specified",
    )
    p.add_argument(
        "--broker-list",
        default="",
        metavar="IDS",
        help='The list of brokers to be queried in the form "0,1,2". All brokers in the cluster '
        "will be queried if no broker list is specified",
    )


def _ids(text: str) -> set[int]:
    try:
        return {int(x) for x in text.split(",") if x}
    except ValueError:
        raise CliError(f'For input string: "{text}"') from None


def _error_name(code: int) -> str | None:
    if code == ErrorCode.NONE:
        return None
    try:
        return _ERROR_CLASSES.get(ErrorCode(code), ErrorCode(code).name)
    except ValueError:
        return str(code)


def as_json(by_broker: dict[int, list[LogDirDescription]], topics: set[str]) -> str:
    """Kafka's formatAsJson: HashMap key order ("brokers" before "version", "partitions",
    "error", "logDir"; "partition", "size", "offsetLag", "isFuture")."""
    brokers: list[dict[str, Any]] = []
    for broker, dirs in sorted(by_broker.items()):
        log_dirs = []
        for d in dirs:
            partitions = [
                {
                    "partition": str(tp),
                    "size": r.size,
                    "offsetLag": r.offset_lag,
                    "isFuture": r.is_future,
                }
                for tp, r in sorted(d.replicas.items())
                if not topics or tp.topic in topics
            ]
            log_dirs.append(
                {"partitions": partitions, "error": _error_name(d.error_code), "logDir": d.log_dir}
            )
        brokers.append({"broker": broker, "logDirs": log_dirs})
    return json.dumps({"brokers": brokers, "version": 1}, separators=(",", ":"))


def run(args: argparse.Namespace) -> int:
    topics = {t for t in args.topic_list.split(",") if t}
    wanted = _ids(args.broker_list)
    config = client_config(args)
    config.setdefault("client.id", "log-dirs-tool")

    async def work(admin: AIOAdmin) -> str:
        cluster = {b.node_id for b in (await admin.describe_cluster()).brokers}
        missing = wanted - cluster
        if missing:
            raise CliError(
                "The given brokers do not exist from --broker-list: "
                f"{','.join(map(str, sorted(missing)))}. Current existent brokers: "
                f"{','.join(map(str, sorted(cluster)))}"
            )
        brokers = sorted(wanted or cluster)
        print("Querying brokers for log directories information", flush=True)
        described = await admin.describe_log_dirs(brokers)
        print(f"Received log directory information from brokers {','.join(map(str, brokers))}")
        return as_json(described, topics)

    print(run_admin(config, work))
    return 0
