"""``strom topics --describe`` as TopicCommand prints it, with its partition reports.

A topic's line (``Topic: t  TopicId: ...  PartitionCount: 3  ReplicationFactor: 3
Configs: ...``) and one line a partition (leader, replicas, ISR, the replicas being
added and removed while a reassignment runs, ELR). The reports keep only some
partitions, and print no topic line:

- ``--under-replicated-partitions``: fewer in-sync replicas than the replication
  factor (during a reassignment, the factor without the replicas being added);
- ``--under-min-isr-partitions``: no leader, or fewer in-sync replicas than the
  topic's min.insync.replicas (from DescribeConfigs);
- ``--at-min-isr-partitions``: exactly min.insync.replicas in-sync replicas;
- ``--unavailable-partitions``: no leader, or a leader that is not a live broker.

Several reports print the partitions that match any of them.
``--topics-with-overrides`` prints only the lines of topics with configs overridden.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from typing import TYPE_CHECKING

from strom.cli.common import CliError, java_str
from strom.common.types import TopicPartition
from strom.protocol.errors import ErrorCode, KafkaError

if TYPE_CHECKING:  # the client is imported when the tool runs, not for its --help
    from strom.client.admin_types import (
        ConfigEntry,
        PartitionInfo,
        PartitionReassignment,
        TopicDescription,
    )
    from strom.client.sync import Admin

REPORTS = {
    "under_replicated_partitions": "If set when describing topics, only show "
    "under-replicated partitions.",
    "unavailable_partitions": "If set when describing topics, only show partitions whose "
    "leader is not available.",
    "under_min_isr_partitions": "If set when describing topics, only show partitions whose "
    "isr count is less than the configured minimum.",
    "at_min_isr_partitions": "If set when describing topics, only show partitions whose isr "
    "count is equal to the configured minimum.",
}
OVERRIDES = "topics_with_overrides"


def add_report_arguments(p: argparse.ArgumentParser) -> None:
    for dest, help_text in REPORTS.items():
        p.add_argument(f"--{_flag(dest)}", action="store_true", help=help_text)
    p.add_argument(
        f"--{_flag(OVERRIDES)}",
        action="store_true",
        help="If set when describing topics, only show topics that have overridden configs.",
    )


def _flag(dest: str) -> str:
    return dest.replace("_", "-")


def check_report_arguments(args: argparse.Namespace, action: str) -> None:
    """TopicCommandOptions.checkInvalidArgs for the reports: --describe only, and
    --topics-with-overrides with none of the others."""
    for dest in [*REPORTS, OVERRIDES]:
        if not getattr(args, dest):
            continue
        if action != "describe":
            raise CliError(f'Option "[{_flag(dest)}]" can\'t be used with option "[{action}]"')
        if dest != OVERRIDES and getattr(args, OVERRIDES):
            raise CliError(
                f'Option "[{_flag(dest)}]" can\'t be used with option "[{_flag(OVERRIDES)}]"'
            )


class _Partition:
    """TopicCommand's PartitionDescription: the report predicates of one partition."""

    def __init__(
        self, info: PartitionInfo, min_isr: int, reassignment: PartitionReassignment | None
    ) -> None:
        self.info = info
        self.min_isr = min_isr
        self.reassignment = reassignment

    def replication_factor(self) -> int:
        return replication_factor(self.info, self.reassignment)

    def has_leader(self) -> bool:
        return self.info.leader >= 0

    def matches(self, args: argparse.Namespace, live: set[int]) -> bool:
        isr = len(self.info.isr)
        return (
            (args.under_replicated_partitions and self.replication_factor() - isr > 0)
            or (
                args.unavailable_partitions
                and (not self.has_leader() or self.info.leader not in live)
            )
            or (args.under_min_isr_partitions and (not self.has_leader() or isr < self.min_isr))
            or (args.at_min_isr_partitions and isr == self.min_isr)
        )


