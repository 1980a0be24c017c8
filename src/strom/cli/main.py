"""The ``strom`` command: one entry point for the broker and the tools.

Exit codes: 0 on success, 1 with a one-line ``Error: ...`` on an expected
failure (bad arguments, broker errors, unreachable servers), 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from importlib import metadata
from typing import NoReturn

from strom.cli import (
    broker_api_versions,
    cluster,
    configs,
    console_consumer,
    console_producer,
    consumer_groups,
    delete_records,
    dump_log,
    get_offsets,
    leader_election,
    log_dirs,
    perf_consumer,
    perf_producer,
    reassign_partitions,
    topics,
    transactions,
)
from strom.cli.common import CliError
from strom.client.config import ConfigError
from strom.protocol.errors import KafkaError

Command = Callable[[argparse.Namespace], int]

_TOOLS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Command]] = {
    "topics": ("create, list, describe, alter and delete topics", topics.add_arguments, topics.run),
    "console-producer": (
        "produce lines from standard input",
        console_producer.add_arguments,
        console_producer.run,
    ),
    "console-consumer": (
        "print records to standard output",
        console_consumer.add_arguments,
        console_consumer.run,
    ),
    "consumer-groups": (
        "list, describe, delete consumer groups; reset and delete their offsets",
        consumer_groups.add_arguments,
        consumer_groups.run,
    ),
    "producer-perf-test": (
        "measure producer throughput and latency (kafka-producer-perf-test)",
        perf_producer.add_producer_arguments,
        perf_producer.run_producer,
    ),
    "consumer-perf-test": (
        "measure consumer throughput (kafka-consumer-perf-test)",
        perf_consumer.add_consumer_arguments,
        perf_consumer.run_consumer,
    ),
    "configs": (
        "describe and alter configs of topics, brokers, users, clients (kafka-configs)",
        configs.add_arguments,
        configs.run,
    ),
    "get-offsets": (
        "print the offsets of partitions at a time (kafka-get-offsets)",
        get_offsets.add_arguments,
        get_offsets.run,
    ),
    "delete-records": (
        "delete records before offsets given in a JSON file (kafka-delete-records)",
        delete_records.add_arguments,
        delete_records.run,
    ),
    "log-dirs": (
        "describe the log directories of brokers (kafka-log-dirs)",
        log_dirs.add_arguments,
        log_dirs.run,
    ),
    "broker-api-versions": (
        "print the API versions each broker supports (kafka-broker-api-versions)",
        broker_api_versions.add_arguments,
        broker_api_versions.run,
    ),
    "transactions": (
        "list, describe, abort and find hanging transactions (kafka-transactions)",
        transactions.add_arguments,
        transactions.run,
    ),
    "reassign-partitions": (
        "move partitions between brokers: generate, execute, verify, cancel, list "
        "(kafka-reassign-partitions)",
        reassign_partitions.add_arguments,
        reassign_partitions.run,
    ),
    "leader-election": (
        "elect the preferred (or an unclean) leader of partitions (kafka-leader-election)",
        leader_election.add_arguments,
        leader_election.run,
    ),
    "cluster": (
        "print the cluster id, or the brokers and the controller (kafka-cluster)",
        cluster.add_arguments,
        cluster.run,
    ),
    "dump-log": (
        "print the batches and records of a log segment",
        dump_log.add_arguments,
        dump_log.run,
    ),
}


class _Parser(argparse.ArgumentParser):
    """Usage errors become CliError (exit 1 with one ``Error:`` line)."""

    def error(self, message: str) -> NoReturn:
        raise CliError(f"{message} (see {self.prog} --help)")


def version() -> str:
    """strom's version, as installed (``strom --version``)."""
    try:
        return metadata.version("strom")
    except metadata.PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="strom", description="strom: a Kafka-compatible broker")
    parser.add_argument(
        "--version", action="version", version=f"strom {version()}", help="print the version"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    sub.add_parser(
        "broker", help="run a broker (strom broker [server.properties] [--override k=v])"
    )
    sub.add_parser(
        "dev-cluster",
        help="run ZooKeeper and N brokers on 127.0.0.1 until Ctrl-C "
        "(strom dev-cluster --brokers 3 [--data DIR])",
    )
    sub.add_parser(
        "verify",
        help="check that acknowledged records survive faults injected into a dev-cluster "
        "(strom verify --duration 120 --faults kill-leader,pause [--report report.html])",
    )
    for name, (help_text, add_arguments, _) in _TOOLS.items():
        tool = sub.add_parser(name, help=help_text, description=help_text)
        tool.add_argument(
            "--version", action="version", version=f"strom {version()}", help="print the version"
        )
        add_arguments(tool)
    return parser


class _LogFormat(logging.Formatter):
    """Kafka's tools-log4j layout: ``[time] WARN message (logger)``."""

    def format(self, record: logging.LogRecord) -> str:
        level = "WARN" if record.levelno == logging.WARNING else record.levelname
        return f"[{self.formatTime(record)}] {level} {record.getMessage()} ({record.name})"


def _log_to_stderr() -> None:
    """Warnings of strom's client (what a retry waits for) go to standard error."""
    root = logging.getLogger("strom")
    if any(isinstance(h.formatter, _LogFormat) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_LogFormat())
    root.addHandler(handler)
    root.setLevel(logging.WARNING)


def broker(argv: list[str]) -> int:
    from strom.server.main import main as broker_main

    return broker_main(argv)


def dev_cluster(argv: list[str]) -> int:
    from strom.testing.devcluster import main as dev_cluster_main

    return dev_cluster_main(argv)


def verify(argv: list[str]) -> int:
    from strom.testing.verify import main as verify_main

    return verify_main(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        if args_list and args_list[0] == "broker":
            return broker(args_list[1:])
        if args_list and args_list[0] == "dev-cluster":
            return dev_cluster(args_list[1:])
        if args_list and args_list[0] == "verify":
            return verify(args_list[1:])
        args = build_parser().parse_args(args_list)
        _log_to_stderr()
        return _TOOLS[args.command][2](args)
    except (CliError, KafkaError, ConfigError) as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # e.g. `strom console-consumer ... | head`: stop quietly.
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
