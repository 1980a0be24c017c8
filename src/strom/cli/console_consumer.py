"""``strom console-consumer``: kafka-console-consumer.sh.

Without ``--group`` it reads every partition of the topic (or just
``--partition``) from the chosen position; with ``--group`` it joins that
consumer group (strom's AIOConsumer, committing offsets). Records are printed
like Kafka's DefaultMessageFormatter; it stops after ``--max-messages`` records
or when nothing arrived for ``--timeout-ms``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import dataclass
from typing import BinaryIO

from strom.cli.common import (
    CliError,
    add_bootstrap,
    load_properties_file,
    parse_bool,
    parse_properties,
)
from strom.client.admin_types import OffsetSpec
from strom.client.aio.admin import AIOAdmin
from strom.client.aio.client import AIOClient
from strom.client.aio.consumer import AIOConsumer
from strom.client.aio.reader import AIOPartitionReader
from strom.common.types import TopicPartition
from strom.protocol.errors import ErrorCode
from strom.protocol.records import Record


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_bootstrap(p)
    p.add_argument("--topic", required=True, help="the topic to consume")
    p.add_argument("--from-beginning", action="store_true", help="start at the earliest offset")
    p.add_argument("--max-messages", type=int, help="exit after this many records")
    p.add_argument("--partition", type=int, help="consume only this partition")
    p.add_argument(
        "--offset", default=None, help="earliest, latest or an offset (needs --partition)"
    )
    p.add_argument("--timeout-ms", type=int, help="exit when no record arrives for this long")
    p.add_argument("--property", action="append", metavar="KEY=VALUE", help="formatter property")
    p.add_argument("--consumer-property", action="append", metavar="KEY=VALUE")
    p.add_argument("--consumer.config", dest="consumer_config", metavar="FILE")
    p.add_argument("--isolation-level", choices=("read_uncommitted", "read_committed"))
    p.add_argument("--group", help="consume as a member of this consumer group")


@dataclass(frozen=True, slots=True)
class Formatter:
    """Kafka's DefaultMessageFormatter."""

    print_timestamp: bool = False
    print_partition: bool = False
    print_offset: bool = False
    print_headers: bool = False
    print_key: bool = False
    print_value: bool = True
    key_separator: bytes = b"\t"
    line_separator: bytes = b"\n"
    headers_separator: bytes = b","
    null_literal: bytes = b"null"

    @classmethod
    def from_properties(cls, props: dict[str, str]) -> Formatter:
        def flag(name: str, default: bool = False) -> bool:
            return parse_bool(props.get(name), default)

        return cls(
            flag("print.timestamp"),
            flag("print.partition"),
            flag("print.offset"),
            flag("print.headers"),
            flag("print.key"),
            flag("print.value", True),
            _unescape(props.get("key.separator", "\t")),
            _unescape(props.get("line.separator", "\n")),
            _unescape(props.get("headers.separator", ",")),
            props.get("null.literal", "null").encode(),
        )

    def format(self, record: Record, partition: int, timestamp_type: str = "CreateTime") -> bytes:
        fields: list[bytes] = []
        if self.print_timestamp:
            fields.append(f"{timestamp_type}:{record.timestamp}".encode())
        if self.print_partition:
            fields.append(f"Partition:{partition}".encode())
        if self.print_offset:
            fields.append(f"Offset:{record.offset}".encode())
        if self.print_headers:
            headers = [
                k.encode() + b":" + (self.null_literal if v is None else v)
                for k, v in record.headers
            ]
            fields.append(self.headers_separator.join(headers) if headers else b"NO_HEADERS")
        if self.print_key:
            fields.append(self.null_literal if record.key is None else record.key)
        if self.print_value:
            fields.append(self.null_literal if record.value is None else record.value)
        return self.key_separator.join(fields) + self.line_separator


def _unescape(text: str) -> bytes:
    return text.encode().decode("unicode_escape").encode()


@dataclass(frozen=True, slots=True)
class StartAt:
    """Where to begin: an OffsetSpec, or an exact offset when ``exact`` is set."""

    spec: int = OffsetSpec.LATEST
    exact: int | None = None


def start_position(args: argparse.Namespace) -> StartAt:
    if args.offset is not None:
        if args.partition is None:
            raise CliError("The partition is required when offset is specified.")
        if args.from_beginning:
            raise CliError("Options from-beginning and offset cannot be specified together.")
        text = str(args.offset).lower()
        if text == "earliest":
            return StartAt(OffsetSpec.EARLIEST)
        if text == "latest":
            return StartAt(OffsetSpec.LATEST)
        if not text.isdigit():
            raise CliError(
                f"The provided offset value '{args.offset}' is incorrect. Valid values "
                "are 'earliest', 'latest', or a non-negative long."
            )
        return StartAt(exact=int(text))
    return StartAt(OffsetSpec.EARLIEST if args.from_beginning else OffsetSpec.LATEST)


