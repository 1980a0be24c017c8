"""Produce/consume benchmark: strom and the reference broker side by side, in one run.

Drives ../shared/tools/kafka-bench.py (librdkafka through confluent-kafka) against
a fresh strom broker (writing to disk in a temporary directory) and a fresh
reference broker (in memory) for each configuration:

  1,000,000 x 100 B and 200,000 x 1 KB records, 3 partitions,
  acks=1 and acks=all, compression none and lz4,

then, per configuration and broker, the same produce from bench/produce_load.py:
batches encoded once and sent as fast as the broker answers (5x the records), which
measures the broker where librdkafka measures itself (its producer tops out near
900,000 records/s of 100 B on this machine whatever the broker), and one paced
end-to-end latency run per broker at 10 MB/s (1 KB records) (bench/latency_trace.py
splits that one by the times each record was on the wire). The same produce loop with
no broker at all (librdkafka only queueing) is timed too: no broker can show more
records/s than that in the librdkafka rows.
It also records each broker's start-to-ready time (spawn until the port
accepts) and idle RSS (1 s after ready). Results go to a JSON-lines file; a
table with strom/reference ratios is printed at the end. Quote ratios from one
run, not absolute figures: the machine is shared and noisy.

    python bench/produce_consume.py            # the full run (tens of minutes)
    python bench/produce_consume.py --quick    # 10x fewer records, a smoke run

Not part of the test suite and never a timed assertion.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import produce_load

from strom.testing.broker import BrokerProcess, strom_argv
from strom.testing.reference import reference_argv_factory, reference_broker_binary

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT.parent / "shared" / "tools"
BROKERS = ("strom", "reference")
LOAD_SCALE = 5  # the encoded-once load sends this many times the case's records


@dataclass(frozen=True)
class Case:
    messages: int
    size: int
    acks: str
    compression: str

    @property
    def name(self) -> str:
        return f"{self.messages}x{self.size}B acks={self.acks} {self.compression}"


def cases(quick: bool) -> list[Case]:
    scale = 10 if quick else 1
    return [
        Case(messages // scale, size, acks, compression)
        for messages, size in ((1_000_000, 100), (200_000, 1000))
        for acks in ("1", "all")
        for compression in ("none", "lz4")
    ]


def rss_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


@contextmanager
def started(kind: str, work: Path, ref_script: Path) -> Iterator[BrokerProcess]:
    data = Path(tempfile.mkdtemp(prefix=f"{kind}-", dir=work))
    if kind == "strom":
        proc = BrokerProcess(data, argv_factory=strom_argv)
    else:
        binary = reference_broker_binary(ref_script)
        proc = BrokerProcess(data, argv_factory=reference_argv_factory(binary))
    with proc:
        yield proc


def run_bench(
    tool: Path, proc: BrokerProcess, label: str, out: Path, args: list[str], timeout_s: float
) -> dict[str, Any] | None:
    cmd = [
        sys.executable,
        str(tool),
        "--bootstrap",
        proc.bootstrap,
        "--broker-pid",
        str(proc.pid),
        "--label",
        label,
        "--partitions",
        "3",
        "--consume-mode",
        "assign",
        "--timeout",
        str(timeout_s),
        *args,
    ]
    print(f"--- {label}: {' '.join(args)}", flush=True)
    done = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    sys.stdout.write(done.stdout)
    result = None
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[len("RESULT ") :])
    if result is not None:
        result["broker_rss_after_mb"] = round((rss_kb(proc.pid) or 0) / 1024, 1)
    if result is None:
        print(f"!!! {label} failed (exit {done.returncode}):\n{done.stderr[-2000:]}", flush=True)
        result = {"label": label, "error": done.stderr[-2000:], "exit": done.returncode}
    with out.open("a") as f:
        f.write(json.dumps(result) + "\n")
    return result if "error" not in result else None


def measure_start(kind: str, work: Path, ref_script: Path, out: Path) -> dict[str, Any]:
    with started(kind, work, ref_script) as proc:
        time.sleep(1.0)  # idle: let start-up allocations settle before reading RSS
        res = {
            "label": kind,
            "phase": "start",
            "start_to_ready_s": round(proc.start_to_ready_s or 0, 3),
            "idle_rss_mb": round((rss_kb(proc.pid) or 0) / 1024, 1),
        }
    with out.open("a") as f:
        f.write(json.dumps(res) + "\n")
    print(f"START {kind}: {res}", flush=True)
    return res


CEILING = """
import sys, time
from confluent_kafka import Producer
size, n = int(sys.argv[1]), int(sys.argv[2])
p = Producer({"bootstrap.servers": "127.0.0.1:1", "queue.buffering.max.messages": n + 1,
              "queue.buffering.max.kbytes": 2097151, "linger.ms": 5, "log_level": 0})
payloads = [bytes([65 + i % 26]) * size for i in range(1000)]
cb = lambda err, msg: None
t0 = time.perf_counter()
for i in range(n):
    p.produce("t", payloads[i % 1000], callback=cb)
    if (i & 1023) == 0:
        p.poll(0)
