"""``strom consumer-groups``: kafka-consumer-groups.sh (list, describe, delete,
reset offsets, delete offsets).

Tables go to standard output exactly as Kafka lays them out; notes such as
"has no active members." go to standard error as Kafka prints them. A failure
ends with one ``Error: ...`` line and exit code 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from strom.cli.common import CliError, add_bootstrap, add_command_config, client_config
from strom.cli.consumer_groups_reset import reset
from strom.client import group_tables as tables
from strom.client.group_tools import (
    ResetError,
    parse_topic_arg,
)
from strom.client.group_types import (
    GROUP_STATES,
    GROUP_TYPES,
    REBALANCING_STATES,
    GroupDescription,
)
from strom.client.sync import Admin
from strom.common.types import TopicPartition
from strom.protocol.errors import ErrorCode, KafkaError

_ACTIONS = ("list", "describe", "delete", "reset-offsets", "delete-offsets")
_SCENARIOS = (
    "to-offset",
    "shift-by",
    "to-datetime",
    "by-duration",
    "to-earliest",
    "to-latest",
    "to-current",
    "from-file",
)

# Kafka's Errors messages for the codes this tool reports.
_MESSAGES = {
    ErrorCode.NON_EMPTY_GROUP: "The group is not empty.",
    ErrorCode.GROUP_ID_NOT_FOUND: "The group id does not exist.",
    ErrorCode.INVALID_GROUP_ID: "The configured groupId is invalid.",
    ErrorCode.GROUP_AUTHORIZATION_FAILED: "Group authorization failed.",
    ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC: "The consumer group is actively subscribed to the topic",
    ErrorCode.UNKNOWN_TOPIC_OR_PARTITION: "This server does not host this topic-partition.",
    ErrorCode.TOPIC_AUTHORIZATION_FAILED: "Topic authorization failed.",
}


def _message(err: KafkaError) -> str:
    return _MESSAGES.get(err.code, str(err))


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_bootstrap(p)
    actions = p.add_mutually_exclusive_group(required=True)
    for action in _ACTIONS:
        actions.add_argument(f"--{action}", action="store_true", help=f"{action} consumer groups")
    p.add_argument("--group", action="append", help="the consumer group (repeatable)")
    p.add_argument("--all-groups", action="store_true", help="every consumer group")
    p.add_argument("--topic", action="append", help="topic or topic:0,1 (repeatable)")
    p.add_argument("--all-topics", action="store_true", help="every topic the group committed")
    p.add_argument("--members", action="store_true", help="describe the members")
    p.add_argument("--offsets", action="store_true", help="describe offsets and lag (default)")
    p.add_argument(
        "--state", nargs="?", const="", help="describe: the state; list: show/filter states"
    )
    p.add_argument(
        "--type",
        nargs="?",
        const="",
        help="list: show the group types, or only these (classic,consumer)",
    )
    p.add_argument("--verbose", action="store_true", help="more columns (describe)")
    p.add_argument("--dry-run", action="store_true", help="only show the reset (default)")
    p.add_argument("--execute", action="store_true", help="commit the reset")
    p.add_argument(
        "--to-offset", type=int, metavar="OFFSET", help="Reset offsets to a specific offset."
    )
    p.add_argument(
        "--shift-by",
        type=int,
        metavar="N",
        help="Reset offsets shifting current offset by 'n', where 'n' can be positive or negative.",
    )
    p.add_argument(
        "--to-datetime",
        metavar="YYYY-MM-DDTHH:mm:SS.sss",
        help="Reset offsets to offset from datetime. Format: 'YYYY-MM-DDTHH:mm:SS.sss'",
    )
    p.add_argument(
        "--by-duration",
        metavar="PnDTnHnMnS",
        help="Reset offsets to offset by duration from current timestamp. Format: 'PnDTnHnMnS'",
    )
    p.add_argument("--to-earliest", action="store_true", help="Reset offsets to earliest offset.")
    p.add_argument("--to-latest", action="store_true", help="Reset offsets to latest offset.")
    p.add_argument("--to-current", action="store_true", help="Reset offsets to current offset.")
    p.add_argument("--from-file", metavar="CSV", help="reset to the offsets in a CSV file")
    p.add_argument(
        "--export", action="store_true", help="print the reset plan as CSV (for --from-file)"
    )
    p.add_argument("--timeout", type=int, default=5000, metavar="MS", help="default 5000")
    add_command_config(p)


def run(args: argparse.Namespace) -> int:
    _check(args)
    config = client_config(args, {"request.timeout.ms": args.timeout})
    with Admin(config) as admin:
        if args.list:
            return _list(admin, args)
        if args.describe:
            return _describe(admin, args)
        if args.delete:
            return _delete(admin, args)
        if args.reset_offsets:
            return reset(admin, args, _target_groups(admin, args))
        return _delete_offsets(admin, args)


_RULES: tuple[tuple[Callable[[argparse.Namespace], bool], str], ...] = (
    (lambda a: bool(a.group and a.all_groups), "Option --group cannot be used with --all-groups"),
    (
        lambda a: bool(a.list and (a.group or a.all_groups)),
        "Option --group cannot be used with --list",
    ),
    (
        lambda a: a.describe and sum(map(bool, (a.members, a.offsets, _has_state(a)))) > 1,
        "Option --describe takes at most one of these options: --members, --offsets, --state",
    ),
    (lambda a: bool(a.describe and a.state), "Option --describe does not take a value for --state"),
    (
        lambda a: bool((a.members or a.offsets or a.verbose) and not a.describe),
        "Options --members, --offsets and --verbose need --describe",
    ),
    (
        lambda a: _has_state(a) and not (a.describe or a.list),
        "Option --state needs --describe or --list",
    ),
    (lambda a: a.type is not None and not a.list, "Option --type needs --list"),
    (
        lambda a: bool(a.export and not a.reset_offsets),
        "Option --export takes the following options: --reset-offsets",
    ),
    (
        lambda a: bool(a.delete and a.topic),
        "The consumer does not support topic-specific offset deletion from a consumer group.",
    ),
    (
        lambda a: bool(a.topic and not (a.reset_offsets or a.delete_offsets)),
        "Option --topic can be used with --reset-offsets and --delete-offsets only",
    ),
    (
        lambda a: a.delete_offsets and (not a.topic or len(a.group or ()) != 1),
        "Option --delete-offsets takes the following options: --group, --topic",
    ),
)


def _check(args: argparse.Namespace) -> None:
    """Kafka's ConsumerGroupCommandOptions.checkArgs, with --option spellings."""
    needs_group = args.describe or args.delete or args.reset_offsets
    if needs_group and not args.group and not args.all_groups:
        action = _action(args)
        raise CliError(f"Option --{action} takes one of these options: --all-groups, --group")
    for broken, message in _RULES:
        if broken(args):
            raise CliError(message)
    if args.reset_offsets:
        _check_reset(args)