def run(args: argparse.Namespace, out: BinaryIO | None = None) -> int:
    config: dict[str, str | int] = {
        "client.id": "console-consumer",
        **load_properties_file(args.consumer_config),
        **parse_properties(args.consumer_property, "--consumer-property"),
        "bootstrap.servers": args.bootstrap_server,
    }
    if args.isolation_level:
        config["isolation.level"] = args.isolation_level
    formatter = Formatter.from_properties(parse_properties(args.property, "--property"))
    start = start_position(args)
    if args.max_messages is not None and args.max_messages <= 0:
        print("Processed a total of 0 messages", file=sys.stderr)
        return 0
    sink = out or sys.stdout.buffer
    if args.group:
        if args.partition is not None or args.offset is not None:
            raise CliError("--partition and --offset cannot be used with --group")
        config["group.id"] = args.group
        config.setdefault("auto.offset.reset", "earliest" if args.from_beginning else "latest")
        count = asyncio.run(_consume_group(config, args, formatter, sink))
    else:
        count = asyncio.run(_consume(config, args, start, formatter, sink))
    print(f"Processed a total of {count} messages", file=sys.stderr)
    return 0


async def _positions(
    admin: AIOAdmin, tps: list[TopicPartition], start: StartAt
) -> dict[TopicPartition, int]:
    if start.exact is not None:
        return dict.fromkeys(tps, start.exact)
    offsets = await admin.list_offsets(dict.fromkeys(tps, start.spec))
    return {tp: offsets[tp].offset for tp in tps}


class _Session:
    """The fetch loop: positions per partition, counting and printing."""

    def __init__(
        self, client: AIOClient, args: argparse.Namespace, formatter: Formatter, out: BinaryIO
    ) -> None:
        self.client = client
        self.admin = AIOAdmin(client)
        self.reader = AIOPartitionReader(client)
        self.args = args
        self.formatter = formatter
        self.out = out
        self.printed = 0
        self.positions: dict[TopicPartition, int] = {}
        self.reset = StartAt(OffsetSpec.EARLIEST if args.from_beginning else OffsetSpec.LATEST)

    async def start(self, start: StartAt) -> None:
        topic, partition = self.args.topic, self.args.partition
        count = await self.client.wait_for_topic(topic)
        if partition is not None and not 0 <= partition < count:
            raise CliError(f"topic {topic!r} has no partition {partition}")
        parts = [partition] if partition is not None else list(range(count))
        tps = [TopicPartition(topic, p) for p in parts]
        self.positions = await _positions(self.admin, tps, start)

    def done(self) -> bool:
        limit = self.args.max_messages
        return limit is not None and self.printed >= limit

    async def poll(self, wait_ms: int) -> bool:
        """One fetch round; True when records were printed."""
        results = await self.reader.fetch_many(self.positions, max_wait_ms=wait_ms)
        lost = [tp for tp, r in results.items() if r.error_code == ErrorCode.OFFSET_OUT_OF_RANGE]
        if lost:
            self.positions.update(await _positions(self.admin, lost, self.reset))
        got = False
        for tp, result in results.items():
            if result.error_code == ErrorCode.OFFSET_OUT_OF_RANGE:
                continue
            if result.error_code:
                raise CliError(f"partition {tp}: {ErrorCode(result.error_code).name}")
            self.positions[tp] = result.next_offset
            for record in result.records:
                if self.done():
                    self.positions[tp] = record.offset
                    break
                self.out.write(self.formatter.format(record, tp.partition))
                self.printed += 1
                got = True
        self.out.flush()
        return got

    async def run(self) -> int:
        timeout_s = None if self.args.timeout_ms is None else self.args.timeout_ms / 1000
        last_data = time.monotonic()
        while not self.done():
            wait_ms = self.client.config.fetch_max_wait_ms
            if timeout_s is not None:
                left = timeout_s - (time.monotonic() - last_data)
                if left <= 0:
                    break
                wait_ms = max(0, min(wait_ms, int(left * 1000)))
            if await self.poll(wait_ms):
                last_data = time.monotonic()
        return self.printed


async def _consume(
    config: dict[str, str | int],
    args: argparse.Namespace,
    start: StartAt,
    formatter: Formatter,
    out: BinaryIO,
) -> int:
    async with AIOClient(config) as client:
        session = _Session(client, args, formatter, out)
        await session.start(start)
        return await session.run()


async def _consume_group(
    config: dict[str, str | int], args: argparse.Namespace, formatter: Formatter, out: BinaryIO
) -> int:
    printed = 0
    limit = args.max_messages
    timeout_s = None if args.timeout_ms is None else args.timeout_ms / 1000
    async with AIOConsumer(config) as consumer:
        consumer.subscribe([args.topic])
        last_data = time.monotonic()
        while limit is None or printed < limit:
            wait = 0.5
            if timeout_s is not None:
                left = timeout_s - (time.monotonic() - last_data)
                if left <= 0:
                    break
                wait = min(wait, left)
            records = await consumer.poll(
                wait, max_records=None if limit is None else limit - printed
            )
            for r in records:
                rec = Record(r.offset, r.timestamp, r.key, r.value, r.headers)
                kind = "LogAppendTime" if r.timestamp_type == 1 else "CreateTime"
                out.write(formatter.format(rec, r.partition, kind))
                printed += 1
            if records:
                out.flush()
                last_data = time.monotonic()
    return printed