print(round(n / (time.perf_counter() - t0)))
"""


def client_ceiling(size: int, messages: int) -> int | None:
    """Records/s of kafka-bench's produce loop with no broker at all (librdkafka only
    queues them; no batch is sent, no delivery report runs): a bound on what any broker
    can show in the librdkafka rows."""
    args = [str(size), str(min(messages, 1_000_000))]
    done = subprocess.run([sys.executable, "-c", CEILING, *args], capture_output=True, text=True)
    return int(done.stdout) if done.returncode == 0 and done.stdout.strip().isdigit() else None


def ratio(a: Any, b: Any) -> str:
    if not isinstance(a, int | float) or not isinstance(b, int | float) or not b:
        return "-"
    return f"{a / b:.2f}"


def fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.2f}" if v < 10 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return "-"


METRICS = [
    ("produce_MB_s", "produce MB/s"),
    ("produce_msgs_s", "produce rec/s"),
    ("consume_MB_s", "consume MB/s"),
    ("consume_msgs_s", "consume rec/s"),
    ("broker_cpu_produce_s", "broker CPU s, produce"),
    # librdkafka's own CPU (the bench process): near the produce phase's duration, the
    # client is the limit and the rec/s rows above measure it, not the broker
    ("client_cpu_produce_s", "client CPU s, produce"),
    ("produce_s", "produce phase s"),
    ("broker_cpu_consume_s", "broker CPU s, consume"),
    ("broker_rss_after_mb", "broker RSS MB after the run"),
]


LOAD_METRICS = [
    ("produce_msgs_s", "encoded-once load: produce rec/s"),
    ("produce_MB_s", "encoded-once load: produce MB/s"),
    ("broker_cpu_produce_s", "encoded-once load: broker CPU s"),
]


def run_load(proc: BrokerProcess, label: str, out: Path, case: Case, scale: int) -> dict[str, Any]:
    print(f"--- {label}: encoded-once load, {case.name} x{scale}", flush=True)
    try:
        res = produce_load.run(
            proc.bootstrap,
            proc.pid,
            messages=case.messages * scale,
            size=case.size,
            acks=case.acks,
            compression=case.compression,
        )
    except (OSError, RuntimeError) as exc:
        res = {"error": str(exc), "ok": False}
    res["label"] = label
    print(f"RESULT {json.dumps(res)}", flush=True)
    with out.open("a") as f:
        f.write(json.dumps(res) + "\n")
    return res


def print_table(
    results: dict[tuple[str, str], dict[str, Any] | None],
    names: list[str],
    metrics: list[tuple[str, str]] = METRICS,
) -> None:
    """One block per metric: a row per case with strom, reference and strom/reference."""
    for key, title in metrics:
        print(f"\n{title:34} {'strom':>12} {'reference':>12} {'ratio':>7}")
        for name in names:
            s = (results.get(("strom", name)) or {}).get(key)
            r = (results.get(("reference", name)) or {}).get(key)
            print(f"  {name:32} {fmt(s):>12} {fmt(r):>12} {ratio(s, r):>7}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="10x fewer records, short latency run")
    ap.add_argument("--brokers", default="strom,reference", help="comma-separated subset")
    ap.add_argument("--tools", type=Path, default=TOOLS, help="shared tools folder")
    ap.add_argument("--json", type=Path, default=None, help="JSON-lines output file")
    ap.add_argument("--timeout", type=float, default=600.0, help="per-phase bound, seconds")
    a = ap.parse_args()
    kinds = [k for k in a.brokers.split(",") if k]
    unknown = set(kinds) - set(BROKERS)
    if unknown:
        ap.error(f"unknown brokers {sorted(unknown)}; choose from {BROKERS}")
    tool = a.tools / "kafka-bench.py"
    ref_script = a.tools / "reference-broker"
    out = (
        a.json
        or Path(tempfile.gettempdir()) / f"strom-bench-{time.strftime('%Y%m%d-%H%M%S')}.jsonl"
    )
    print(f"results: {out}", flush=True)
    results: dict[tuple[str, str], dict[str, Any] | None] = {}
    loads: dict[tuple[str, str], dict[str, Any] | None] = {}
    starts: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="strom-bench-") as tmp:
        work = Path(tmp)
        for kind in kinds:
            starts[kind] = measure_start(kind, work, ref_script, out)
        todo = cases(a.quick)
        for i, case in enumerate(todo):
            # Alternate which broker goes first, so drift on a shared machine evens out.
            for kind in kinds if i % 2 == 0 else list(reversed(kinds)):
                with started(kind, work, ref_script) as proc:
                    args = [
                        "--messages", str(case.messages), "--size", str(case.size),
                        "--acks", case.acks, "--compression", case.compression,
                        "--latency-messages", "0",
                    ]  # fmt: skip
                    res = run_bench(tool, proc, kind, out, args, a.timeout)
                    results[(kind, case.name)] = res
                with started(kind, work, ref_script) as proc:
                    res = run_load(proc, kind, out, case, 1 if a.quick else LOAD_SCALE)
                    loads[(kind, case.name)] = res if res.get("ok") else None
        latency: dict[str, Any] = {}
        lat_messages = 2_000 if a.quick else 20_000
        for kind in kinds:
            with started(kind, work, ref_script) as proc:
                args = [
                    "--messages", "1000", "--size", "1000", "--acks", "all",
                    "--consumer-client", "none", "--latency-messages", str(lat_messages),
                    "--latency-rate", "10000", "--latency-size", "1000",
                ]  # fmt: skip
                res = run_bench(tool, proc, kind, out, args, a.timeout)
                latency[kind] = (res or {}).get("latency")
    print_table(results, [c.name for c in todo])
    print_table(loads, [c.name for c in todo], LOAD_METRICS)
    print("\nend-to-end latency at 10 MB/s (1 KB records, acks=all):")
    for kind, lat in latency.items():
        print(f"  {kind:10} {lat}")
    print("\nlibrdkafka's produce loop with no broker (queueing only), records/s:")
    for size, messages in sorted({(c.size, c.messages) for c in todo}):
        print(f"  {size:>5} B  {fmt(client_ceiling(size, messages)):>12}")
    print("\nstart-to-ready and idle RSS:")
    for kind, st in starts.items():
        print(f"  {kind:10} ready in {st['start_to_ready_s']} s, idle RSS {st['idle_rss_mb']} MB")
    print(f"\nresults: {out}")
    return 0 if all(results.values()) and all(loads.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