def _check_reset(args: argparse.Namespace) -> None:
    if args.dry_run and args.execute:
        raise CliError("Option --reset-offsets only accepts one of --execute and --dry-run")
    chosen = [s for s in _SCENARIOS if _scenario_given(args, s)]
    if len(chosen) != 1:
        raise CliError(
            "Option --reset-offsets requires one of the following scenarios: "
            + ", ".join(f"--{s}" for s in _SCENARIOS)
        )
    if not args.all_topics and not args.topic and args.from_file is None:
        raise CliError("One of the reset scopes should be defined: --all-topics, --topic.")
    if args.all_topics and args.topic:
        raise CliError("Option --all-topics cannot be used with --topic")


def _action(args: argparse.Namespace) -> str:
    return next(a for a in _ACTIONS if getattr(args, a.replace("-", "_")))


def _has_state(args: argparse.Namespace) -> bool:
    return args.state is not None


def _scenario_given(args: argparse.Namespace, name: str) -> bool:
    value = getattr(args, name.replace("-", "_"))
    return value is not None and value is not False


def _consumer_groups(admin: Admin) -> list[str]:
    return [g.group_id for g in admin.list_groups() if g.is_consumer_group]


def _target_groups(admin: Admin, args: argparse.Namespace) -> list[str]:
    return _consumer_groups(admin) if args.all_groups else list(dict.fromkeys(args.group))


# -- list ----------------------------------------------------------------------


