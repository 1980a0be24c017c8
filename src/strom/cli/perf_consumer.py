"""``strom consumer-perf-test``: kafka-consumer-perf-test.sh.

Output follows Kafka's ConsumerPerformance (header, optional detailed lines,
one summary line). When fewer than ``--messages`` records arrive before
``--timeout`` ms pass without a record, it prints Kafka's WARNING and exits 1.
On a terminal a progress bar (records, rate, ETA) runs on standard error.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from datetime import datetime
from typing import Any

from strom.cli.common import (
    add_bootstrap,
    add_command_config,
    add_command_property,
    client_config,
    include_pattern,
    parse_properties,
)
from strom.cli.console_consumer_options import add_topic_or_include
from strom.cli.progress import Bar
from strom.client.aio.consumer import AIOConsumer

MB = 1024 * 1024
HEADER = (
    "start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, "
    "rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec"
)
DETAILED_HEADER = (
    "time, threadId, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, "
    "rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec"
)


def add_consumer_arguments(p: argparse.ArgumentParser) -> None:
    add_bootstrap(p)
    add_topic_or_include(p)
    p.add_argument(
        "--messages",
        type=int,
        required=True,
        metavar="N",
        help="REQUIRED: The number of messages to consume.",
    )
    p.add_argument(
        "--group", default=None, help="The group id to consume on (default perf-consumer-<n>)."
    )
    p.add_argument(
        "--fetch-size",
        type=int,
        metavar="BYTES",
        help="The amount of data to fetch in a single request (max.partition.fetch.bytes).",
    )
    p.add_argument(
        "--from-latest",
        action="store_true",
        help="If the consumer does not already have an established offset to consume from, "
        "start with the latest message present in the log rather than the earliest message.",
    )
    p.add_argument(
        "--timeout",
        type=int,
        default=10_000,
        metavar="MS",
        help="The maximum allowed time in milliseconds between returned records (default 10000).",
    )
    add_command_config(p, "--consumer.config", client="the consumer")
    add_command_property(p, client="Consumer")
    p.add_argument(
        "--consumer-props",
        nargs="+",
        metavar="KEY=VALUE",
        default=[],
        help="consumer config properties (as --command-property, several after one flag).",
    )
    p.add_argument(
        "--show-detailed-stats",
        action="store_true",
        help="If set, stats are reported for each reporting interval as configured by "
        "reporting-interval",
    )
    p.add_argument(
        "--reporting-interval",
        type=int,
        default=5000,
        metavar="MS",
        help="Interval in milliseconds at which to print progress info (default 5000).",
    )
    p.add_argument(
        "--hide-header", action="store_true", help="If set, skips printing the header for the stats"
    )


def _time(wall: float) -> str:
    """Kafka's default --date-format, yyyy-MM-dd HH:mm:ss:SSS."""
    return datetime.fromtimestamp(wall).strftime("%Y-%m-%d %H:%M:%S:%f")[:-3]


class _Run:
    """Counts, timings and the reporting of one consumer-perf run."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.count = 0
        self.bytes = 0
        self.start_wall = time.time()
        self.start = time.monotonic()
        self.joined: float | None = None
        self.last_report = self.start
        self.last_count = 0
        self.last_bytes = 0

    def add(self, size: int) -> None:
        self.count += 1
        self.bytes += size

    def maybe_report(self, now: float) -> None:
        """A detailed line per reporting interval (--show-detailed-stats)."""
        if (now - self.last_report) * 1000 < self.args.reporting_interval:
            return
        if self.args.show_detailed_stats:
            elapsed_ms = max((now - self.last_report) * 1000, 1e-9)
            mb = (self.bytes - self.last_bytes) / MB
            n = self.count - self.last_count
            print(
                f"{_time(time.time())}, 0, {self.bytes / MB:.4f}, {1000 * mb / elapsed_ms:.4f}, "
                f"{self.count}, {1000 * n / elapsed_ms:.4f}, 0, {elapsed_ms:.0f}, "
                f"{1000 * mb / elapsed_ms:.4f}, {1000 * n / elapsed_ms:.4f}",
                flush=True,
            )
        self.last_report, self.last_count, self.last_bytes = now, self.count, self.bytes

    def summary(self, end: float) -> str:
        elapsed = max(end - self.start, 1e-9)
        rebalance_ms = ((self.joined or end) - self.start) * 1000
        fetch_s = max(end - self.start - rebalance_ms / 1000, 1e-9)
        mb = self.bytes / MB
        end_wall = self.start_wall + (end - self.start)
        return (
            f"{_time(self.start_wall)}, {_time(end_wall)}, {mb:.4f}, {mb / elapsed:.4f}, "
            f"{self.count}, {self.count / elapsed:.4f}, {rebalance_ms:.0f}, "
            f"{fetch_s * 1000:.0f}, {mb / fetch_s:.4f}, {self.count / fetch_s:.4f}"
        )


def run_consumer(args: argparse.Namespace) -> int:
    config: dict[str, Any] = client_config(
        args,
        {
            "auto.offset.reset": "latest" if args.from_latest else "earliest",
            "enable.auto.commit": "true",
            "client.id": "perf-consumer-client",
        },
    )
    config.update(parse_properties(args.consumer_props, "--consumer-props"))
    config["group.id"] = args.group or f"perf-consumer-{random.randint(0, 99_999)}"
    if args.fetch_size:
        config["max.partition.fetch.bytes"] = args.fetch_size
    if not args.hide_header:
        print(DETAILED_HEADER if args.show_detailed_stats else HEADER, flush=True)
    stats = _Run(args)
    with Bar("consume", args.messages) as bar:
        asyncio.run(_consume(config, args, stats, bar))
    end = time.monotonic()
    short = stats.count < args.messages
    if short:
        print(
            "WARNING: Exiting before consuming the expected number of messages: timeout "
            f"({args.timeout} ms) exceeded. You can use the --timeout option to increase the "
            "timeout."
        )
    if not args.show_detailed_stats:
        print(stats.summary(end))
    return 1 if short else 0


async def _consume(config: dict[str, Any], args: argparse.Namespace, stats: _Run, bar: Bar) -> None:
    async with AIOConsumer(config) as consumer:
        consumer.subscribe([args.topic] if args.topic else include_pattern(args.include))
        last = time.monotonic()
        while stats.count < args.messages and (time.monotonic() - last) * 1000 <= args.timeout:
            records = await consumer.poll(0.1)
            now = time.monotonic()
            if not records:
                continue
            if stats.joined is None:
                stats.joined = now
            last = now
            for r in records:
                stats.add(len(r.value or b"") + len(r.key or b""))
                stats.maybe_report(now)
            bar.update(stats.count)
