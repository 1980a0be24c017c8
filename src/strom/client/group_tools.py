"""Offset-reset planning for consumer groups, as kafka-consumer-groups.sh does it (sans-IO).

The IO side looks up log start, log end and by-timestamp offsets; these
functions turn them and a :class:`ResetSpec` into new committed offsets,
with Kafka's clamping and fallbacks, and parse Kafka's date and duration
arguments.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum

from strom.client.group_types import OffsetAndMetadata
from strom.common.types import TopicPartition

_NS_PER_MS = 1_000_000
_NS_PER_S = 1_000_000_000


class ResetError(ValueError):
    """A reset that cannot be planned (bad argument, missing committed offset)."""


class ResetKind(Enum):
    """The reset scenarios of kafka-consumer-groups.sh (values are its option names)."""

    TO_EARLIEST = "to-earliest"
    TO_LATEST = "to-latest"
    TO_CURRENT = "to-current"
    TO_OFFSET = "to-offset"
    SHIFT_BY = "shift-by"
    TO_DATETIME = "to-datetime"
    BY_DURATION = "by-duration"
    FROM_FILE = "from-file"

    @property
    def by_timestamp(self) -> bool:
        """Whether the new offsets come from a ListOffsets lookup by timestamp."""
        return self in (ResetKind.TO_DATETIME, ResetKind.BY_DURATION)


@dataclass(frozen=True, slots=True)
class ResetSpec:
    """What to reset to; ``value`` is the offset, the shift, or the timestamp in ms."""

    kind: ResetKind
    value: int = 0


@dataclass(slots=True)
class ResetPlan:
    """The planned offset per partition and the warnings to print."""

    offsets: dict[TopicPartition, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def plan_reset(
    partitions: Iterable[TopicPartition],
    spec: ResetSpec,
    *,
    committed: Mapping[TopicPartition, OffsetAndMetadata],
    log_start_offsets: Mapping[TopicPartition, int],
    log_end_offsets: Mapping[TopicPartition, int],
    timestamp_offsets: Mapping[TopicPartition, int] | None = None,
    file_offsets: Mapping[TopicPartition, int] | None = None,
) -> ResetPlan:
    """New offsets for ``partitions``.

    to-offset, shift-by and from-file (``file_offsets``) are clamped into
    [log start, log end] with a warning; by-timestamp lookups that found nothing
    (-1) fall back to the log end offset, as Kafka's GroupOffsetsResetter does.
    """
    plan = ResetPlan()
    for tp in partitions:
        start, end = _bounds(tp, log_start_offsets, log_end_offsets)
        kind = spec.kind
        if kind is ResetKind.TO_EARLIEST:
            plan.offsets[tp] = start
        elif kind is ResetKind.TO_LATEST:
            plan.offsets[tp] = end
        elif kind is ResetKind.TO_CURRENT:
            current = committed.get(tp)
            plan.offsets[tp] = end if current is None or current.offset < 0 else current.offset
        elif kind is ResetKind.TO_OFFSET:
            plan.offsets[tp] = _clamp(tp, spec.value, start, end, plan.warnings)
        elif kind is ResetKind.FROM_FILE:
            wanted = (file_offsets or {})[tp]
            plan.offsets[tp] = _clamp(tp, wanted, start, end, plan.warnings)
        elif kind is ResetKind.SHIFT_BY:
            current = committed.get(tp)
            if current is None or current.offset < 0:
                raise ResetError(
                    f"Cannot shift offset for partition {tp} since there is no current "
                    "committed offset"
                )
            plan.offsets[tp] = _clamp(tp, current.offset + spec.value, start, end, plan.warnings)
        else:
            found = (timestamp_offsets or {}).get(tp, -1)
            if found < 0:
                plan.warnings.append(
                    f"Warn: Partition {tp.partition} from topic {tp.topic} is empty. "
                    "Falling back to latest known offset."
                )
                found = end
            plan.offsets[tp] = found
    return plan


def _bounds(
    tp: TopicPartition, starts: Mapping[TopicPartition, int], ends: Mapping[TopicPartition, int]
) -> tuple[int, int]:
    if tp not in starts or tp not in ends:
        raise ResetError(f"Error getting offsets of topic partition: {tp}")
    return starts[tp], ends[tp]


def _clamp(tp: TopicPartition, offset: int, start: int, end: int, warnings: list[str]) -> int:
    if offset > end:
        warnings.append(
            f"New offset ({offset}) is higher than latest offset for topic partition {tp}. "
            f"Value will be set to {end}."
        )
        return end
    if offset < start:
        warnings.append(
            f"New offset ({offset}) is lower than earliest offset for topic partition {tp}. "
            f"Value will be set to {start}."
        )
        return start
    return offset


# -- arguments -----------------------------------------------------------------

_DATETIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\.(\d{1,3})"
    r"(Z|[+-]\d{2}(?::?\d{2})?)"
)


def parse_datetime_ms(text: str) -> int:
    """Kafka's Utils.getDateTime: ``YYYY-MM-DDTHH:mm:SS.sss`` with an optional zone
    (``Z``, ``+hh``, ``+hhmm``, ``+hh:mm``; none means UTC) -> epoch milliseconds."""
    _, sep, time_part = text.partition("T")
    if not sep or not time_part:
        raise ResetError(
            "Error parsing timestamp. It does not contain a 'T' according to ISO8601 format"
        )
    if not any(c in time_part for c in "+-Z"):
        text += "Z"
    m = _DATETIME.fullmatch(text)
    if m is None:
        raise ResetError(f'Unparseable date: "{text}"')
    year, month, day, hour, minute, second, millis = (int(g) for g in m.groups()[:7])
    days_in_month = calendar.monthrange(year, month)[1] if 1 <= month <= 12 else 0
    if not 1 <= day <= days_in_month or hour > 23 or minute > 59 or second > 59:
        raise ResetError(f'Unparseable date: "{text}"')
    epoch_s = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    return (epoch_s - _zone_offset_s(m.group(8))) * 1000 + millis


def _zone_offset_s(zone: str) -> int:
    if zone == "Z":
        return 0
    sign = -1 if zone[0] == "-" else 1
    digits = zone[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:] or 0)
    if hours > 23 or minutes > 59:
        raise ResetError(f"Unparseable zone: {zone!r}")
    return sign * (hours * 3600 + minutes * 60)


_DURATION = re.compile(
    r"([-+]?)P(?:([-+]?[0-9]+)D)?"
    r"(T(?:([-+]?[0-9]+)H)?(?:([-+]?[0-9]+)M)?(?:([-+]?[0-9]+)(?:[.,]([0-9]{0,9}))?S)?)?",
    re.IGNORECASE,
)


def parse_duration_ns(text: str) -> int:
    """Java's Duration.parse (``PnDTnHnMn.nS``, signs allowed) -> nanoseconds."""
    m = _DURATION.fullmatch(text)
    if m is None or (m.group(3) or "").upper() == "T":
        raise ResetError(f"Text cannot be parsed to a Duration: {text}")
    negate, days, t_part, hours, minutes, seconds, fraction = m.groups()
    if not t_part and days is None:
        raise ResetError(f"Text cannot be parsed to a Duration: {text}")
    total = int(days or 0) * 86_400 * _NS_PER_S
    total += int(hours or 0) * 3_600 * _NS_PER_S + int(minutes or 0) * 60 * _NS_PER_S
    total += int(seconds or 0) * _NS_PER_S
    if fraction:
        frac_ns = int(fraction.ljust(9, "0"))
        total += -frac_ns if (seconds or "").startswith("-") else frac_ns
    return -total if negate == "-" else total


