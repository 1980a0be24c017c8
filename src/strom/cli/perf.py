"""``strom producer-perf-test`` and ``strom consumer-perf-test`` (Kafka's perf tools).

Output follows kafka-producer-perf-test.sh / kafka-consumer-perf-test.sh; a live
progress line goes to standard error while they run.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from datetime import datetime
from typing import Any

from strom.cli.common import CliError, load_properties_file, parse_properties
from strom.client.aio.consumer import AIOConsumer
from strom.client.aio.producer import AIOProducer
from strom.client.messages import RecordMetadata

MB = 1024 * 1024


def add_producer_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--topic", required=True)
    p.add_argument("--num-records", type=int, required=True)
    p.add_argument("--record-size", type=int, help="bytes per record (random payload)")
    p.add_argument("--payload-file", help="records taken from this file's lines")
    p.add_argument("--throughput", type=float, required=True, help="records/s cap; -1 = none")
    p.add_argument("--producer-props", nargs="+", metavar="KEY=VALUE", default=[])
    p.add_argument("--producer.config", dest="producer_config", metavar="FILE")
    p.add_argument("--bootstrap-server", help="shorthand for bootstrap.servers")
    p.add_argument("--print-metrics", action="store_true", help="print produce request count")


class _Stats:
    """Kafka's ProducerPerformance.Stats: windows every 5 s, percentiles at the end."""

    def __init__(self, total: int, window_s: float = 5.0) -> None:
        self.latencies: list[float] = []
        self.count = 0
        self.bytes = 0
        self.max_ms = 0.0
        self.total_ms = 0.0
        self.start = time.monotonic()
        self.window_start = self.start
        self.window = [0, 0, 0.0, 0.0]  # count, bytes, total latency, max latency
        self.window_s = window_s
        self.total = total

    def record(self, latency_ms: float, size: int) -> None:
        self.count += 1
        self.bytes += size
        self.total_ms += latency_ms
        self.max_ms = max(self.max_ms, latency_ms)
        self.latencies.append(latency_ms)
        w = self.window
        w[0] += 1
        w[1] += size
        w[2] += latency_ms
        w[3] = max(w[3], latency_ms)
        now = time.monotonic()
        if now - self.window_start >= self.window_s:
            self._print_window(now)

    def _print_window(self, now: float) -> None:
        count, size, total, peak = self.window
        elapsed = max(now - self.window_start, 1e-9)
        print(
            f"{int(count)} records sent, {count / elapsed:.1f} records/sec "
            f"({size / elapsed / MB:.2f} MB/sec), {total / max(count, 1):.1f} ms avg latency, "
            f"{peak:.1f} ms max latency.",
            flush=True,
        )
        self.window = [0, 0, 0.0, 0.0]
        self.window_start = now

    def progress(self) -> None:
        done = self.count / max(self.total, 1)
        bar = "#" * int(done * 30)
        print(f"\r[{bar:<30}] {self.count}/{self.total} records", end="", file=sys.stderr)

    def final(self) -> str:
        elapsed = max(time.monotonic() - self.start, 1e-9)
        lat = sorted(self.latencies) or [0.0]

        def pct(q: float) -> int:
            return int(lat[min(len(lat) - 1, int(q * len(lat)))])

        return (
            f"{self.count} records sent, {self.count / elapsed:f} records/sec "
            f"({self.bytes / elapsed / MB:.2f} MB/sec), {self.total_ms / max(self.count, 1):.2f} "
            f"ms avg latency, {self.max_ms:.2f} ms max latency, {pct(0.5)} ms 50th, "
            f"{pct(0.95)} ms 95th, {pct(0.99)} ms 99th, {pct(0.999)} ms 99.9th."
        )


