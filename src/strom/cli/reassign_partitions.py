"""``strom reassign-partitions``: kafka-reassign-partitions.sh (ReassignPartitionsCommand).

``--generate`` proposes an assignment of the topics of ``--topics-to-move-json-file``
over ``--broker-list`` (Kafka's AdminUtils: round robin from a random start,
rack-aware unless ``--disable-rack-aware``); ``--execute`` starts the reassignment of
``--reassignment-json-file`` (printing the current assignment to roll back to);
``--verify``, ``--cancel`` and ``--list`` follow it. The texts are Kafka's.

strom has no replication quotas: ``--throttle`` and ``--replica-alter-log-dirs-throttle``
are refused, so there are no throttles for ``--verify``/``--cancel`` to clear
(``--preserve-throttles`` is accepted and changes nothing). Replicas move between
brokers only: a ``log_dirs`` entry other than "any" is refused.
"""

from __future__ import annotations

import argparse
import contextlib
import random

from strom.cli.common import CliError, add_bootstrap, add_command_config, client_config
from strom.cli.kafka_errors import exception_message
from strom.cli.reassign_json import (
    Assignment,
    duplicates,
    format_reassignment,
    parse_broker_list,
    parse_execute,
    parse_reassignment,
    parse_topics,
    read_text,
    refuse_log_dirs,
)
from strom.client.sync import Admin
from strom.common.assignment import AssignmentError, assign_replicas
from strom.common.types import TopicPartition
from strom.protocol.errors import ErrorCode, KafkaError

