"""The ``strom`` command: one entry point for the broker and the tools.

Exit codes: 0 on success, 1 with a one-line ``Error: ...`` on an expected
failure (bad arguments, broker errors, unreachable servers), 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import NoReturn

from strom.cli.common import CliError
from strom.protocol.errors import KafkaError

Command = Callable[[argparse.Namespace], int]

# name: (help, module in strom.cli). The module's add_arguments(parser) and run(args) make
# the tool ("module:add_fn:run_fn" names others). A tool's module is imported only when that
# tool runs or prints its help: `strom --help` imports none of them.
_TOOLS: dict[str, tuple[str, str]] = {
    "topics": (
        "create, list, describe, alter and delete topics",
        "topics",
    ),
    "console-producer": (
        "produce lines from standard input",
        "console_producer",
    ),
    "console-consumer": (
        "print records to standard output",
        "console_consumer",
    ),
    "consumer-groups": (
        "list, describe, delete consumer groups; reset and delete their offsets",
        "consumer_groups",
    ),
    "producer-perf-test": (
        "measure producer throughput and latency (kafka-producer-perf-test)",
        "perf_producer:add_producer_arguments:run_producer",
    ),
    "consumer-perf-test": (
        "measure consumer throughput (kafka-consumer-perf-test)",
        "perf_consumer:add_consumer_arguments:run_consumer",
    ),
    "configs": (
        "describe and alter configs of topics, brokers, users, clients (kafka-configs)",
        "configs",
    ),
    "get-offsets": (
        "print the offsets of partitions at a time (kafka-get-offsets)",
        "get_offsets",
    ),
    "delete-records": (
        "delete records before offsets given in a JSON file (kafka-delete-records)",
        "delete_records",
    ),
    "log-dirs": (
        "describe the log directories of brokers (kafka-log-dirs)",
        "log_dirs",
    ),
    "broker-api-versions": (
        "print the API versions each broker supports (kafka-broker-api-versions)",
        "broker_api_versions",
    ),
    "transactions": (
        "list, describe, abort and find hanging transactions (kafka-transactions)",
        "transactions",
    ),
    "reassign-partitions": (
        "move partitions between brokers: generate, execute, verify, cancel, list "
        "(kafka-reassign-partitions)",
        "reassign_partitions",
    ),
    "leader-election": (
        "elect the preferred (or an unclean) leader of partitions (kafka-leader-election)",
        "leader_election",
    ),
    "cluster": (
        "print the cluster id, or the brokers and the controller (kafka-cluster)",
        "cluster",
    ),
    "dump-log": (
        "print the batches and records of a log segment",
        "dump_log",
    ),
    "console": (
        "a web console: cluster, topics, messages, consumer groups and their lag",
        "console.command",
    ),
    "size": (
        "size a cluster for a workload: brokers, partitions, disk, network, memory",
        "sizing",
    ),
}


class _Parser(argparse.ArgumentParser):
    """Usage errors become CliError (exit 1 with one ``Error:`` line)."""

    def error(self, message: str) -> NoReturn:
        raise CliError(f"{message} (see {self.prog} --help)")


def version() -> str:
    """strom's version, as installed (``strom --version``)."""
    from importlib import metadata  # ~15 ms: only when asked

    try:
        return metadata.version("strom")
    except metadata.PackageNotFoundError:
        return "unknown"


class _VersionAction(argparse.Action):
    """``--version``: looks the version up only when given."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: object) -> None:
        super().__init__(
            option_strings, dest, nargs=0, default=argparse.SUPPRESS, help="print the version"
        )

    def __call__(self, parser: argparse.ArgumentParser, *args: object) -> None:
        print(f"strom {version()}")
        parser.exit()


def tool(name: str) -> tuple[Callable[[argparse.ArgumentParser], None], Command]:
    """The add-arguments and run functions of tool ``name`` (importing its module)."""
    module_name, _, funcs = _TOOLS[name][1].partition(":")
    add_name, _, run_name = funcs.partition(":")
    module = importlib.import_module(f"strom.cli.{module_name}")
    add: Callable[[argparse.ArgumentParser], None] = getattr(module, add_name or "add_arguments")
    run: Command = getattr(module, run_name or "run")
    return add, run


def build_parser(tools: Iterable[str] | None = None) -> argparse.ArgumentParser:
    """strom's parser; the arguments of ``tools`` (default: every tool) are added, the
    others are listed with their help only."""
    with_arguments = set(_TOOLS if tools is None else tools)
    parser = _Parser(prog="strom", description="strom: a Kafka-compatible broker")
    parser.add_argument("--version", action=_VersionAction)
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
    for name, (help_text, _) in _TOOLS.items():
        parser_of_tool = sub.add_parser(name, help=help_text, description=help_text)
        parser_of_tool.add_argument("--version", action=_VersionAction)
        if name in with_arguments:
            tool(name)[0](parser_of_tool)
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


def _expected_errors() -> tuple[type[Exception], ...]:
    """The errors printed as one ``Error:`` line (the client's import waits for one:
    ``strom broker`` and ``strom --help`` need none of it)."""
    from strom.client.config import ConfigError

    return (CliError, KafkaError, ConfigError)


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        if args_list and args_list[0] == "broker":
            return broker(args_list[1:])
        if args_list and args_list[0] == "dev-cluster":
            return dev_cluster(args_list[1:])
        if args_list and args_list[0] == "verify":
            return verify(args_list[1:])
        chosen = [args_list[0]] if args_list and args_list[0] in _TOOLS else []
        args = build_parser(chosen).parse_args(args_list)
        _log_to_stderr()
        return tool(args.command)[1](args)
    except _expected_errors() as exc:  # evaluated only when something is raised
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
