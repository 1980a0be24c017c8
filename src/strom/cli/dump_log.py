"""``strom dump-log``: kafka-dump-log.sh (Kafka's DumpLogSegments).

``.log`` segments are read batch by batch (a truncated or corrupt tail is
reported as invalid bytes, as Kafka does); ``--offsets-decoder`` and
``--transaction-log-decoder`` print the records of ``__consumer_offsets`` and
``__transaction_state`` as Kafka's JSON. ``.index``, ``.timeindex`` and
``.txnindex`` files print their entries (strom.cli.dump_index).
"""

from __future__ import annotations

import argparse
import os
import struct
import sys
from dataclasses import dataclass
from typing import TextIO

from strom.cli import dump_index, record_decoders
from strom.cli.common import CliError
from strom.common.crc import crc32c
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
    p.add_argument("files", nargs="*", metavar="FILE", help="the files to dump (as --files)")
    p.add_argument(
        "--files",
        dest="files_flag",
        action="append",
        metavar="FILE1,FILE2",
        help="REQUIRED (or give the files as arguments): The comma separated list of data and "
        "index log files to be dumped (.log, .index, .timeindex, .txnindex).",
    )
    p.add_argument(
        "--print-data-log",
        action="store_true",
        help="If set, printing the messages content when dumping data logs. Automatically set "
        "if any decoder option is specified.",
    )
    p.add_argument(
        "--deep-iteration",
        action="store_true",
        help="If set, uses deep instead of shallow iteration. Automatically set if "
        "print-data-log is enabled.",
    )
    p.add_argument(
        "--offsets-decoder",
        action="store_true",
        help="If set, log data will be parsed as offset data from the __consumer_offsets topic.",
    )
    p.add_argument(
        "--transaction-log-decoder",
        action="store_true",
        help="If set, log data will be parsed as transaction metadata from the "
        "__transaction_state topic.",
    )
    p.add_argument(
        "--skip-record-metadata",
        action="store_true",
        help="Skip metadata when printing records. This flag also skips control records.",
    )
    p.add_argument(
        "--verify-index-only",
        action="store_true",
        help="If set, just verify the index log without printing its content.",
    )


@dataclass(frozen=True, slots=True)
class Options:
    """What to print for a .log file."""

    print_data: bool = False
    deep: bool = False
    skip_metadata: bool = False
    decoder: record_decoders.Decoder = record_decoders.STRINGS


def options(args: argparse.Namespace) -> Options:
    decoder = record_decoders.STRINGS
    if args.offsets_decoder:
        decoder = record_decoders.OFFSETS
    elif args.transaction_log_decoder:
        decoder = record_decoders.TRANSACTION_LOG
    print_data = args.print_data_log or args.offsets_decoder or args.transaction_log_decoder
    return Options(
        print_data, args.deep_iteration or print_data, args.skip_record_metadata, decoder
    )


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    stream = out or sys.stdout
    paths = [*args.files, *(p for flag in args.files_flag or [] for p in flag.split(","))]
    if not paths:
        raise CliError('Missing required argument "[files]"')
    opts = options(args)
    problems = dump_index.IndexProblems()
    for path in paths:
        stream.write(f"Dumping {path}\n")
        suffix = os.path.splitext(path)[1]
        if suffix not in (".log", ".index", ".timeindex", ".txnindex"):
            print(f"Ignoring unknown file {path}", file=sys.stderr)
            continue
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as exc:
            raise CliError(f"cannot read {path}: {exc.strerror}") from None
        if suffix == ".log":
            dump_segment(path, data, stream, opts)
        elif suffix == ".index":
            dump_index.dump_offset_index(path, data, stream, problems, args.verify_index_only)
        elif suffix == ".timeindex":
            dump_index.dump_time_index(path, data, stream, problems, args.verify_index_only)
        else:
            dump_index.dump_txn_index(data, stream)
    problems.print(sys.stderr)
    return 0


def dump_segment(path: str, data: bytes, out: TextIO, opts: Options) -> None:
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
        if opts.deep:
            for line in record_lines(header, batch, opts):
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


def record_lines(h: BatchHeader, batch: memoryview, opts: Options) -> list[str]:
    try:
        _, records = decode_batch(batch, verify_crc=False)
    except KafkaError as exc:
        return [f"| cannot decode records: {exc}"]
    lines = []
    for r in records:
        line = "" if opts.skip_metadata else _metadata(h, r)
        if opts.print_data and not h.is_control:
            line += _contents(r, opts, "| " if opts.skip_metadata else " ")
        if line or not (opts.skip_metadata and h.is_control):
            lines.append(line)
    return lines


def _metadata(h: BatchHeader, r: Record) -> str:
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
    return line


def _contents(r: Record, opts: Options, prefix: str) -> str:
    key, payload = opts.decoder(r)
    text = ""
    if key is not None:
        text += f"{prefix}key: {key}"
        prefix = " "
    if payload is not None:
        text += f"{prefix}payload: {payload}"
    return text
