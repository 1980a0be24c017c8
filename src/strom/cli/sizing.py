"""``strom size``: how many brokers, partitions, disk, network and memory a workload needs.

In the manner of eventsizer.io, from strom's own measured per-core figures
(:mod:`strom.cli.sizing_figures`, written by bench/sizing_bench.py), never invented
throughput constants. The model, each step printed with its reasoning:

- the workload on the wire and on disk at peak: throughput x peak factor x compression
  ratio (records are stored as the producer compressed them);
- CPU: a strom broker serves requests on one event loop, so one core per broker; the
  cores that peak needs are the produce, replication and consume traffic each divided
  by its measured MB per CPU second; brokers = those cores / the target utilisation
  (leaving room for a failed broker's partitions), at least the replication factor;
- partitions: enough that no single partition needs more than one loop's share, at
  least one leader per broker, rounded up to a multiple of the brokers for balance;
- disk: average throughput x compression x retention x replication factor, per broker,
  kept below the fill limit;
- network per broker: in = produced + replicated in; out = consumed + replicated out;
- memory: the page cache holds 30 s of each broker's writes (Kafka's guidance:
  write_throughput x 30), plus the broker's measured resident set and its per-partition
  growth.
"""

from __future__ import annotations

import argparse
import math
import re
from dataclasses import dataclass

from strom.cli import sizing_figures
from strom.cli.common import CliError

# Choices of the model (policy, not measurements): stated in the output.
TARGET_CPU_UTILIZATION = 0.5  # a loop at most half busy at peak: room for a failed broker
DISK_FILL_LIMIT = 0.8  # provision disks so that retained data fills at most 80 %
PAGE_CACHE_SECONDS = 30  # Kafka's docs: memory for write_throughput x 30 s
_UNITS_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass(frozen=True, slots=True)
class Figures:
    """strom's measured per-core figures (defaults: sizing_figures, from bench/)."""

    produce_mb_per_core_s: float = sizing_figures.PRODUCE_MB_PER_CORE_S
    consume_mb_per_core_s: float = sizing_figures.CONSUME_MB_PER_CORE_S
    replication_mb_per_core_s: float = sizing_figures.REPLICATION_MB_PER_CORE_S
    broker_idle_rss_mb: float = sizing_figures.BROKER_IDLE_RSS_MB
    rss_kb_per_partition: float = sizing_figures.RSS_KB_PER_PARTITION


@dataclass(frozen=True, slots=True)
class Workload:
    throughput_mb_s: float  # average producer payload, uncompressed (1 MB = 10^6 bytes)
    record_bytes: int
    retention_s: float
    replication_factor: int = 3
    consumer_groups: int = 1
    peak_factor: float = 1.0
    compression_ratio: float = 1.0  # stored bytes / producer bytes

    def check(self) -> None:
        if self.throughput_mb_s <= 0:
            raise CliError("--throughput-mb-s must be more than 0")
        if self.record_bytes <= 0:
            raise CliError("--record-bytes must be more than 0")
        if self.retention_s <= 0:
            raise CliError("--retention must be more than 0")
        if self.replication_factor < 1:
            raise CliError("--replication-factor must be at least 1")
        if self.consumer_groups < 0:
            raise CliError("--consumer-groups must be 0 or more")
        if self.peak_factor < 1:
            raise CliError("--peak-factor must be at least 1")
        if not 0 < self.compression_ratio <= 1:
            raise CliError("--compression-ratio must be more than 0 and at most 1")


@dataclass(frozen=True, slots=True)
class Row:
    what: str
    value: str
    how: str


@dataclass(frozen=True, slots=True)
class Sizing:
    partitions: int
    brokers: int
    disk_per_broker_gb: float
    network_in_per_broker_mb_s: float
    network_out_per_broker_mb_s: float
    page_cache_per_broker_gb: float
    broker_memory_mb: float
    rows: tuple[Row, ...]