_ACTIONS = {
    "generate": "Generate a candidate partition reassignment configuration. Note that this "
    "only generates a candidate assignment, it does not execute it.",
    "execute": "Kick off the reassignment as specified by the --reassignment-json-file option.",
    "verify": "Verify if the reassignment completed as specified by the "
    "--reassignment-json-file option.",
    "cancel": "Cancel an active reassignment.",
    "list": "List all active partition reassignments.",
}
# the options each action requires and the ones it allows besides (Kafka's tables)
_REQUIRED = {
    "generate": ("topics_to_move_json_file", "broker_list"),
    "execute": ("reassignment_json_file",),
    "verify": ("reassignment_json_file",),
    "cancel": ("reassignment_json_file",),
    "list": (),
}
_PERMITTED = {
    "generate": ("disable_rack_aware",),
    "execute": ("additional", "throttle", "replica_alter_log_dirs_throttle", "timeout"),
    "verify": ("preserve_throttles",),
    "cancel": ("preserve_throttles", "timeout"),
    "list": (),
}
_OPTIONS = (
    "reassignment_json_file",
    "topics_to_move_json_file",
    "broker_list",
    "disable_rack_aware",
    "throttle",
    "replica_alter_log_dirs_throttle",
    "timeout",
    "additional",
    "preserve_throttles",
)
CANNOT_EXECUTE = (
    "Cannot execute because there is an existing partition assignment.  Use --additional "
    "to override this and create a new partition assignment in addition to the existing "
    "one. The --additional flag can also be used to change the throttle by resubmitting "
    "the current reassignment."
)
NO_THROTTLES = (
    "{flag}: strom has no replication quotas, so a reassignment cannot be throttled; "
    "run it without {flag}"
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_bootstrap(p)
    add_command_config(p)
    for action, help_text in _ACTIONS.items():
        p.add_argument(f"--{action}", action="store_true", help=help_text)
    p.add_argument(
        "--reassignment-json-file",
        metavar="FILE",
        help='The JSON file with the partition reassignment configuration: {"partitions": '
        '[{"topic": "foo", "partition": 1, "replicas": [1,2,3], "log_dirs": '
        '["any","any","any"]}], "version": 1} ("log_dirs" is optional; strom takes "any" only)',
    )
    p.add_argument(
        "--topics-to-move-json-file",
        metavar="FILE",
        help="Generate a reassignment configuration to move the partitions of the specified "
        "topics to the list of brokers specified by the --broker-list option: "
        '{"topics": [{"topic": "foo"},{"topic": "foo1"}], "version": 1}',
    )
    p.add_argument(
        "--broker-list",
        metavar="IDS",
        help="The list of brokers to which the partitions need to be reassigned in the form "
        '"0,1,2"',
    )
    p.add_argument(
        "--disable-rack-aware", action="store_true", help="Disable rack aware replica assignment"
    )
    for flag in ("--throttle", "--replica-alter-log-dirs-throttle"):
        p.add_argument(
            flag, type=int, metavar="B/S", help="refused: strom has no replication quotas"
        )
    p.add_argument(
        "--timeout",
        type=int,
        metavar="MS",
        help="The maximum time in ms to wait for log directory replica assignment to begin "
        "(no effect: strom moves no log directories here)",
    )
    p.add_argument(
        "--additional",
        action="store_true",
        help="Execute this reassignment in addition to any other ongoing ones.",
    )
    p.add_argument(
        "--preserve-throttles",
        action="store_true",
        help="Do not modify broker or topic throttles (strom sets none).",
    )


def _action(args: argparse.Namespace) -> str:
    chosen = [a for a in _ACTIONS if getattr(args, a)]
    if len(chosen) != 1:
        names = ", ".join(f"--{a}" for a in _ACTIONS)
        raise CliError(f"Command must include exactly one action: {names}")
    action = chosen[0]
    for option in _REQUIRED[action]:
        if getattr(args, option) in (None, False):
            raise CliError(f'Missing required argument "[{_flag(option)}]"')
    for option in _OPTIONS:
        used = getattr(args, option) not in (None, False)
        if used and option not in _REQUIRED[action] + _PERMITTED[action]:
            raise CliError(f'Option "[{_flag(option)}]" can\'t be used with action "[{action}]"')
    for option in ("throttle", "replica_alter_log_dirs_throttle"):
        if getattr(args, option) is not None:
            raise CliError(NO_THROTTLES.format(flag="--" + _flag(option)))
    return action


def _flag(dest: str) -> str:
    return dest.replace("_", "-")


def run(args: argparse.Namespace) -> int:
    action = _action(args)
    # the files are read and checked before connecting
    if action == "generate":
        brokers = parse_broker_list(args.broker_list)
        topics = parse_topics(read_text(args.topics_to_move_json_file))
    elif action == "execute":
        proposed = parse_execute(read_text(args.reassignment_json_file))
    elif action != "list":
        parts, log_dirs = parse_reassignment(read_text(args.reassignment_json_file))
        refuse_log_dirs(log_dirs)
    with Admin(client_config(args, {"client.id": "reassign-partitions-tool"})) as admin:
        if action == "generate":
            generate(admin, topics, brokers, rack_aware=not args.disable_rack_aware)
        elif action == "execute":
            execute(admin, proposed, args.additional)
        elif action == "verify":
            verify(admin, parts)
        elif action == "cancel":
            cancel(admin, parts)
        else:
            print(current_reassignments(admin))
    return 0


def _replicas(admin: Admin, topics: set[str]) -> dict[TopicPartition, list[int]]:
    """Each partition's replicas; "Topic t not found." for an unknown topic."""
    out: dict[TopicPartition, list[int]] = {}
    for name in sorted(topics):
        try:
            described = admin.describe_topics([name])[name]
        except KafkaError as exc:
            if exc.code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION:
                raise CliError(f"Topic {name} not found.") from None
            raise
        for p in described.partitions:
            out[TopicPartition(name, p.partition)] = list(p.replicas)
    return out


def generate(admin: Admin, topics: list[str], brokers: list[int], *, rack_aware: bool) -> None:
    repeated = duplicates(topics)
    if repeated:
        raise CliError(
            f"List of topics to reassign contains duplicate entries: [{', '.join(repeated)}]"
        )
    current = _replicas(admin, set(topics))
    wanted = set(brokers)
    racks = {
        b.node_id: b.rack if rack_aware else None
        for b in admin.describe_cluster().brokers
        if b.node_id in wanted
    }
    with_rack = sum(1 for r in racks.values() if r is not None)
    if with_rack and with_rack != len(racks):
        raise CliError(
            "Not all brokers have rack information. Add --disable-rack-aware in command line "
            "to make replica assignment without rack information."
        )
    proposed: dict[TopicPartition, list[int]] = {}
    for topic in sorted({tp.topic for tp in current}):
        count = sum(1 for tp in current if tp.topic == topic)
        rf = len(current[TopicPartition(topic, 0)])
        try:
            assigned = assign_replicas(
                count,
                rf,
                racks,
                start_index=random.randrange(max(1, len(racks))),
                shift=random.randrange(max(1, len(racks))),
            )
        except AssignmentError as exc:
            raise CliError(str(exc)) from None
        proposed.update({TopicPartition(topic, i): list(r) for i, r in enumerate(assigned)})
    print(f"Current partition replica assignment\n{format_reassignment(current)}\n")
    print(f"Proposed partition reassignment configuration\n{format_reassignment(proposed)}")


def execute(admin: Admin, proposed: dict[TopicPartition, list[int]], additional: bool) -> None:
    if not additional and admin.list_partition_reassignments():
        raise CliError(CANNOT_EXECUTE)
    known = {b.node_id for b in admin.describe_cluster().brokers}
    unknown = sorted({r for replicas in proposed.values() for r in replicas} - known)
    if unknown:
        raise CliError(f"Unknown broker id {unknown[0]}")
    current = _replicas(admin, {tp.topic for tp in proposed})
    missing = sorted(set(proposed) - set(current))
    if missing:
        raise CliError(f"Unable to find partition: {', '.join(map(str, missing))}")
    rollback = format_reassignment({tp: current[tp] for tp in proposed})
    print(
        f"Current partition replica assignment\n\n{rollback}\n\n"
        "Save this to use as the --reassignment-json-file option during rollback"
    )
    outcome = admin.alter_partition_reassignments(proposed)
    _raise_errors("Error reassigning partition(s):", outcome)
    plural = "" if len(proposed) == 1 else "s"
    print(
        f"Successfully started partition reassignment{plural} for "
        + ",".join(str(tp) for tp in sorted(proposed))
    )


def _raise_errors(title: str, outcome: dict[TopicPartition, KafkaError | None]) -> None:
    failed = {tp: err for tp, err in outcome.items() if err is not None}
    if failed:
        lines = [f"{tp}: {exception_message(err)}" for tp, err in sorted(failed.items())]
        raise CliError("\n".join([title, *lines]))


def verify(admin: Admin, parts: Assignment) -> None:
    ongoing = admin.list_partition_reassignments()
    lines = ["Status of partition reassignment:"]
    current: dict[TopicPartition, list[int]] = {}
    for topic in sorted({tp.topic for tp, _ in parts if tp not in ongoing}):
        with contextlib.suppress(CliError):  # an unknown topic has no replicas
            current.update(_replicas(admin, {topic}))
    for tp, target in sorted(parts):
        if tp in ongoing:
            lines.append(f"Reassignment of partition {tp} is still in progress.")
            continue
        replicas = current.get(tp, [])
        if replicas == target:
            lines.append(f"Reassignment of partition {tp} is completed.")
        else:
            lines.append(
                f"There is no active reassignment of partition {tp}, but replica set is "
                f"{_ids(replicas)} rather than {_ids(target)}."
            )
    print("\n".join(lines))


def cancel(admin: Admin, parts: Assignment) -> None:
    ongoing = admin.list_partition_reassignments([tp for tp, _ in parts])
    # Kafka's condition, verbatim: a reassignment that only adds replicas stays
    cancelling = sorted(
        tp for tp, r in ongoing.items() if not r.adding_replicas or r.removing_replicas
    )
    if cancelling:
        outcome = admin.alter_partition_reassignments(dict.fromkeys(cancelling))
        plural = "" if len(cancelling) == 1 else "s"
        _raise_errors(f"Error cancelling partition reassignment{plural} for:", outcome)
        print(
            f"Successfully cancelled partition reassignment{plural} for: "
            + ",".join(str(tp) for tp in cancelling)
        )
    else:
        print("None of the specified partition reassignments are active.")
    print("None of the specified partition moves are active.")


def current_reassignments(admin: Admin) -> str:
    """Kafka's curReassignmentsToString."""
    lines = []
    for tp, r in sorted(admin.list_partition_reassignments().items()):
        line = f"{tp}: replicas: {_ids(r.replicas)}."
        if r.adding_replicas:
            line += f" adding: {_ids(r.adding_replicas)}."
        if r.removing_replicas:
            line += f" removing: {_ids(r.removing_replicas)}."
        lines.append(line)
    if not lines:
        return "No partition reassignments found."
    return "Current partition reassignments:\n" + "\n".join(lines)


def _ids(ids: list[int] | tuple[int, ...]) -> str:
    return ",".join(str(i) for i in ids)
