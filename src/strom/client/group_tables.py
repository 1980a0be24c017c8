"""Consumer-group tables, laid out exactly as kafka-consumer-groups.sh prints them.

Kafka builds each line with ``%-Ns`` columns (left-aligned, padded to at
least N, never cut) joined by one space; most tables start with a blank line
and end with a newline. Each function returns the full text to write.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from strom.client.group_types import GroupDescription, GroupListing, PartitionLag
from strom.common.types import TopicPartition

MISSING = "-"


def _line(columns: Sequence[tuple[int, object]]) -> str:
    """``(width, value)`` pairs; width 0 means ``%s`` (no padding)."""
    return " ".join(f"{v!s:<{w}}" if w else str(v) for w, v in columns)


def _opt(value: object | None) -> str:
    return MISSING if value is None else str(value)


def listing_table(
    listings: Iterable[GroupListing], *, include_state: bool, include_type: bool = False
) -> str:
    """``--list --state`` / ``--type``: GROUP, then TYPE and STATE columns (group width:
    longest id, >= 15, + 10)."""
    rows = list(listings)
    width = max((max(15, len(g.group_id)) for g in rows), default=15) + 10
    cols = [(width, "GROUP")]
    cols += [(20, "TYPE")] if include_type else []
    cols += [(20, "STATE")] if include_state else []
    lines = [_line(cols)]
    for g in rows:
        values = [(width, g.group_id)]
        if include_type:
            values.append((20, _type_name(g.group_type)))
        if include_state:
            values.append((20, g.state or "Unknown"))
        lines.append(_line(values))
    return "\n".join(lines) + "\n"


def _type_name(group_type: str | None) -> str:
    """Kafka's GroupType names: Classic, Consumer, ... (Unknown when not reported)."""
    return group_type.capitalize() if group_type else "Unknown"


def offsets_table(group: str, rows: Sequence[PartitionLag], *, verbose: bool = False) -> str:
    """``--describe [--offsets] [--verbose]``."""
    gw = max([15, len(group)])
    tw = max([15, *(len(r.topic_partition.topic) for r in rows)])
    cw = max([15, *(len(_opt(r.member_id)) for r in rows)])
    hw = max([15, *(len(_opt(r.client_host)) for r in rows)])

    def _row(values: Sequence[object]) -> str:
        head = [(gw, values[0]), (tw, values[1]), (10, values[2])]
        nums = [(15, v) for v in values[3:-3]]
        tail = [(cw, values[-3]), (hw, values[-2]), (0, values[-1])]
        return _line(head + nums + tail)

    header: list[object] = ["GROUP", "TOPIC", "PARTITION"]
    header += ["LEADER-EPOCH"] if verbose else []
    header += ["CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID", "HOST", "CLIENT-ID"]
    lines = [_row(header)]
    for r in rows:
        values: list[object] = [group, r.topic_partition.topic, r.topic_partition.partition]
        values += [_opt(r.leader_epoch)] if verbose else []
        values += [_opt(r.committed_offset), _opt(r.log_end_offset), _opt(r.lag)]
        values += [_opt(r.member_id), _opt(r.client_host), _opt(r.client_id)]
        lines.append(_row(values))
    return "\n" + "\n".join(lines) + "\n"


def assignment_string(tps: Iterable[TopicPartition]) -> str:
    """``topic:0,1;other:2`` (topics and partitions sorted), or ``-`` when empty."""
    by_topic: dict[str, list[int]] = {}
    for tp in tps:
        by_topic.setdefault(tp.topic, []).append(tp.partition)
    if not by_topic:
        return MISSING
    parts = [f"{t}:{','.join(str(p) for p in sorted(ps))}" for t, ps in by_topic.items()]
    return ";".join(sorted(parts))


