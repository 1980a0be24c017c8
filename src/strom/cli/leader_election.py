"""``strom leader-election``: kafka-leader-election.sh (LeaderElectionCommand).

Elects the preferred replica (``--election-type PREFERRED``) or, for partitions
without a leader, any live replica (``UNCLEAN``) of one partition (``--topic``
with ``--partition``), of the partitions of a JSON file (``--path-to-json-file``)
or of every partition (``--all-topic-partitions``). Prints Kafka's lines:
"Successfully completed leader election (PREFERRED) for partitions t-0, t-1",
"Valid replica already elected for partitions ...", and for each failure "Error
completing leader election (PREFERRED) for partition: t-0: <exception>"; failures
end with "N replica(s) could not be elected" and exit code 1.
"""

from __future__ import annotations

import argparse

from strom.cli.common import CliError, add_command_config, client_config
from strom.cli.kafka_errors import exception_text
from strom.cli.reassign_json import parse_election, read_text
from strom.client.admin_types import ElectionType
from strom.client.sync import Admin
from strom.common.types import TopicPartition
from strom.protocol.errors import ErrorCode, KafkaError

_EXCLUSIVE = ("topic", "all-topic-partitions", "path-to-json-file")


def _election_type(text: str) -> ElectionType:
    try:
        return ElectionType[text.upper()]
    except KeyError:
        raise argparse.ArgumentTypeError(
            f"invalid election type {text!r} (PREFERRED or UNCLEAN)"
        ) from None


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--bootstrap-server",
        metavar="HOST:PORT",
        help="A hostname and port for the broker to connect to, in the form host:port. "
        "Multiple comma separated URLs can be given. REQUIRED.",
    )
    add_command_config(p, "--admin.config")
    p.add_argument(
        "--election-type",
        type=_election_type,
        metavar="PREFERRED|UNCLEAN",
        help='Type of election to attempt: "preferred" elects the preferred replica when it '
        'is not the leader; "unclean" elects a replica of a partition without a leader. '
        "REQUIRED.",
    )
    p.add_argument(
        "--topic",
        help="Name of topic for which to perform an election. Not allowed if "
        "--path-to-json-file or --all-topic-partitions is specified.",
    )
    p.add_argument(
        "--partition",
        type=int,
        metavar="N",
        help="Partition id for which to perform an election. REQUIRED if --topic is specified.",
    )
    p.add_argument(
        "--all-topic-partitions",
        action="store_true",
        help="Perform election on all of the eligible topic partitions based on the type of "
        "election. Not allowed if --topic or --path-to-json-file is specified.",
    )
    p.add_argument(
        "--path-to-json-file",
        metavar="FILE",
        help="The JSON file with the list of partitions for which leader elections should be "
        'performed: {"partitions": [{"topic": "foo", "partition": 1}, {"topic": "foobar", '
        '"partition": 2}]}. Not allowed if --all-topic-partitions or --topic is specified.',
    )


def _validate(args: argparse.Namespace) -> None:
    """LeaderElectionCommandOptions.validate's checks and messages."""
    missing = [
        name
        for name, value in (
            ("bootstrap-server", args.bootstrap_server),
            ("election-type", args.election_type),
        )
        if value is None
    ]
    if missing:
        raise CliError("Missing required option(s): " + ", ".join(missing))
    given = [args.topic is not None, args.all_topic_partitions, args.path_to_json_file is not None]
    if sum(given) != 1:
        raise CliError(
            "One and only one of the following options is required: " + ", ".join(_EXCLUSIVE)
        )
    if args.topic is not None and args.partition is None:
        raise CliError("Missing required option(s): partition")
    if args.topic is None and args.partition is not None:
        raise CliError("Option partition is only allowed if topic is used")


def run(args: argparse.Namespace) -> int:
    _validate(args)
    partitions: set[TopicPartition] | None = None
    if args.path_to_json_file is not None:
        partitions = parse_election(read_text(args.path_to_json_file))
    elif args.topic is not None:
        partitions = {TopicPartition(args.topic, args.partition)}
    kind: ElectionType = args.election_type
    with Admin(client_config(args)) as admin:
        try:
            results = admin.elect_leaders(kind, partitions)
        except KafkaError as exc:
            if exc.code == ErrorCode.REQUEST_TIMED_OUT:
                print("Timeout waiting for election results")
                raise CliError("Timeout waiting for election results") from None
            if exc.code == ErrorCode.CLUSTER_AUTHORIZATION_FAILED:
                print("Not authorized to perform leader election")
                raise CliError("Not authorized to perform leader election") from None
            raise
    report(kind, results)
    return 0


def report(kind: ElectionType, results: dict[TopicPartition, KafkaError | None]) -> None:
    """Print the outcome as LeaderElectionCommand does (partitions sorted); CliError
    when any partition failed."""
    done = sorted(tp for tp, err in results.items() if err is None)
    noop = sorted(
        tp
        for tp, err in results.items()
        if err is not None and err.code == ErrorCode.ELECTION_NOT_NEEDED
    )
    failed = {
        tp: err
        for tp, err in sorted(results.items())
        if err is not None and err.code != ErrorCode.ELECTION_NOT_NEEDED
    }
    if done:
        print(
            f"Successfully completed leader election ({kind.name}) for partitions "
            + ", ".join(map(str, done))
        )
    if noop:
        print("Valid replica already elected for partitions " + ", ".join(map(str, noop)))
    for tp, err in failed.items():
        print(
            f"Error completing leader election ({kind.name}) for partition: {tp}: "
            f"{exception_text(err)}"
        )
    if failed:
        raise CliError(f"{len(failed)} replica(s) could not be elected")