def timestamp_before(now_ms: int, duration_ns: int) -> int:
    """``now - duration`` in epoch ms (floor), as Instant.minus(d).toEpochMilli()."""
    return (now_ms * _NS_PER_MS - duration_ns) // _NS_PER_MS


def parse_topic_arg(arg: str) -> tuple[str, list[int] | None]:
    """``topic`` -> (topic, None); ``topic:0,2`` -> (topic, [0, 2])."""
    if ":" not in arg:
        return arg, None
    parts = arg.split(":")
    while parts and parts[-1] == "":
        parts.pop()  # Java's split drops trailing empty strings
    if len(parts) != 2:
        raise ResetError(f"Invalid topic arg '{arg}', expected topic name and partitions")
    topic, partitions = parts
    out: list[int] = []
    for p in partitions.split(","):
        try:
            out.append(int(p))
        except ValueError:
            raise ResetError(f"Invalid partition '{p}' specified in topic arg '{arg}'") from None
    return topic, out


def parse_reset_csv(text: str, single_group: str | None) -> dict[str, dict[TopicPartition, int]]:
    """A reset plan file (kafka-consumer-groups.sh --export output): rows
    ``topic,partition,offset`` for ``single_group`` (when one --group is given and
    the first row has three fields), else ``group,topic,partition,offset``."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    three = bool(lines) and len(lines[0].split(",")) == 3
    out: dict[str, dict[TopicPartition, int]] = {}
    for number, line in enumerate(lines, 1):
        fields = [f.strip() for f in line.split(",")]
        if single_group is not None and three:
            fields = [single_group, *fields]
        if len(fields) != 4:
            raise ResetError(f"Invalid reset plan line {number}: {line!r}")
        group, topic, partition, offset = fields
        try:
            tp = TopicPartition(topic, int(partition))
            out.setdefault(group, {})[tp] = int(offset)
        except ValueError:
            raise ResetError(f"Invalid reset plan line {number}: {line!r}") from None
    return out


def export_reset_csv(plans: Mapping[str, Mapping[TopicPartition, int]], single_group: bool) -> str:
    """The plan as kafka-consumer-groups.sh --export writes it: ``topic,partition,offset``
    rows for one group, ``group,topic,partition,offset`` for several."""
    rows = []
    for group, offsets in plans.items():
        for tp in sorted(offsets):
            row = f"{tp.topic},{tp.partition},{offsets[tp]}"
            rows.append(row if single_group else f"{group},{row}")
    return "".join(f"{row}\n" for row in rows)
