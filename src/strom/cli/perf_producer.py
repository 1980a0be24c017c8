"""``strom producer-perf-test``: kafka-producer-perf-test.sh.

Output follows Kafka's ProducerPerformance: a line per 5 s window, then the
totals with latency percentiles. On a terminal a progress bar on standard error
counts records handed to the producer (sent, with their rate: it runs ahead
while the buffer fills) and records acknowledged by the broker.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from typing import Any

from strom.cli.common import (
    CliError,
    add_command_config,
    add_command_property,
    client_config,
    parse_properties,
)
from strom.cli.progress import Bar, Rate
from strom.client.aio.producer import AIOProducer
from strom.client.messages import RecordMetadata

MB = 1024 * 1024


def add_producer_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--topic", required=True, help="REQUIRED: produce messages to this topic.")
    p.add_argument(
        "--num-records",
        type=int,
        required=True,
        metavar="N",
        help="REQUIRED: number of messages to produce.",
    )
    p.add_argument(
        "--record-size",
        type=int,
        metavar="BYTES",
        help="message size in bytes. Note that you must provide exactly one of --record-size "
        "or --payload-file.",
    )
    p.add_argument(
        "--payload-file",
        metavar="FILE",
        help="file to read the message payloads from, split by --payload-delimiter; a "
        "payload is picked at random for each record.",
    )
    p.add_argument(
        "--payload-delimiter",
        default="\\n",
        help="the delimiter of the payloads in --payload-file (default \\n).",
    )
    p.add_argument(
        "--throughput",
        type=float,
        required=True,
        help="REQUIRED: throttle maximum message throughput to *approximately* THROUGHPUT "
        "messages/sec. Set this to -1 to disable throttling.",
    )
    p.add_argument(
        "--producer-props",
        nargs="+",
        metavar="KEY=VALUE",
        default=[],
        help="kafka producer related configuration properties like bootstrap.servers, "
        "client.id etc. These configs take precedence over those passed via "
        "--command-config.",
    )
    add_command_property(p, client="Producer")
    add_command_config(p, "--producer.config", client="the producer")
    p.add_argument(
        "--bootstrap-server",
        metavar="HOST:PORT",
        help="the server(s) to connect to (overrides bootstrap.servers of the configs).",
    )
    p.add_argument(
        "--print-metrics",
        action="store_true",
        help="print out the number of produce requests at the end of the test.",
    )


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
    if args.payload_file and args.record_size:
        raise CliError("Please provide exactly one of --record-size or --payload-file")
    if args.payload_file:
        delimiter = args.payload_delimiter.encode().decode("unicode_escape").encode()
        try:
            with open(args.payload_file, "rb") as f:
                payloads = [p for p in f.read().split(delimiter) if p]
        except OSError as exc:
            raise CliError(f"cannot read {args.payload_file}: {exc.strerror}") from None
        if not payloads:
            raise CliError(f"File {args.payload_file} does not contain any payloads")
        return payloads
    if not args.record_size or args.record_size <= 0:
        raise CliError("either --record-size or --payload-file must be specified but not both.")
    rng = random.Random(0)
    return [bytes(rng.choice(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(args.record_size))]


def run_producer(args: argparse.Namespace) -> int:
    config: dict[str, Any] = client_config(args, bootstrap=False)
    config.update(parse_properties(args.producer_props, "--producer-props"))
    if args.bootstrap_server:
        config["bootstrap.servers"] = args.bootstrap_server
    if "bootstrap.servers" not in config:
        raise CliError("bootstrap.servers must be given (--producer-props or --bootstrap-server)")
    payloads = _payloads(args)
    stats = _Stats(args.num_records)
    with Bar("produce", args.num_records) as bar:
        requests = asyncio.run(_produce(config, args, payloads, stats, bar))
    print(stats.final())
    if args.print_metrics:
        print(f"produce-requests: {requests}")
    return 0


async def _produce(
    config: dict[str, Any],
    args: argparse.Namespace,
    payloads: list[bytes],
    stats: _Stats,
    bar: Bar,
) -> int:
    acked = Rate()
    async with AIOProducer(config) as producer:
        start = time.monotonic()
        throttle = args.throughput if args.throughput > 0 else None
        last_progress = 0.0
        for i in range(args.num_records):
            payload = payloads[i % len(payloads)] if len(payloads) == 1 else random.choice(payloads)
            sent = time.monotonic()

            def done(
                md: RecordMetadata | None,
                err: BaseException | None,
                t: float = sent,
                n: int = len(payload),
            ) -> None:
                if err is None:
                    stats.record((time.monotonic() - t) * 1000, n)
                    acked.add()
                else:
                    print(f"Error when sending message: {err}", file=sys.stderr)

            await producer.send(args.topic, payload, on_delivery=done)
            if throttle is not None and (i + 1) / (time.monotonic() - start + 1e-9) > throttle:
                await asyncio.sleep((i + 1) / throttle - (time.monotonic() - start))
            if sent - last_progress > 0.1:
                bar.update(i + 1, _ack_note(acked))
                last_progress = sent
        bar.update(args.num_records, _ack_note(acked))
        await producer.flush()
        bar.update(args.num_records, _ack_note(acked))
        return producer.produce_requests


def _ack_note(acked: Rate) -> str:
    return f"acked {acked.count} ({acked.per_second():,.0f} records/s)"
