"""dump-log for index files: ``.index`` (``offset: N position: P``), ``.timeindex``
(``timestamp: T offset: N``) and ``.txnindex`` (aborted transactions), as Kafka's
DumpLogSegments prints them.

Each offset index entry is checked against the segment's .log (the batch at the
position must end at the offset); each time index entry against the batch it
names. Problems are reported on standard error after all files, with Kafka's
wording. As in Kafka, a zero entry after the first ends the index (the rest of
a preallocated file).
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from typing import TextIO

from strom.protocol.records import BATCH_HEADER_SIZE, LOG_OVERHEAD, parse_header

_OFFSET_ENTRY = struct.Struct(">ii")
_TIME_ENTRY = struct.Struct(">qi")
_ABORTED = struct.Struct(">hqqqq")


@dataclass
class IndexProblems:
    """Mismatches found while dumping indexes, printed at the end (to stderr)."""

    offset_mismatches: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    shallow_not_found: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    time_mismatches: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    out_of_order: dict[str, list[tuple[int, int]]] = field(default_factory=dict)

    def print(self, err: TextIO) -> None:
        for name, pairs in self.offset_mismatches.items():
            err.write(f"Mismatches in :{name}\n")
            for index_offset, log_offset in sorted(pairs, reverse=True):
                err.write(f"  Index offset: {index_offset}, log offset: {log_offset}\n")
        for name, pairs in self.time_mismatches.items():
            err.write(f"Found timestamp mismatch in :{name}\n")
            for index_ts, log_ts in pairs:
                err.write(f"  Index timestamp: {index_ts}, log timestamp: {log_ts}\n")
        for name, pairs in self.out_of_order.items():
            err.write(f"Found out of order timestamp in :{name}\n")
            for index_ts, prev in pairs:
                err.write(f"  Index timestamp: {index_ts}, Previously indexed timestamp: {prev}\n")
        for pairs in self.shallow_not_found.values():
            err.write("The following indexed offsets are not found in the log.\n")
            for index_offset, log_offset in pairs:
                err.write(f"Indexed offset: {index_offset}, found log offset: {log_offset}\n")


def _base_offset(path: str) -> int:
    return int(os.path.basename(path).split(".")[0])


def _sibling(path: str, suffix: str) -> str:
    return os.path.join(
        os.path.dirname(os.path.abspath(path)), f"{os.path.basename(path).split('.')[0]}{suffix}"
    )


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return b""


def _batches(log: bytes, start: int = 0) -> list[tuple[int, int, int]]:
    """(position, last offset, max timestamp) of the whole batches from ``start``."""
    out = []
    pos = start
    while len(log) - pos >= BATCH_HEADER_SIZE:
        header = parse_header(memoryview(log), pos)
        size = header.size_in_bytes
        if size < LOG_OVERHEAD or pos + size > len(log):
            break
        out.append((pos, header.last_offset, header.max_timestamp))
        pos += size
    return out


def offset_entries(path: str, data: bytes) -> list[tuple[int, int]]:
    base = _base_offset(path)
    entries = []
    for i in range(len(data) // _OFFSET_ENTRY.size):
        relative, position = _OFFSET_ENTRY.unpack_from(data, i * _OFFSET_ENTRY.size)
        if relative == 0 and i > 0:
            break
        entries.append((base + relative, position))
    return entries


def dump_offset_index(
    path: str, data: bytes, out: TextIO, problems: IndexProblems, verify_only: bool
) -> None:
    entries = offset_entries(path, data)
    if not entries:
        out.write(f"{path} is empty.\n")
        return
    log = _read(_sibling(path, ".log"))
    for offset, position in entries:
        found = _batches(log, position)[:1]
        last = found[0][1] if found else -1
        if last != offset:
            problems.offset_mismatches.setdefault(os.path.abspath(path), []).append((offset, last))
        if not verify_only:
            out.write(f"offset: {offset} position: {position}\n")


def dump_time_index(
    path: str, data: bytes, out: TextIO, problems: IndexProblems, verify_only: bool
) -> None:
    base = _base_offset(path)
    name = os.path.abspath(path)
    batches = _batches(_read(_sibling(path, ".log")))
    previous = -1
    for i in range(len(data) // _TIME_ENTRY.size):
        timestamp, relative = _TIME_ENTRY.unpack_from(data, i * _TIME_ENTRY.size)
        offset = base + relative
        if relative == 0 and i > 0:
            break
        match = next((b for b in batches if b[1] >= offset), None)
        if match is None or match[1] != offset:
            found = -1 if match is None else match[1]
            problems.shallow_not_found.setdefault(name, []).append((offset, found))
        else:
            if match[2] != timestamp:
                problems.time_mismatches.setdefault(name, []).append((timestamp, match[2]))
            if previous >= timestamp:
                problems.out_of_order.setdefault(name, []).append((timestamp, previous))
        if not verify_only:
            out.write(f"timestamp: {timestamp} offset: {offset}\n")
        previous = timestamp


def dump_txn_index(data: bytes, out: TextIO) -> None:
    for i in range(len(data) // _ABORTED.size):
        version, producer_id, first, last, lso = _ABORTED.unpack_from(data, i * _ABORTED.size)
        out.write(
            f"version: {version} producerId: {producer_id} firstOffset: {first} "
            f"lastOffset: {last} lastStableOffset: {lso}\n"
        )