def members_table(d: GroupDescription, *, verbose: bool = False) -> str:
    """``--describe --members [--verbose]``: epochs and target assignments of consumer
    group members (``-`` for classic groups); UPGRADED when classic and consumer protocol
    members share the group."""
    members = d.members
    current = [assignment_string(m.assignment) for m in members]
    target = [assignment_string(m.target_assignment or ()) for m in members]
    gw = max([15, len(d.group_id)])
    cw = max([15, *(len(m.member_id) for m in members)])
    iw = max([17, *(len(m.group_instance_id or "") for m in members)])
    hw = max([15, *(len(m.client_host) for m in members)])
    lw = max([15, *(len(m.client_id) for m in members)])
    with_instance = any(m.group_instance_id for m in members)
    aw = max([20, *(len(a) for a in current)])
    tw = max([20, *(len(a) for a in target)])
    upgrades = {m.upgraded for m in members if m.upgraded is not None}
    mixed = upgrades == {True, False}

    def _row(values: Sequence[object], extra: Sequence[object]) -> str:
        cols = [(gw, values[0]), (cw, values[1])]
        cols += [(iw, values[2])] if with_instance else []
        cols += [(hw, values[-3]), (lw, values[-2]), (15, values[-1])]
        text = _line(cols) + " "
        if verbose:
            text += _line([(15, extra[0]), (aw, extra[1]), (15, extra[2]), (tw, extra[3])])
            text += f" {extra[4]}" if mixed else ""
        return text

    header = ["GROUP", "CONSUMER-ID", "GROUP-INSTANCE-ID", "HOST", "CLIENT-ID", "#PARTITIONS"]
    extra_header = [
        "CURRENT-EPOCH",
        "CURRENT-ASSIGNMENT",
        "TARGET-EPOCH",
        "TARGET-ASSIGNMENT",
        "UPGRADED",
    ]
    lines = ["", _row(header, extra_header)]
    for m, cur, tgt in zip(members, current, target, strict=True):
        values = [
            d.group_id,
            m.member_id,
            m.group_instance_id or "",
            m.client_host,
            m.client_id,
            len(m.assignment),
        ]
        extra = [_opt(m.member_epoch), cur, _opt(d.target_assignment_epoch), tgt]
        extra.append("-" if m.upgraded is None else str(m.upgraded).lower())
        lines.append(_row(values, extra))
    return "\n".join(lines) + "\n"


def state_table(d: GroupDescription, *, verbose: bool = False) -> str:
    """``--describe --state [--verbose]``."""
    coordinator = f"{d.coordinator.host}:{d.coordinator.port}  ({d.coordinator.node_id})"
    ow = max(25, len(coordinator))
    gw = max(15, len(d.group_id))
    strategy = d.partition_assignor or MISSING
    if verbose:
        header: list[object] = ["GROUP", "COORDINATOR (ID)", "ASSIGNMENT-STRATEGY", "STATE"]
        header += ["GROUP-EPOCH", "TARGET-ASSIGNMENT-EPOCH", "#MEMBERS"]
        values: list[object] = [d.group_id, coordinator, strategy, d.state]
        values += [_opt(d.group_epoch), _opt(d.target_assignment_epoch)]
        widths = [gw, ow, 20, 20, 15, 25, 0]
    else:
        header = ["GROUP", "COORDINATOR (ID)", "ASSIGNMENT-STRATEGY", "STATE", "#MEMBERS"]
        values = [d.group_id, coordinator, strategy, d.state]
        widths = [gw, ow, 20, 20, 0]
    values.append(len(d.members))
    return (
        "\n"
        + _line(list(zip(widths, header, strict=True)))
        + "\n"
        + _line(list(zip(widths, values, strict=True)))
        + "\n"
    )


def reset_table(plan: Mapping[str, Mapping[TopicPartition, int]]) -> str:
    """``--reset-offsets``: GROUP TOPIC PARTITION NEW-OFFSET, sorted."""
    if not plan:
        return "\n"
    gw = max([15, *(len(g) for g in plan)])
    tw = max([15, *(len(tp.topic) for offsets in plan.values() for tp in offsets)])
    lines = [_line([(gw, "GROUP"), (tw, "TOPIC"), (10, "PARTITION"), (0, "NEW-OFFSET")])]
    for group in sorted(plan):
        for tp, offset in sorted(plan[group].items()):
            lines.append(_line([(gw, group), (tw, tp.topic), (10, tp.partition), (0, offset)]))
    return "\n" + "\n".join(lines) + "\n"


def delete_offsets_table(statuses: Mapping[TopicPartition, str]) -> str:
    """``--delete-offsets``: TOPIC PARTITION STATUS (partition -1 prints as ``-``)."""
    tw = max([15, *(len(tp.topic) for tp in statuses)])
    lines = [_line([(tw, "TOPIC"), (10, "PARTITION"), (15, "STATUS")])]
    for tp, status in sorted(statuses.items()):
        partition = tp.partition if tp.partition >= 0 else MISSING
        lines.append(_line([(tw, tp.topic), (10, partition), (15, status)]))
    return "\n" + "\n".join(lines) + "\n"
