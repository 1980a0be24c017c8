"""``strom console-consumer``: kafka-console-consumer.sh.

Without ``--group`` it reads every partition of the topic(s) (``--topic``, or the
topics ``--include`` matches; or just ``--partition``) from the chosen position;
with ``--group`` it joins that consumer group (strom's AIOConsumer, committing
offsets). Records go through the ``--formatter`` (Kafka's DefaultMessageFormatter
by default); it stops after ``--max-messages`` records, when nothing arrived for
``--timeout-ms``, or on Ctrl-C, and then prints "Processed a total of N
messages" to standard error, as Kafka does.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import dataclass
from typing import BinaryIO

from strom.cli import console_consumer_options as options
from strom.cli.common import (
    CliError,
    client_config,
    include_pattern,
    load_properties_file,
    parse_properties,
)
from strom.cli.formatters import MessageFormatter, SerializationError, formatter
from strom.client.admin_types import OffsetSpec
from strom.client.aio.admin import AIOAdmin
from strom.client.aio.client import AIOClient
from strom.client.aio.consumer import AIOConsumer
from strom.client.aio.reader import AIOPartitionReader
from strom.client.messages import ConsumerRecord
from strom.common.types import TopicPartition
from strom.protocol.errors import ErrorCode

add_arguments = options.add_arguments


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


def message_formatter(args: argparse.Namespace) -> MessageFormatter:
    """--formatter configured from --formatter-config, the deserializer options and
    --formatter-property (in that order of precedence, lowest first)."""
    props = load_properties_file(args.formatter_config)
    if args.key_deserializer:
        props["key.deserializer"] = args.key_deserializer
    if args.value_deserializer:
        props["value.deserializer"] = args.value_deserializer
    props.update(parse_properties(args.formatter_property, "--formatter-property"))
    return formatter(args.formatter, props)


class _Output:
    """Formats and counts records; Ctrl-C and errors still report the count."""

    def __init__(self, args: argparse.Namespace, fmt: MessageFormatter, out: BinaryIO) -> None:
        self.fmt = fmt
        self.out = out
        self.limit: int | None = args.max_messages
        self.skip_errors: bool = args.skip_message_on_error
        self.count = 0

    def done(self) -> bool:
        return self.limit is not None and self.count >= self.limit

    def write(self, record: ConsumerRecord) -> None:
        try:
            self.fmt.write_to(record, self.out)
        except SerializationError as exc:
            if not self.skip_errors:
                raise CliError(
                    f"Error processing message, terminating consumer process: {exc}"
                ) from None
            print(f"ERROR Error processing message, skipping this message: {exc}", file=sys.stderr)
        self.count += 1


def run(args: argparse.Namespace, out: BinaryIO | None = None) -> int:
    config = client_config(args, {"client.id": "console-consumer"})
    if args.isolation_level:
        config["isolation.level"] = args.isolation_level
    start = start_position(args)
    if args.partition is not None and args.include:
        raise CliError("The topic is required when partition is specified.")
    output = _Output(args, message_formatter(args), out or sys.stdout.buffer)
    if args.max_messages is not None and args.max_messages <= 0:
        print("Processed a total of 0 messages", file=sys.stderr)
        return 0
    try:
        if args.group or "group.id" in config:
            if args.partition is not None or args.offset is not None:
                raise CliError("Options group and partition cannot be specified together.")
            config["group.id"] = args.group or config["group.id"]
            config.setdefault("auto.offset.reset", "earliest" if args.from_beginning else "latest")
            asyncio.run(_consume_group(config, args, output))
        else:
            asyncio.run(_consume(config, args, start, output))
    except (KeyboardInterrupt, CliError):
        print(f"Processed a total of {output.count} messages", file=sys.stderr)
        raise
    print(f"Processed a total of {output.count} messages", file=sys.stderr)
    return 0


async def _positions(
    admin: AIOAdmin, tps: list[TopicPartition], start: StartAt
) -> dict[TopicPartition, int]:
    if start.exact is not None:
        return dict.fromkeys(tps, start.exact)
    offsets = await admin.list_offsets(dict.fromkeys(tps, start.spec))
    return {tp: offsets[tp].offset for tp in tps}


class _Session:
    """The fetch loop without a group: positions per partition, printing in order."""

    def __init__(self, client: AIOClient, args: argparse.Namespace, output: _Output) -> None:
        self.client = client
        self.admin = AIOAdmin(client)
        self.reader = AIOPartitionReader(client)
        self.args = args
        self.output = output
        self.positions: dict[TopicPartition, int] = {}
        self.reset = StartAt(OffsetSpec.EARLIEST if args.from_beginning else OffsetSpec.LATEST)

    async def _topics(self) -> list[str]:
        if self.args.topic:
            return [self.args.topic]
        pattern = include_pattern(self.args.include)
        names = await self.admin.list_topics(include_internal=True)
        return [n for n in names if pattern.fullmatch(n)]

    async def start(self, start: StartAt) -> None:
        tps: list[TopicPartition] = []
        for topic in await self._topics():
            count = await self.client.wait_for_topic(topic)
            partition = self.args.partition
            if partition is not None and not 0 <= partition < count:
                raise CliError(f"topic {topic!r} has no partition {partition}")
            parts = [partition] if partition is not None else list(range(count))
            tps.extend(TopicPartition(topic, p) for p in parts)
        self.positions = await _positions(self.admin, tps, start) if tps else {}

    async def poll(self, wait_ms: int) -> bool:
        """One fetch round; True when records were printed."""
        if not self.positions:
            await asyncio.sleep(wait_ms / 1000)
            return False
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
            for r in result.records:
                if self.output.done():
                    self.positions[tp] = r.offset
                    break
                self.output.write(ConsumerRecord(*r, tp.topic, tp.partition))
                got = True
        self.output.out.flush()
        return got

    async def run(self) -> None:
        timeout_s = None if self.args.timeout_ms is None else self.args.timeout_ms / 1000
        last_data = time.monotonic()
        while not self.output.done():
            wait_ms = self.client.config.fetch_max_wait_ms
            if timeout_s is not None:
                left = timeout_s - (time.monotonic() - last_data)
                if left <= 0:
                    break
                wait_ms = max(0, min(wait_ms, int(left * 1000)))
            if await self.poll(wait_ms):
                last_data = time.monotonic()


async def _consume(
    config: dict[str, str | int], args: argparse.Namespace, start: StartAt, output: _Output
) -> None:
    async with AIOClient(config) as client:
        session = _Session(client, args, output)
        await session.start(start)
        await session.run()


async def _consume_group(
    config: dict[str, str | int], args: argparse.Namespace, output: _Output
) -> None:
    timeout_s = None if args.timeout_ms is None else args.timeout_ms / 1000
    async with AIOConsumer(config) as consumer:
        consumer.subscribe([args.topic] if args.topic else include_pattern(args.include))
        last_data = time.monotonic()
        while not output.done():
            wait = 0.5
            if timeout_s is not None:
                left = timeout_s - (time.monotonic() - last_data)
                if left <= 0:
                    break
                wait = min(wait, left)
            limit = None if output.limit is None else output.limit - output.count
            records = await consumer.poll(wait, max_records=limit)
            for r in records:
                output.write(r)
            if records:
                output.out.flush()
                last_data = time.monotonic()
