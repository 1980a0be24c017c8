"""``strom topics``: kafka-topics.sh (create, list, describe, alter, delete)."""

from __future__ import annotations

import argparse
import re
import sys

from strom.cli.common import CliError, add_bootstrap, load_properties_file, parse_properties
from strom.client.admin_types import (
    ConfigResource,
    ConfigResourceType,
    ConfigSource,
    NewTopic,
    TopicDescription,
)
from strom.client.sync import Admin
from strom.protocol.errors import ErrorCode, KafkaError

_ACTIONS = ("create", "list", "describe", "alter", "delete")


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_bootstrap(p)
    actions = p.add_mutually_exclusive_group(required=True)
    for action in _ACTIONS:
        actions.add_argument(f"--{action}", action="store_true", help=f"{action} topics")
    p.add_argument("--topic", help="the topic (a regular expression except with --create)")
    p.add_argument(
        "--partitions", type=int, help="partition count (create, or increase with alter)"
    )
    p.add_argument("--replication-factor", type=int, help="replication factor (create)")
    p.add_argument("--config", action="append", metavar="KEY=VALUE", help="topic config (create)")
    p.add_argument("--if-not-exists", action="store_true", help="create only if absent")
    p.add_argument("--if-exists", action="store_true", help="alter/describe/delete only if present")
    p.add_argument("--exclude-internal", action="store_true", help="leave out internal topics")
    p.add_argument("--command-config", metavar="FILE", help="client config properties file")


def run(args: argparse.Namespace) -> int:
    config: dict[str, str | int] = {
        **load_properties_file(args.command_config),
        "bootstrap.servers": args.bootstrap_server,
    }
    if args.create:
        _check_create(args)
    elif not args.list and not args.topic and (args.alter or args.delete):
        raise CliError("--topic is required with --alter and --delete")
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
            "but not both.",
            file=sys.stderr,
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
    if not names:
        return
    descriptions = admin.describe_topics(names)
    resources = [ConfigResource(ConfigResourceType.TOPIC, n) for n in names]
    try:
        configs = admin.describe_configs(resources)
    except KafkaError:
        configs = {}
    for name in names:
        d = descriptions[name]
        entries = configs.get(ConfigResource(ConfigResourceType.TOPIC, name), [])
        shown = ",".join(
            f"{e.name}={'' if e.value is None else e.value}"
            for e in entries
            if not e.is_default and e.source != ConfigSource.DEFAULT_CONFIG
        )
        print(describe_lines(d, shown))


def describe_lines(d: TopicDescription, configs: str) -> str:
    """The text kafka-topics.sh --describe prints for one topic."""
    rf = len(d.partitions[0].replicas) if d.partitions else 0
    lines = [
        f"Topic: {d.name}\tTopicId: {d.topic_id_str}\tPartitionCount: {len(d.partitions)}\t"
        f"ReplicationFactor: {rf}\tConfigs: {configs}"
    ]
    for p in d.partitions:
        leader = "none" if p.leader < 0 else str(p.leader)
        line = (
            f"\tTopic: {d.name}\tPartition: {p.partition}\tLeader: {leader}\t"
            f"Replicas: {_ids(p.replicas)}\tIsr: {_ids(p.isr)}"
        )
        if p.offline_replicas:
            line += f"\tOffline: {_ids(p.offline_replicas)}"
        lines.append(line)
    return "\n".join(lines)


def _ids(ids: tuple[int, ...]) -> str:
    return ",".join(str(i) for i in ids)


def _alter(admin: Admin, args: argparse.Namespace) -> None:
    if args.config:
        raise CliError(
            "--config is not supported with --alter; use kafka-configs "
            "(incremental_alter_configs) to change topic configs"
        )
    if args.partitions is None:
        raise CliError("--alter needs --partitions")
    names = _targets(admin, args)
    if names:
        admin.create_partitions(dict.fromkeys(names, args.partitions))


def _delete(admin: Admin, args: argparse.Namespace) -> None:
    names = _targets(admin, args)
    if names:
        admin.delete_topics(names)
