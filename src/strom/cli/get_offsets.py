"""``strom get-offsets``: kafka-get-offsets.sh (Kafka's GetOffsetShell).

Prints ``topic:partition:offset`` for every partition the filters select, sorted
as Kafka sorts them (by the text ``topic-partition``); a partition without an
offset for the time asked (-1) is left out, and one whose lookup fails is
reported on standard error and skipped.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass

from strom.cli.common import (
    CliError,
    add_bootstrap,
    add_command_config,
    client_config,
    include_pattern,
    run_admin,
)
from strom.client.aio.admin import AIOAdmin
from strom.common.types import TopicPartition
from strom.protocol.errors import KafkaError

TOPIC_PARTITION_PATTERN = r"([^:,]*)(?::(?:([0-9]*)|(?:([0-9]*)-([0-9]*))))?"
INT_MAX = 2_147_483_647
_SPECS = {
    "latest": -1,
    "earliest": -2,
    "max-timestamp": -3,
    "earliest-local": -4,
    "latest-tiered": -5,
    "earliest-pending-upload": -6,
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_bootstrap(p)
    p.add_argument(
        "--topic-partitions",
        metavar="topic1:1,topic2:0-3,topic3,topic4:5-,topic5:-3",
        help="Comma separated list of topic-partition patterns to get the offsets for, with "
        f"the format of '{TOPIC_PARTITION_PATTERN}'. The first group is an optional regex for "
        "the topic name, if omitted, it matches any topic name. The section after ':' "
        "describes a 'partition' pattern, which can be: a number, a range in the format of "
        "'NUMBER-NUMBER' (lower inclusive, upper exclusive), an inclusive lower bound in the "
        "format of 'NUMBER-', an exclusive upper bound in the format of '-NUMBER' or may be "
        "omitted to accept all partitions.",
    )
    p.add_argument(
        "--topic",
        help="The topic to get the offsets for. It also accepts a regular expression. If not "
        "present, all authorized topics are queried. Cannot be used if --topic-partitions is "
        "present.",
    )
    p.add_argument(
        "--partitions",
        metavar="IDS",
        help="Comma separated list of partition ids to get the offsets for. If not present, "
        "all partitions of the authorized topics are queried. Cannot be used if "
        "--topic-partitions is present.",
    )
    p.add_argument(
        "--time",
        default="latest",
        metavar="TIMESTAMP",
        help="timestamp of the offsets before that: <timestamp> / -1 or latest / -2 or "
        "earliest / -3 or max-timestamp / -4 or earliest-local / -5 or latest-tiered / -6 or "
        "earliest-pending-upload (default latest). [Note: No offset is returned, if the "
        "timestamp greater than recently committed record timestamp is given.]",
    )
    add_command_config(p)
    p.add_argument(
        "--exclude-internal-topics",
        action="store_true",
        help="By default, internal topics are included. If specified, internal topics are "
        "excluded.",
    )


def parse_time(text: str) -> int:
    """GetOffsetShell.parseOffsetSpec: a name, -1..-6, or a timestamp in ms."""
    if text in _SPECS:
        return _SPECS[text]
    try:
        return int(text)
    except ValueError:
        raise CliError(
            f"Malformed time argument {text}. Please use -1 or latest / -2 or earliest / -3 "
            "or max-timestamp / -4 or earliest-local / -5 or latest-tiered / -6 or "
            "earliest-pending-upload, or a specified long format timestamp"
        ) from None


@dataclass(frozen=True, slots=True)
class Rule:
    """A topic filter and a partition filter (Kafka's TopicFilterAndPartitionFilter)."""

    topic: re.Pattern[str]
    partition: Callable[[int], bool]


def parse_rules(args: argparse.Namespace) -> list[Rule]:
    """The filters of --topic-partitions, or of --topic and --partitions."""
    if args.topic_partitions is not None:
        if args.topic is not None or args.partitions is not None:
            raise CliError("--topic-partitions cannot be used with --topic or --partitions")
        return [_rule(spec) for spec in args.topic_partitions.split(",")]
    wanted: set[int] = set()
    if args.partitions:
        try:
            wanted = {int(p) for p in args.partitions.split(",")}
        except ValueError:
            raise CliError(
                "--partitions expects a comma separated list of numeric partition ids, but "
                f"received: {args.partitions}"
            ) from None
    topic = include_pattern(args.topic if args.topic is not None else ".*")
    return [Rule(topic, lambda p: not wanted or p in wanted)]


def _rule(spec: str) -> Rule:
    match = re.fullmatch(TOPIC_PARTITION_PATTERN, spec)
    if match is None:
        raise CliError(f"Invalid rule specification: {spec}")
    topic, single, low, high = (g or None for g in match.groups())
    pattern = include_pattern(topic or ".*")
    if single is not None:
        return Rule(pattern, lambda p: p == int(single))
    lower = int(low) if low is not None else 0
    upper = int(high) if high is not None else INT_MAX
    return Rule(pattern, lambda p: lower <= p < upper)


async def _partitions(
    admin: AIOAdmin, rules: list[Rule], exclude_internal: bool
) -> list[TopicPartition]:
    names = await admin.list_topics(include_internal=not exclude_internal)
    topics = [n for n in names if any(r.topic.fullmatch(n) for r in rules)]
    described = await admin.describe_topics(topics) if topics else {}
    return [
        TopicPartition(name, p.partition)
        for name, d in described.items()
        for p in d.partitions
        if any(r.topic.fullmatch(name) and r.partition(p.partition) for r in rules)
    ]


async def fetch_offsets(
    admin: AIOAdmin, rules: list[Rule], spec: int, exclude_internal: bool
) -> dict[TopicPartition, int]:
    """The offset per selected partition; failures are reported and skipped."""
    tps = await _partitions(admin, rules, exclude_internal)
    if not tps:
        raise CliError("Could not match any topic-partitions with the specified filters")
    try:
        listed = await admin.list_offsets(dict.fromkeys(tps, spec))
        found = {tp: r.offset for tp, r in listed.items()}
    except KafkaError:
        found = {}
        for tp in tps:  # one by one, to name each partition that fails
            try:
                found[tp] = (await admin.list_offsets({tp: spec}))[tp].offset
            except KafkaError as exc:
                print(
                    f"Skip getting offsets for topic-partition {tp} due to error: {exc}",
                    file=sys.stderr,
                )
    return {tp: found[tp] for tp in sorted(found, key=str) if found[tp] != -1}


def run(args: argparse.Namespace) -> int:
    rules = parse_rules(args)
    spec = parse_time(args.time)
    config = client_config(args, {"client.id": "GetOffsetShell"})
    config["client.id"] = "GetOffsetShell"

    async def work(admin: AIOAdmin) -> dict[TopicPartition, int]:
        return await fetch_offsets(admin, rules, spec, args.exclude_internal_topics)

    for tp, offset in run_admin(config, work).items():
        print(f"{tp.topic}:{tp.partition}:{offset}")
    return 0
