"""``strom dump-log``: kafka-dump-log.sh for segment files (.log).

Reads the file directly, batch by batch; a truncated or corrupt tail is
reported as invalid bytes, as Kafka does.
"""

from __future__ import annotations

import argparse
import os
import struct
import sys
from typing import TextIO

import crc32c

from strom.cli.common import CliError
from strom.protocol.compression import CODEC_NAMES
from strom.protocol.errors import KafkaError
from strom.protocol.record_decoder import decode_batch
from strom.protocol.records import (
    ATTRIBUTES_OFFSET,
    BATCH_HEADER_SIZE,
    LOG_OVERHEAD,
    MAGIC,
    MIN_BATCH_LENGTH,
    BatchHeader,
    Record,
    parse_control_record,
    parse_header,
)

_LENGTH = struct.Struct(">qi")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="*", metavar="FILE", help="segment .log files")
    p.add_argument(
        "--print-data-log", action="store_true", help="print each record's key and value"
    )
    p.add_argument("--deep-iteration", action="store_true", help="print each record's metadata")
    p.add_argument(
        "--files",
        dest="files_flag",
        action="append",
        metavar="FILE",
        help="REQUIRED (or give the files as arguments): the data and index log files to dump, "
        "comma-separated",
    )


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    stream = out or sys.stdout
    for path in [*args.files, *(args.files_flag or [])]:
        if not path.endswith(".log"):
            raise CliError(f"{path}: only .log segment files are supported")
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as exc:
            raise CliError(f"cannot read {path}: {exc.strerror}") from None
        dump_segment(path, data, stream, print_data=args.print_data_log, deep=args.deep_iteration)
    return 0


def dump_segment(path: str, data: bytes, out: TextIO, *, print_data: bool, deep: bool) -> None:
    out.write(f"Dumping {path}\n")
    base = os.path.basename(path).split(".")[0]
    out.write(f"Log starting offset: {int(base) if base.isdigit() else 0}\n")
    view = memoryview(data)
    pos = 0
    while len(view) - pos >= BATCH_HEADER_SIZE:
        _, batch_length = _LENGTH.unpack_from(view, pos)
        size = batch_length + LOG_OVERHEAD
        if batch_length < MIN_BATCH_LENGTH or size > len(view) - pos:
            break
        header = parse_header(view, pos)
        if header.magic != MAGIC:
            break
        batch = view[pos : pos + size]
        valid = crc32c.crc32c(batch[ATTRIBUTES_OFFSET:]) == header.crc
        out.write(batch_line(header, pos, valid) + "\n")
        if print_data or deep:
            for line in record_lines(header, batch, print_data):
                out.write(line + "\n")
        pos += size
    if pos < len(view):
        out.write(f"Found {len(view) - pos} invalid bytes at the end of {os.path.basename(path)}\n")


def _timestamp_type(header: BatchHeader) -> str:
    return "LogAppendTime" if header.timestamp_type else "CreateTime"


def batch_line(h: BatchHeader, position: int, valid: bool) -> str:
    return (
        f"baseOffset: {h.base_offset} lastOffset: {h.last_offset} count: {h.records_count} "
        f"baseSequence: {h.base_sequence} lastSequence: {h.last_sequence} "
        f"producerId: {h.producer_id} producerEpoch: {h.producer_epoch} "
        f"partitionLeaderEpoch: {h.partition_leader_epoch} "
        f"isTransactional: {str(h.is_transactional).lower()} "
        f"isControl: {str(h.is_control).lower()} deleteHorizonMs: OptionalLong.empty "
        f"position: {position} {_timestamp_type(h)}: {h.max_timestamp} size: {h.size_in_bytes} "
        f"magic: {h.magic} compresscodec: {CODEC_NAMES.get(h.compression, 'unknown')} "
        f"crc: {h.crc} isvalid: {str(valid).lower()}"
    )


def record_lines(h: BatchHeader, batch: memoryview, print_data: bool) -> list[str]:
    try:
        _, records = decode_batch(batch, verify_crc=False)
    except KafkaError as exc:
        return [f"| cannot decode records: {exc}"]
    return [_record_line(h, r, print_data) for r in records]


def _record_line(h: BatchHeader, r: Record, print_data: bool) -> str:
    sequence = -1 if h.base_sequence < 0 else h.base_sequence + (r.offset - h.base_offset)
    key_size = -1 if r.key is None else len(r.key)
    value_size = -1 if r.value is None else len(r.value)
    header_keys = ",".join(k for k, _ in r.headers)
    line = (
        f"| offset: {r.offset} {_timestamp_type(h)}: {r.timestamp} keySize: {key_size} "
        f"valueSize: {value_size} sequence: {sequence} headerKeys: [{header_keys}]"
    )
    if h.is_control:
        try:
            control = parse_control_record(r)
        except KafkaError:
            return line + " controlType: UNKNOWN"
        kind = "COMMIT" if control.commit else "ABORT"
        return line + f" endTxnMarker: {kind} coordinatorEpoch: {control.coordinator_epoch}"
    if print_data:
        if r.key is not None:
            line += f" key: {r.key.decode('utf-8', 'replace')}"
        if r.value is not None:
            line += f" payload: {r.value.decode('utf-8', 'replace')}"
    return line
