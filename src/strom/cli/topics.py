"""``strom topics``: kafka-topics.sh (create, list, describe, alter, delete)."""

from __future__ import annotations

import argparse
import re
from typing import TYPE_CHECKING

from strom.cli import topics_describe
from strom.cli.common import (
    CliError,
    add_bootstrap,
    add_command_config,
    client_config,
    parse_properties,
)
from strom.protocol.errors import ErrorCode, KafkaError

if TYPE_CHECKING:  # the client is imported when the tool runs, not for its --help
    from strom.client.sync import Admin

_ACTIONS = {
    "create": "Create a new topic.",
    "list": "List all available topics.",
    "describe": "List details for the given topics.",
    "alter": "Alter the number of partitions and replica assignment. "
    "(To alter topic configurations, the strom configs tool can be used.)",
    "delete": "Delete a topic.",
}
# Kafka's TopicCommand text, naming strom's tool instead of kafka-configs
CONFIGS_TOOL_NOTE = " (To alter topic configurations, the strom configs tool can be used.)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_bootstrap(p)
    add_command_config(p)
    actions = p.add_mutually_exclusive_group(required=True)
    for action, help_text in _ACTIONS.items():
        actions.add_argument(f"--{action}", action="store_true", help=help_text)
    p.add_argument(
        "--topic",
        help="The topic to create, alter, describe or delete. It also accepts a regular "
        "expression, except for --create option.",
    )
    p.add_argument(
        "--partitions",
        type=int,
        metavar="N",
        help="The number of partitions for the topic being created or altered. If not "
        "supplied with --create, the topic uses the cluster default.",
    )
    p.add_argument(
        "--replication-factor",
        type=int,
        metavar="N",
        help="The replication factor for each partition in the topic being created. If not "
        "supplied, the topic uses the cluster default.",
    )
    p.add_argument(
        "--config",
        action="append",
        metavar="KEY=VALUE",
        help="A topic configuration override for the topic being created. It is supported "
        "only in combination with --create." + CONFIGS_TOOL_NOTE,
    )
    p.add_argument(
        "--if-not-exists",
        action="store_true",
        help="If set when creating topics, the action will only execute if the topic does "
        "not already exist.",
    )
    p.add_argument(
        "--if-exists",
        action="store_true",
        help="If set when altering or deleting or describing topics, the action will only "
        "execute if the topic exists.",
    )
    p.add_argument(
        "--exclude-internal",
        action="store_true",
        help="Exclude internal topics when listing or describing topics. By default, the "
        "internal topics are included.",
    )
    p.add_argument(
        "--partition-size-limit-per-response",
        type=int,
        default=2000,
        metavar="N",
        help="The maximum partition size to be included in one DescribeTopicPartitions response.",
    )
    topics_describe.add_report_arguments(p)


def run(args: argparse.Namespace) -> int:
    config = client_config(args)
    topics_describe.check_report_arguments(args, next(a for a in _ACTIONS if getattr(args, a)))
    if args.create:
        _check_create(args)
    elif args.alter and args.config:
        raise CliError(
            'Option combination "[bootstrap-server],[config]" can\'t be used with option '
            '"[alter]"' + CONFIGS_TOOL_NOTE
        )
    elif not args.list and not args.topic and (args.alter or args.delete):
        raise CliError("--topic is required with --alter and --delete")
    from strom.client.sync import Admin

    with Admin(config) as admin:
        if args.create:
            _create(admin, args)
        elif args.list:
            for name in _matching(admin, args.topic, args.exclude_internal):
                print(name)
        elif args.describe:
            _describe(admin, args)
        elif args.alter:
            _alter(admin, args)
        else:
            _delete(admin, args)
    return 0


def _check_create(args: argparse.Namespace) -> None:
    if not args.topic:
        raise CliError("--topic is required with --create")
    if args.partitions is not None and args.partitions < 1:
        raise CliError("The partitions must be greater than 0")
    if args.replication_factor is not None and args.replication_factor < 1:
        raise CliError("The replication factor must be greater than 0")


def _create(admin: Admin, args: argparse.Namespace) -> None:
    from strom.client.admin_types import NewTopic

    topic = NewTopic(
        args.topic,
        -1 if args.partitions is None else args.partitions,
        -1 if args.replication_factor is None else args.replication_factor,
        parse_properties(args.config, "--config"),
    )
    if "." in args.topic or "_" in args.topic:
        print(
            "WARNING: Due to limitations in metric names, topics with a period ('.') or "
            "underscore ('_') could collide. To avoid issues it is best to use either, "
            "but not both."
        )
    try:
        admin.create_topics([topic])
    except KafkaError as exc:
        if exc.code == ErrorCode.TOPIC_ALREADY_EXISTS:
            if args.if_not_exists:
                return
            raise CliError(f"Topic '{args.topic}' already exists.") from None
        raise
    print(f"Created topic {args.topic}.")


def _matching(admin: Admin, pattern: str | None, exclude_internal: bool) -> list[str]:
    names = admin.list_topics(include_internal=not exclude_internal)
    if pattern is None:
        return names
    try:
        regex = re.compile(pattern)
    except re.error:
        return [n for n in names if n == pattern]
    return [n for n in names if regex.fullmatch(n)]


def _targets(admin: Admin, args: argparse.Namespace) -> list[str]:
    names = _matching(admin, args.topic, args.exclude_internal)
    if args.topic and not names and not args.if_exists:
        raise CliError(f"Topic '{args.topic}' does not exist as expected")
    return names


def _describe(admin: Admin, args: argparse.Namespace) -> None:
    names = _targets(admin, args)
    if names:
        topics_describe.describe(admin, args, names)


def _alter(admin: Admin, args: argparse.Namespace) -> None:
    if args.partitions is None:
        raise CliError("--alter needs --partitions")
    names = _targets(admin, args)
    if names:
        admin.create_partitions(dict.fromkeys(names, args.partitions))


def _delete(admin: Admin, args: argparse.Namespace) -> None:
    names = _targets(admin, args)
    if names:
        admin.delete_topics(names)