def replication_factor(info: PartitionInfo, reassignment: PartitionReassignment | None) -> int:
    """During a reassignment, the replicas without the ones being added."""
    if reassignment is not None:
        changing = set(reassignment.adding_replicas) | set(reassignment.removing_replicas)
        if changing & set(info.replicas):
            return len(reassignment.replicas) - len(reassignment.adding_replicas)
    return len(info.replicas)


def describe(admin: Admin, args: argparse.Namespace, names: list[str]) -> None:
    """Print the topics ``names`` (existing, sorted) as TopicCommand.describeTopic."""
    from strom.client.admin_types import ConfigResource, ConfigResourceType

    try:
        descriptions = admin.describe_topic_partitions(
            names, partition_limit=args.partition_size_limit_per_response
        )
    except KafkaError as exc:
        if exc.code != ErrorCode.UNSUPPORTED_VERSION:
            raise
        descriptions = admin.describe_topics(names)  # older brokers: no ELR (N/A)
    configs = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, n) for n in names])
    live = {b.node_id for b in admin.describe_cluster().brokers}
    reassignments = _reassignments(admin, descriptions.values())
    reporting = any(getattr(args, dest) for dest in REPORTS)
    for name in names:
        d = descriptions[name]
        entries = configs.get(ConfigResource(ConfigResourceType.TOPIC, name), [])
        overridden = [e for e in entries if not e.is_default]
        if not reporting and d.partitions and (overridden or not args.topics_with_overrides):
            first = d.partitions[0]
            rf = replication_factor(first, reassignments.get(TopicPartition(name, 0)))
            shown = ",".join(f"{e.name}={java_str(e.value)}" for e in overridden)
            print(topic_line(d, rf, shown))
        if args.topics_with_overrides:
            continue
        min_isr = _min_isr(entries)
        for p in d.partitions:
            reassignment = reassignments.get(TopicPartition(name, p.partition))
            if not reporting or _Partition(p, min_isr, reassignment).matches(args, live):
                print(partition_line(name, p, reassignment))


def _reassignments(
    admin: Admin, topics: Iterable[TopicDescription]
) -> dict[TopicPartition, PartitionReassignment]:
    """The ongoing reassignments of the topics' partitions ({} when the broker does not
    support listing them or does not authorize it, as TopicCommand)."""
    tps = [TopicPartition(d.name, p.partition) for d in topics for p in d.partitions]
    try:
        return admin.list_partition_reassignments(tps)
    except KafkaError as exc:
        if exc.code in (ErrorCode.UNSUPPORTED_VERSION, ErrorCode.CLUSTER_AUTHORIZATION_FAILED):
            return {}
        raise


def _min_isr(entries: list[ConfigEntry]) -> int:
    value = next((e.value for e in entries if e.name == "min.insync.replicas"), None)
    try:
        return int(value) if value is not None else 1
    except ValueError:
        return 1


def topic_line(d: TopicDescription, rf: int, configs: str) -> str:
    """The topic's line of TopicCommand's TopicDescription.printDescription."""
    head = f"Topic: {d.name}"
    if d.topic_id != bytes(16):
        head += f"\tTopicId: {d.topic_id_str}"
    return (
        f"{head}\tPartitionCount: {len(d.partitions)}\tReplicationFactor: {rf}\tConfigs: {configs}"
    )


def partition_line(topic: str, p: PartitionInfo, reassignment: PartitionReassignment | None) -> str:
    """A partition's line of TopicCommand's PartitionDescription.printDescription."""
    leader = "none" if p.leader < 0 else str(p.leader)
    line = (
        f"\tTopic: {topic}\tPartition: {p.partition}\tLeader: {leader}\t"
        f"Replicas: {_ids(p.replicas)}\tIsr: {_ids(p.isr)}"
    )
    if reassignment is not None:
        line += (
            f"\tAdding Replicas: {_ids(reassignment.adding_replicas)}"
            f"\tRemoving Replicas: {_ids(reassignment.removing_replicas)}"
        )
    return line + f"\tElr: {_ids(p.elr)}\tLastKnownElr: {_ids(p.last_known_elr)}"


def _ids(ids: tuple[int, ...] | None) -> str:
    return "N/A" if ids is None else ",".join(str(i) for i in ids)