def _payloads(args: argparse.Namespace) -> list[bytes]:
    if args.payload_file:
        with open(args.payload_file, "rb") as f:
            lines = [line.rstrip(b"\n") for line in f if line.strip()]
        if not lines:
            raise CliError(f"{args.payload_file} has no payloads")
        return lines
    if not args.record_size or args.record_size <= 0:
        raise CliError("either --record-size or --payload-file must be given")
    rng = random.Random(0)
    return [bytes(rng.choice(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(args.record_size))]


def run_producer(args: argparse.Namespace) -> int:
    config: dict[str, Any] = dict(load_properties_file(args.producer_config))
    config.update(parse_properties(args.producer_props, "--producer-props"))
    if args.bootstrap_server:
        config["bootstrap.servers"] = args.bootstrap_server
    if "bootstrap.servers" not in config:
        raise CliError("bootstrap.servers must be given (--producer-props or --bootstrap-server)")
    stats = _Stats(args.num_records)
    requests = asyncio.run(_produce(config, args, _payloads(args), stats))
    print("", file=sys.stderr)
    print(stats.final())
    if args.print_metrics:
        print(f"produce-requests: {requests}")
    return 0


async def _produce(
    config: dict[str, Any], args: argparse.Namespace, payloads: list[bytes], stats: _Stats
) -> int:
    async with AIOProducer(config) as producer:
        start = time.monotonic()
        throttle = args.throughput if args.throughput > 0 else None
        last_progress = 0.0
        for i in range(args.num_records):
            payload = payloads[i % len(payloads)]
            sent = time.monotonic()

            def done(
                md: RecordMetadata | None,
                err: BaseException | None,
                t: float = sent,
                n: int = len(payload),
            ) -> None:
                if err is None:
                    stats.record((time.monotonic() - t) * 1000, n)

            await producer.send(args.topic, payload, on_delivery=done)
            if throttle is not None and (i + 1) / (time.monotonic() - start + 1e-9) > throttle:
                await asyncio.sleep((i + 1) / throttle - (time.monotonic() - start))
            if sent - last_progress > 0.2:
                stats.progress()
                last_progress = sent
        await producer.flush()
        stats.progress()
        return producer.produce_requests


def add_consumer_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--topic", required=True)
    p.add_argument("--messages", type=int, required=True, help="records to consume")
    p.add_argument("--bootstrap-server", required=True)
    p.add_argument("--group", default=None, help="group id (default perf-consumer-<random>)")
    p.add_argument("--fetch-size", type=int, help="max.partition.fetch.bytes")
    p.add_argument(
        "--timeout", type=int, default=10_000, help="ms without records before giving up"
    )
    p.add_argument("--consumer.config", dest="consumer_config", metavar="FILE")
    p.add_argument("--consumer-props", nargs="+", metavar="KEY=VALUE", default=[])
    p.add_argument("--show-detailed-stats", action="store_true")
    p.add_argument("--reporting-interval", type=int, default=5000)
    p.add_argument("--hide-header", action="store_true")


def run_consumer(args: argparse.Namespace) -> int:
    config: dict[str, Any] = {
        "auto.offset.reset": "earliest",
        "enable.auto.commit": "true",
        **load_properties_file(args.consumer_config),
        **parse_properties(args.consumer_props, "--consumer-props"),
        "bootstrap.servers": args.bootstrap_server,
        "group.id": args.group or f"perf-consumer-{random.randint(0, 99_999)}",
    }
    if args.fetch_size:
        config["max.partition.fetch.bytes"] = args.fetch_size
    result = asyncio.run(_consume(config, args))
    print("", file=sys.stderr)
    if not args.hide_header:
        print(
            "start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, "
            "nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec"
        )
    print(result)
    return 0


async def _consume(config: dict[str, Any], args: argparse.Namespace) -> str:
    start_wall = datetime.now()
    start = time.monotonic()
    count = size = 0
    async with AIOConsumer(config) as consumer:
        consumer.subscribe([args.topic])
        joined: float | None = None
        last = time.monotonic()
        while count < args.messages and (time.monotonic() - last) * 1000 < args.timeout:
            records = await consumer.poll(0.5)
            if records:
                if joined is None:
                    joined = time.monotonic()
                last = time.monotonic()
                count += len(records)
                size += sum(len(r.value or b"") + len(r.key or b"") for r in records)
                print(f"\r{count}/{args.messages} records", end="", file=sys.stderr)
    end = time.monotonic()
    rebalance_ms = ((joined or end) - start) * 1000
    elapsed = max(end - start, 1e-9)
    fetch_s = max(end - (joined or end), 1e-9)
    fmt = "%Y-%m-%d %H:%M:%S:%f"
    return (
        f"{start_wall.strftime(fmt)[:-3]}, {datetime.now().strftime(fmt)[:-3]}, "
        f"{size / MB:.4f}, {size / MB / elapsed:.4f}, {count}, {count / elapsed:.4f}, "
        f"{rebalance_ms:.0f}, {fetch_s * 1000:.0f}, {size / MB / fetch_s:.4f}, "
        f"{count / fetch_s:.4f}"
    )
