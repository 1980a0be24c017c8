"""Kafka's checkpoint text files, written atomically.

Layout (one file per log directory, or per partition for leader epochs)::

    0                      version
    2                      number of entries
    my-topic 0 1234        one entry per line, fields separated by a space
    my-topic 1 99

Used for recovery-point-offset-checkpoint, log-start-offset-checkpoint,
replication-offset-checkpoint ("topic partition offset") and
leader-epoch-checkpoint ("epoch start_offset").

Crash story: a checkpoint is written to ``<name>.tmp``, fsynced, renamed over
the old file and the directory fsynced, so a reader sees the old or the new
file, never a torn one. A file that does not parse raises
:class:`CorruptCheckpointError`; a missing file reads as empty.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from strom.common.types import TopicPartition

VERSION: Final = 0

RECOVERY_POINT_CHECKPOINT: Final = "recovery-point-offset-checkpoint"
LOG_START_OFFSET_CHECKPOINT: Final = "log-start-offset-checkpoint"
REPLICATION_OFFSET_CHECKPOINT: Final = "replication-offset-checkpoint"


class CorruptCheckpointError(Exception):
    """A checkpoint file exists but does not parse."""


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_lines(path: Path, entries: Sequence[Sequence[object]]) -> None:
    """Atomically write a version-0 checkpoint of space-separated entries."""
    lines = [str(VERSION), str(len(entries))]
    lines.extend(" ".join(str(field) for field in entry) for entry in entries)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(("\n".join(lines) + "\n").encode())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def read_lines(path: Path, fields: int) -> list[list[str]]:
    """The entries of a checkpoint, each split into ``fields`` fields."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    except UnicodeDecodeError as exc:
        raise CorruptCheckpointError(f"{path}: not text") from exc
    lines = text.splitlines()
    if len(lines) < 2 or lines[0].strip() != str(VERSION):
        raise CorruptCheckpointError(f"{path}: bad version line")
    try:
        count = int(lines[1])
    except ValueError as exc:
        raise CorruptCheckpointError(f"{path}: bad count line") from exc
    entries = [line.split() for line in lines[2:] if line.strip()]
    if count != len(entries) or any(len(entry) != fields for entry in entries):
        raise CorruptCheckpointError(f"{path}: expected {count} entries of {fields} fields")
    return entries


def write_offsets(path: Path, offsets: dict[TopicPartition, int]) -> None:
    """Write a "topic partition offset" checkpoint."""
    entries = [(tp.topic, tp.partition, offset) for tp, offset in sorted(offsets.items())]
    write_lines(path, entries)


def read_offsets(path: Path) -> dict[TopicPartition, int]:
    """Read a "topic partition offset" checkpoint (missing file: empty)."""
    try:
        return {
            TopicPartition(topic, int(partition)): int(offset)
            for topic, partition, offset in read_lines(path, 3)
        }
    except ValueError as exc:
        raise CorruptCheckpointError(f"{path}: bad number") from exc