def parse_retention(text: str) -> float:
    """``7d``, ``168h``, ``30m``, ``1w``, ``3600s``, ``500ms`` -> seconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*", text)
    if m is None:
        raise CliError(f"--retention {text!r}: expected a number and a unit (ms, s, m, h, d, w)")
    return float(m.group(1)) * _UNITS_S[m.group(2)]


def size(w: Workload, f: Figures | None = None) -> Sizing:
    """The cluster ``w`` needs on strom, with the reasoning as rows."""
    f = f or Figures()
    w.check()
    rows: list[Row] = []
    rows.append(
        Row(
            "records per second (average)",
            f"{w.throughput_mb_s * 1e6 / w.record_bytes:,.0f}",
            f"{w.throughput_mb_s:g} MB/s / {w.record_bytes} B",
        )
    )
    wire = w.throughput_mb_s * w.peak_factor * w.compression_ratio
    rows.append(
        Row(
            "peak ingress, as stored",
            f"{wire:,.1f} MB/s",
            f"{w.throughput_mb_s:g} MB/s x peak {w.peak_factor:g} x compression "
            f"{w.compression_ratio:g}",
        )
    )
    brokers = _brokers(w, f, wire, rows)
    partitions = _partitions(f, wire, brokers, rows)
    disk, net_in, net_out = _disk_and_network(w, wire, brokers, rows)
    cache_gb, process_mb = _memory(w, f, wire, brokers, partitions, rows)
    return Sizing(partitions, brokers, disk, net_in, net_out, cache_gb, process_mb, tuple(rows))


def _brokers(w: Workload, f: Figures, wire: float, rows: list[Row]) -> int:
    """CPU: one event loop (one core) per broker, kept at the target utilisation."""
    rf, groups = w.replication_factor, w.consumer_groups
    cores = (
        wire / f.produce_mb_per_core_s
        + wire * (rf - 1) / f.replication_mb_per_core_s
        + wire * groups / f.consume_mb_per_core_s
    )
    rows.append(
        Row(
            "CPU at peak",
            f"{cores:.2f} cores",
            f"produce {wire:.1f}/{f.produce_mb_per_core_s:g} + replicate {wire:.1f}x{rf - 1}/"
            f"{f.replication_mb_per_core_s:g} + consume {wire:.1f}x{groups}/"
            f"{f.consume_mb_per_core_s:g} (measured MB per CPU second)",
        )
    )
    by_cpu = math.ceil(cores / TARGET_CPU_UTILIZATION - 1e-9)
    brokers = max(rf, by_cpu, 1)
    rows.append(
        Row(
            "brokers",
            str(brokers),
            f"max(replication factor {rf}, {cores:.2f} cores / {TARGET_CPU_UTILIZATION:g} "
            f"target use of one event loop per broker = {by_cpu})",
        )
    )
    return brokers


def _partitions(f: Figures, wire: float, brokers: int, rows: list[Row]) -> int:
    per_loop = min(f.produce_mb_per_core_s, f.consume_mb_per_core_s) * TARGET_CPU_UTILIZATION
    by_load = math.ceil(wire / per_loop - 1e-9)
    partitions = math.ceil(max(by_load, brokers) / brokers) * brokers
    rows.append(
        Row(
            "partitions",
            str(partitions),
            f"max({wire:.1f} MB/s / {per_loop:g} MB/s a loop takes at "
            f"{TARGET_CPU_UTILIZATION:g} = {by_load}, one leader per broker {brokers}), "
            f"rounded up to a multiple of {brokers} brokers",
        )
    )
    return partitions


def _disk_and_network(
    w: Workload, wire: float, brokers: int, rows: list[Row]
) -> tuple[float, float, float]:
    rf, groups = w.replication_factor, w.consumer_groups
    stored_gb = w.throughput_mb_s * w.compression_ratio * w.retention_s * rf / 1000
    disk = stored_gb / brokers / DISK_FILL_LIMIT
    net_in = wire * rf / brokers
    net_out = wire * (groups + rf - 1) / brokers
    rows += [
        Row(
            "disk per broker",
            f"{disk:,.1f} GB",
            f"{w.throughput_mb_s:g} MB/s x {w.compression_ratio:g} x {w.retention_s:,.0f} s x "
            f"RF {rf} = {stored_gb:,.1f} GB / {brokers} brokers / {DISK_FILL_LIMIT:g} fill limit",
        ),
        Row(
            "network in per broker (peak)",
            f"{net_in:,.1f} MB/s",
            f"{wire:.1f} MB/s x RF {rf} (produced + replicated in) / {brokers} brokers",
        ),
        Row(
            "network out per broker (peak)",
            f"{net_out:,.1f} MB/s",
            f"{wire:.1f} MB/s x ({groups} groups + {rf - 1} replicas) / {brokers} brokers",
        ),
    ]
    return disk, net_in, net_out


def _memory(
    w: Workload, f: Figures, wire: float, brokers: int, partitions: int, rows: list[Row]
) -> tuple[float, float]:
    rf = w.replication_factor
    cache_gb = wire * rf * PAGE_CACHE_SECONDS / brokers / 1000
    replicas = partitions * rf / brokers
    process_mb = f.broker_idle_rss_mb + replicas * f.rss_kb_per_partition / 1024
    rows += [
        Row(
            "page cache per broker",
            f"{cache_gb:,.2f} GB",
            f"{PAGE_CACHE_SECONDS} s of the broker's writes: {wire:.1f} MB/s x RF {rf} / "
            f"{brokers} brokers x {PAGE_CACHE_SECONDS} s",
        ),
        Row(
            "broker process memory",
            f"{process_mb:,.0f} MB",
            f"measured {f.broker_idle_rss_mb:g} MB idle + {replicas:g} replicas x "
            f"{f.rss_kb_per_partition:g} KB",
        ),
    ]
    return cache_gb, process_mb


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--throughput-mb-s",
        type=float,
        required=True,
        help="average producer throughput, MB/s of uncompressed records",
    )
    p.add_argument("--record-bytes", type=int, required=True, help="average record size")
    p.add_argument("--retention", required=True, help="how long records are kept: 7d, 12h, ...")
    p.add_argument("--replication-factor", type=int, default=3, help="replicas of each partition")
    p.add_argument("--consumer-groups", type=int, default=1, help="groups reading everything")
    p.add_argument("--peak-factor", type=float, default=1.0, help="peak / average throughput")
    p.add_argument(
        "--compression-ratio",
        type=float,
        default=1.0,
        help="compressed / uncompressed size (0.4: records shrink to 40 %%)",
    )


def workload(args: argparse.Namespace) -> Workload:
    return Workload(
        throughput_mb_s=args.throughput_mb_s,
        record_bytes=args.record_bytes,
        retention_s=parse_retention(args.retention),
        replication_factor=args.replication_factor,
        consumer_groups=args.consumer_groups,
        peak_factor=args.peak_factor,
        compression_ratio=args.compression_ratio,
    )


def render(w: Workload, s: Sizing) -> str:
    head = (
        f"{w.throughput_mb_s:g} MB/s of {w.record_bytes}-byte records, retention "
        f"{w.retention_s:,.0f} s, replication factor {w.replication_factor}, "
        f"{w.consumer_groups} consumer group(s), peak x{w.peak_factor:g}, compression "
        f"ratio {w.compression_ratio:g}"
    )
    widths = [max(len(r.what) for r in s.rows), max(len(r.value) for r in s.rows)]
    lines = [head, "", f"{'WHAT':<{widths[0]}}  {'VALUE':>{widths[1]}}  HOW"]
    lines += [f"{r.what:<{widths[0]}}  {r.value:>{widths[1]}}  {r.how}" for r in s.rows]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    w = workload(args)
    print(render(w, size(w)))
    return 0
