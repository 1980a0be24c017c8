"""``strom consumer-groups --reset-offsets``: plan (and with --execute, commit) new
offsets for inactive groups, as kafka-consumer-groups.sh does."""

from __future__ import annotations

import argparse
import sys
import time

from strom.cli.common import CliError
from strom.client import group_tables as tables
from strom.client.admin_types import OffsetSpec
from strom.client.group_tools import (
    ResetError,
    ResetKind,
    ResetSpec,
    export_reset_csv,
    parse_datetime_ms,
    parse_duration_ns,
    parse_reset_csv,
    parse_topic_arg,
    plan_reset,
    timestamp_before,
)
from strom.client.sync import Admin
from strom.common.types import TopicPartition


def _reset_spec(args: argparse.Namespace, now_ms: int) -> ResetSpec:
    try:
        if args.to_offset is not None:
            return ResetSpec(ResetKind.TO_OFFSET, args.to_offset)
        if args.shift_by is not None:
            return ResetSpec(ResetKind.SHIFT_BY, args.shift_by)
        if args.to_datetime is not None:
            return ResetSpec(ResetKind.TO_DATETIME, parse_datetime_ms(args.to_datetime))
        if args.by_duration is not None:
            duration_ns = parse_duration_ns(args.by_duration)
            return ResetSpec(ResetKind.BY_DURATION, timestamp_before(now_ms, duration_ns))
    except ResetError as exc:
        raise CliError(str(exc)) from None
    if args.from_file is not None:
        return ResetSpec(ResetKind.FROM_FILE)
    if args.to_earliest:
        return ResetSpec(ResetKind.TO_EARLIEST)
    if args.to_latest:
        return ResetSpec(ResetKind.TO_LATEST)
    return ResetSpec(ResetKind.TO_CURRENT)


def reset(admin: Admin, args: argparse.Namespace, groups: list[str]) -> int:
    """--reset-offsets of ``groups``: the plan as a table or CSV; 1 if a group is active."""
    if not args.dry_run and not args.execute:
        print(
            "WARN: No action will be performed as the --execute option is missing. "
            "In a future major release, the default behavior of this command will be to "
            "prompt the user before executing the reset rather than doing a dry run. You "
            "should add the --dry-run option explicitly if you are scripting this command "
            "and want to keep the current default behavior without prompting.",
            file=sys.stderr,
        )
    spec = _reset_spec(args, time.time_ns() // 1_000_000)
    from_file = _read_plan_file(args, groups) if spec.kind is ResetKind.FROM_FILE else None
    descriptions = admin.describe_groups(groups)
    plans: dict[str, dict[TopicPartition, int]] = {}
    refused = []
    for group in groups:
        state = descriptions[group].state
        if state not in ("Empty", "Dead"):
            refused.append(
                f"Assignments can only be reset if the group '{group}' is inactive, "
                f"but the current state is {state}."
            )
            continue
        if from_file is not None and group not in from_file:
            refused.append(f"No reset plan for group {group} found")
            continue
        file_offsets = None if from_file is None else from_file[group]
        plans[group] = _plan_group(admin, args, group, spec, file_offsets)
        if args.execute and plans[group]:
            admin.alter_group_offsets(group, plans[group])
    if plans and args.export:
        print(export_reset_csv(plans, single_group=len(args.group or ()) == 1))
    elif plans:
        sys.stdout.write(tables.reset_table(plans))
    for line in refused:
        print(f"Error: {line}", file=sys.stderr)
    return 1 if refused else 0


def _read_plan_file(
    args: argparse.Namespace, groups: list[str]
) -> dict[str, dict[TopicPartition, int]]:
    try:
        with open(args.from_file, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise CliError(f"cannot read {args.from_file}: {exc.strerror or exc}") from None
    try:
        return parse_reset_csv(text, groups[0] if len(args.group or ()) == 1 else None)
    except ResetError as exc:
        raise CliError(str(exc)) from None


def _plan_group(
    admin: Admin,
    args: argparse.Namespace,
    group: str,
    spec: ResetSpec,
    file_offsets: dict[TopicPartition, int] | None = None,
) -> dict[TopicPartition, int]:
    committed = admin.list_group_offsets(group)
    if file_offsets is not None:
        tps = sorted(file_offsets)
    elif args.all_topics:
        tps = sorted(committed)
    else:
        tps = _topic_partitions(admin, args.topic)
    if not tps:
        return {}
    starts = _offsets(admin, tps, OffsetSpec.EARLIEST)
    ends = _offsets(admin, tps, OffsetSpec.LATEST)
    by_time = _offsets(admin, tps, spec.value) if spec.kind.by_timestamp else None
    try:
        plan = plan_reset(
            tps,
            spec,
            committed=committed,
            log_start_offsets=starts,
            log_end_offsets=ends,
            timestamp_offsets=by_time,
            file_offsets=file_offsets,
        )
    except ResetError as exc:
        raise CliError(str(exc)) from None
    for warning in plan.warnings:
        print(warning, file=sys.stderr)
    return plan.offsets


def _offsets(admin: Admin, tps: list[TopicPartition], spec: int) -> dict[TopicPartition, int]:
    found = admin.list_offsets(dict.fromkeys(tps, int(spec)))
    return {tp: r.offset for tp, r in found.items()}


def _topic_partitions(admin: Admin, topic_args: list[str]) -> list[TopicPartition]:
    """``--topic`` values -> partitions; whole topics are looked up. Unknown
    partitions fail as Kafka's checkAllTopicPartitionsValid does."""
    try:
        parsed = [parse_topic_arg(a) for a in topic_args]
    except ResetError as exc:
        raise CliError(str(exc)) from None
    descriptions = admin.describe_topics(sorted({t for t, _ in parsed}))
    out: list[TopicPartition] = []
    missing: list[TopicPartition] = []
    for topic, partitions in parsed:
        existing = {p.partition for p in descriptions[topic].partitions}
        for p in sorted(existing) if partitions is None else partitions:
            (out if p in existing else missing).append(TopicPartition(topic, p))
    if missing:
        names = ",".join(str(tp) for tp in missing)
        raise CliError(f'The partitions "{names}" do not exist')
    return sorted(set(out))
