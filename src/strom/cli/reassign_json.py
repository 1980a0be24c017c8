"""The JSON files of kafka-reassign-partitions.sh and kafka-leader-election.sh (sans-IO).

Reassignment (``--reassignment-json-file``, also what ``--generate`` and ``--execute``
print, compact as Jackson writes it)::

    {"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1,2],
     "log_dirs":["any","any"]}]}

Topics to move (``--topics-to-move-json-file``): ``{"version":1,"topics":[{"topic":"t"}]}``.
Partitions to elect (``--path-to-json-file``): ``{"partitions":[{"topic":"t","partition":0}]}``.
Errors carry the messages of Kafka's ReassignPartitionsCommand and LeaderElectionCommand.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from strom.cli.common import CliError, json_field
from strom.common.types import TopicPartition

ANY_LOG_DIR = "any"
Assignment = list[tuple[TopicPartition, list[int]]]


def read_text(path: str) -> str:
    """The file's text (CliError naming the file when it cannot be read)."""
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from None


def _parse(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise CliError(f"The input string is not a valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise CliError("The input string is not a JSON object")
    return value


def _ints(obj: Any, name: str) -> list[int]:
    values = json_field(obj, name, list)
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise CliError(f"Field `{name}` must be a list of integers: {json.dumps(values)}")
    return list(values)


def _version(obj: dict[str, Any]) -> None:
    version = obj.get("version", 1)
    if version != 1:
        raise CliError(f"Not supported version field value {version}")


def parse_reassignment(text: str) -> tuple[Assignment, dict[tuple[TopicPartition, int], str]]:
    """The partitions with their target replicas, in file order (duplicates kept, for
    the checks), and the log dir of each (partition, broker) that names one."""
    obj = _parse(text)
    _version(obj)
    parts: Assignment = []
    log_dirs: dict[tuple[TopicPartition, int], str] = {}
    for entry in obj.get("partitions") or []:
        tp = TopicPartition(json_field(entry, "topic", str), json_field(entry, "partition", int))
        replicas = _ints(entry, "replicas")
        dirs = entry.get("log_dirs")
        dirs = [ANY_LOG_DIR] * len(replicas) if dirs is None else dirs
        if not isinstance(dirs, list) or len(dirs) != len(replicas):
            raise CliError(
                f"Size of replicas list {_java_list(replicas)} is different from size of log "
                f"dirs list {_java_list(dirs)} for partition {tp}"
            )
        parts.append((tp, replicas))
        log_dirs.update({(tp, r): d for r, d in zip(replicas, dirs, strict=True) if d != "any"})
    return parts, log_dirs


def parse_execute(text: str) -> dict[TopicPartition, list[int]]:
    """``--execute``'s file, checked as Kafka's parseExecuteAssignmentArgs checks it."""
    parts, log_dirs = parse_reassignment(text)
    if not parts:
        raise CliError("Partition reassignment list cannot be empty")
    if any(not replicas for _, replicas in parts):
        raise CliError("Partition replica list cannot be empty")
    repeated = duplicates(tp for tp, _ in parts)
    if repeated:
        shown = ",".join(str(tp) for tp in repeated)
        raise CliError(f"Partition reassignment contains duplicate topic partitions: {shown}")
    problems = [
        f"{tp} contains multiple entries for {','.join(map(str, duplicates(replicas)))}"
        for tp, replicas in parts
        if duplicates(replicas)
    ]
    if problems:
        raise CliError(
            "Partition replica lists may not contain duplicate entries: " + ". ".join(problems)
        )
    refuse_log_dirs(log_dirs)
    return dict(parts)


def refuse_log_dirs(log_dirs: Mapping[tuple[TopicPartition, int], str]) -> None:
    """strom's tool moves replicas between brokers only: a log dir other than "any"
    is refused (use ``strom log-dirs`` to see where replicas are)."""
    if log_dirs:
        (tp, broker), path = min(log_dirs.items())
        raise CliError(
            f"strom reassign-partitions does not move replicas between log directories: "
            f'partition {tp} names log dir {path} for broker {broker}; use "any"'
        )


def parse_topics(text: str) -> list[str]:
    """The topic names of a ``--topics-to-move-json-file``, in file order."""
    obj = _parse(text)
    _version(obj)
    return [json_field(entry, "topic", str) for entry in obj.get("topics") or []]


def parse_election(text: str) -> set[TopicPartition]:
    """The partitions of a ``--path-to-json-file`` (LeaderElectionCommand's checks)."""
    obj = _parse(text)
    if "partitions" not in obj:
        raise CliError('Replica election data is missing "partitions" field')
    entries = obj["partitions"]
    if not isinstance(entries, list):
        raise CliError('Replica election data has no list in its "partitions" field')
    tps = [
        TopicPartition(json_field(e, "topic", str), json_field(e, "partition", int))
        for e in entries
    ]
    repeated = duplicates(tps)
    if repeated:
        shown = ", ".join(str(tp) for tp in repeated)
        raise CliError(f"Replica election data contains duplicate partitions: [{shown}]")
    return set(tps)


def format_reassignment(assignment: Mapping[TopicPartition, Sequence[int]]) -> str:
    """Kafka's formatAsReassignmentJson: partitions sorted, every log dir "any"."""
    partitions = [
        {
            "topic": tp.topic,
            "partition": tp.partition,
            "replicas": list(assignment[tp]),
            "log_dirs": [ANY_LOG_DIR] * len(assignment[tp]),
        }
        for tp in sorted(assignment)
    ]
    return json.dumps(
        {"version": 1, "partitions": partitions}, separators=(",", ":"), ensure_ascii=False
    )


def duplicates(items: Iterable[Any]) -> list[Any]:
    """The items that occur more than once, sorted."""
    seen: set[Any] = set()
    repeated: set[Any] = set()
    for item in items:
        (repeated if item in seen else seen).add(item)
    return sorted(repeated)


def parse_broker_list(text: str) -> list[int]:
    """``--broker-list 0,1,2`` (Kafka's message for a number it cannot read)."""
    try:
        ids = [int(x) for x in text.split(",")]
    except ValueError:
        bad = next(x for x in text.split(",") if not x.strip().lstrip("-").isdigit())
        raise CliError(f'For input string: "{bad}"') from None
    repeated = duplicates(ids)
    if repeated:
        raise CliError(f"Broker list contains duplicate entries: {_java_list(repeated)}")
    return ids


def _java_list(values: Sequence[Any]) -> str:
    return "[" + ", ".join(str(v) for v in values) + "]"