def _list(admin: Admin, args: argparse.Namespace) -> int:
    if not _has_state(args) and args.type is None:
        for group in _consumer_groups(admin):
            print(group)
        return 0
    states = _split(args.state)
    valid = {s.lower() for s in GROUP_STATES}
    if any(s.lower() not in valid for s in states):
        raise CliError(
            f"Invalid state list '{args.state}'. Valid states are: " + ", ".join(GROUP_STATES)
        )
    types = [t.lower() for t in _split(args.type)]
    if any(t not in {k.lower() for k in GROUP_TYPES} for t in types):
        raise CliError(
            f"Invalid types list '{args.type}'. Valid types are: " + ", ".join(GROUP_TYPES)
        )
    listings = [g for g in admin.list_groups(states or None, types) if g.is_consumer_group]
    sys.stdout.write(
        tables.listing_table(
            listings, include_state=_has_state(args), include_type=args.type is not None
        )
    )
    return 0


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


# -- describe ------------------------------------------------------------------


def _note_state(d: GroupDescription) -> bool:
    """Kafka's shouldPrintMemberState notes; False when the group does not exist."""
    if not d.exists:
        print(f"Error: Consumer group '{d.group_id}' does not exist.", file=sys.stderr)
        return False
    if d.state == "Empty":
        print(f"\nConsumer group '{d.group_id}' has no active members.", file=sys.stderr)
    elif d.state in REBALANCING_STATES:
        print(f"\nWarning: Consumer group '{d.group_id}' is rebalancing.", file=sys.stderr)
    return True


def _describe(admin: Admin, args: argparse.Namespace) -> int:
    status = 0
    for group in sorted(_target_groups(admin, args)):
        if args.members:
            d = admin.describe_groups([group])[group]
            if not _note_state(d):
                status = 1
                continue
            sys.stdout.write(tables.members_table(d, verbose=args.verbose))
        elif _has_state(args):
            d = admin.describe_groups([group])[group]
            if not _note_state(d):
                status = 1
                continue
            sys.stdout.write(tables.state_table(d, verbose=args.verbose))
        else:
            lag = admin.consumer_group_lag(group)
            if not _note_state(lag.description):
                status = 1
                continue
            if lag.partitions:
                sys.stdout.write(tables.offsets_table(group, lag.partitions, verbose=args.verbose))
    return status


# -- delete --------------------------------------------------------------------


def _delete(admin: Admin, args: argparse.Namespace) -> int:
    results = admin.delete_groups(_target_groups(admin, args))
    ok = [g for g, err in results.items() if err is None]
    failed = {g: err for g, err in results.items() if err is not None}
    quoted = ", ".join(f"'{g}'" for g in ok)
    if not failed:
        print(f"Deletion of requested consumer groups ({quoted}) was successful.")
        return 0
    print("Error: Deletion of some consumer groups failed:", file=sys.stderr)
    for group, err in failed.items():
        text = f"{err.code.name}: {_message(err)}"
        print(f"* Group '{group}' could not be deleted due to: {text}", file=sys.stderr)
    if ok:
        print(f"\nThese consumer groups were deleted successfully: {quoted}")
    return 1


# -- delete offsets ------------------------------------------------------------


def _delete_offsets(admin: Admin, args: argparse.Namespace) -> int:
    group = args.group[0]
    statuses: dict[TopicPartition, str] = {}
    tps: list[TopicPartition] = []
    for arg in args.topic:
        try:
            topic, partitions = parse_topic_arg(arg)
            if partitions is None:
                described = admin.describe_topics([topic])[topic]
                partitions = [p.partition for p in described.partitions]
        except ResetError as exc:
            raise CliError(str(exc)) from None
        except KafkaError as exc:
            statuses[TopicPartition(topic, -1)] = f"Error: {_message(exc)}"
            continue
        tps.extend(TopicPartition(topic, p) for p in partitions)
    try:
        results = admin.delete_group_offsets(group, tps) if tps else {}
    except KafkaError as exc:
        if exc.code in _MESSAGES:
            raise CliError(_message(exc)) from None
        raise
    for tp, err in results.items():
        statuses[tp] = "Successful" if err is None else f"Error: {_message(err)}"
    failed = any(s != "Successful" for s in statuses.values())
    if failed:
        print(
            "Error: Encountered some partition-level error, see the follow-up details.",
            file=sys.stderr,
        )
    else:
        print(f"Request succeeded for deleting offsets from group {group}.")
    sys.stdout.write(tables.delete_offsets_table(statuses))
    return 1 if failed else 0
