"""Where the end-to-end latency of bench/produce_consume.py's latency phase goes.

Runs ../shared/tools/kafka-bench.py's paced latency phase as produce_consume.py does
(1 KB records, acks=all, linger.ms=0, 10,000 records/s, 3 partitions; librdkafka's
producer and consumer in one process) against a fresh broker, while tcpdump captures
the loopback traffic to the broker's port. Each record's latency is then split by the
times its bytes were on the wire:

  client: record made -> produce request    librdkafka's producer (the payload holds
                                            the time the record was made)
  broker: produce request -> response       the broker, its waiting for a CPU included
  broker: fetch request -> response         when the record was there before the fetch
  broker: produce request -> fetch response when a fetch was waiting for the record
  consumer: fetch response -> next fetch    librdkafka's consumer turning around
  record made -> fetch response             the wire's view of end to end

next to kafka-bench's own end-to-end figure (which ends in the consumer's poll, in
Python). The broker's own share is also read from the kernel: CPU time and the time
its threads were ready to run while every core was busy (/proc/PID/task/*/schedstat).
On the 2-core machine the paced producer spins a core of its own, so that wait is a
large part of the broker's time.

    sudo python bench/latency_trace.py                    # strom, 20,000 records
    python bench/latency_trace.py --brokers strom,reference --records 5000

Needs tcpdump and the right to capture (root). Figures only, never a timed assertion.
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import produce_consume

PRODUCE, FETCH = 0, 1
LAT = re.compile(rb"LAT:(\d{19})")  # kafka-bench's latency payload: b"LAT:" + time_ns


def packets(pcap: Path) -> Iterator[tuple[float, int, int, int, bytes]]:
    """(time, source port, destination port, sequence number, TCP payload) of each IPv4
    TCP packet with a payload, from a pcap file of an Ethernet-framed capture."""
    with pcap.open("rb") as f:
        head = f.read(24)
        nano = struct.unpack("<I", head[:4])[0] == 0xA1B23C4D
        if struct.unpack("<I", head[20:24])[0] != 1:
            raise ValueError("expected an Ethernet-framed capture (tcpdump -i lo)")
        while len(rec := f.read(16)) == 16:
            sec, frac, length, _ = struct.unpack("<IIII", rec)
            ip = f.read(length)[14:]
            if ip[0] >> 4 != 4 or ip[9] != 6:
                continue
            total = struct.unpack(">H", ip[2:4])[0]
            tcp = ip[(ip[0] & 15) * 4 : total]
            sport, dport, seq = struct.unpack(">HHI", tcp[:8])
            payload = tcp[(tcp[12] >> 4) * 4 :]
            if payload:
                yield sec + frac / (1e9 if nano else 1e6), sport, dport, seq, payload


def frames(pcap: Path, port: int) -> list[tuple[float, int, bool, bytes]]:
    """Kafka frames as (time their last byte was on the wire, client port, is a request,
    frame), each direction of each connection reassembled by sequence number (bytes
    sent again are skipped; after bytes the capture missed, that direction ends)."""
    buffers: dict[tuple[int, bool], bytearray] = collections.defaultdict(bytearray)
    expected: dict[tuple[int, bool], int] = {}
    out = []
    for ts, sport, dport, seq, payload in packets(pcap):
        key = (sport, True) if dport == port else (dport, False)
        skip = (expected.get(key, seq) - seq) % (1 << 32)  # bytes already seen
        if skip >= 1 << 31:
            expected[key] = -1  # a gap: nothing after it can be framed
        if expected.get(key) == -1 or skip >= len(payload):
            continue
        expected[key] = (seq + len(payload)) % (1 << 32)
        buf = buffers[key]
        buf += payload[skip:]
        while len(buf) >= 4:
            size = struct.unpack(">i", buf[:4])[0]
            if len(buf) < 4 + size:
                break
            out.append((ts, key[0], key[1], bytes(buf[4 : 4 + size])))
            del buf[: 4 + size]
    return out


def attribute(pcap: Path, port: int) -> dict[str, list[float]]:
    """Each stage's latencies in ms (see the module's doc)."""
    requests: dict[tuple[int, int], tuple[float, int]] = {}  # (conn, corr) -> (ts, api)
    produced: dict[bytes, tuple[float, int, int]] = {}  # record -> (ts, conn, corr)
    answered: dict[tuple[int, int], float] = {}  # (conn, corr) -> response time
    fetched: dict[bytes, tuple[float, float]] = {}  # record -> (fetch req, fetch resp)
    stages: dict[str, list[float]] = collections.defaultdict(list)
    last_fetch_out: dict[int, float] = {}
    for ts, conn, is_request, frame in frames(pcap, port):
        if is_request:
            api, _, corr = struct.unpack(">hhi", frame[:8])
            requests[(conn, corr)] = (ts, api)
            if api == PRODUCE:
                for rec in LAT.findall(frame):
                    produced.setdefault(rec, (ts, conn, corr))
            elif api == FETCH and conn in last_fetch_out:
                stages["consumer: fetch response -> next fetch"].append(
                    ts - last_fetch_out.pop(conn)
                )
            continue
        corr = struct.unpack(">i", frame[:4])[0]
        sent, api = requests.get((conn, corr), (0.0, -1))
        answered.setdefault((conn, corr), ts)
        if api == FETCH:
            last_fetch_out[conn] = ts
            for rec in LAT.findall(frame):
                fetched.setdefault(rec, (sent, ts))
    for rec, (sent, conn, corr) in produced.items():
        made = int(rec) / 1e9
        stages["client: record made -> produce request"].append(sent - made)
        if (conn, corr) in answered:
            stages["broker: produce request -> response"].append(answered[(conn, corr)] - sent)
        if rec in fetched:
            fetch_sent, fetch_out = fetched[rec]
            stages["record made -> fetch response"].append(fetch_out - made)
            if fetch_sent <= sent:
                stages["broker: produce request -> waiting fetch's response"].append(
                    fetch_out - sent
                )
            else:
                stages["consumer: produce request -> the fetch asking for it"].append(
                    fetch_sent - sent
                )
                stages["broker: fetch request -> response"].append(fetch_out - fetch_sent)
    return {name: [x * 1000 for x in xs] for name, xs in stages.items()}


def schedstat(pid: int) -> tuple[float, float, int]:
    """The process's threads together: seconds on a CPU, seconds ready to run but
    waiting for one, and the number of times they were scheduled."""
    run = wait = slices = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            a, b, c = (task / "schedstat").read_text().split()
        except (OSError, ValueError):
            continue  # a thread that ended meanwhile
        run, wait, slices = run + int(a), wait + int(b), slices + int(c)
    return run / 1e9, wait / 1e9, slices


def percentiles(xs: list[float]) -> str:
    xs = sorted(xs)

    def at(q: float) -> float:
        return xs[min(len(xs) - 1, int(q * len(xs)))]

    return f"{len(xs):7,d} {at(0.5):8.3f} {at(0.9):8.3f} {at(0.99):8.3f} {xs[-1]:8.2f}"


def trace(kind: str, work: Path, tools: Path, records: int) -> None:
    with produce_consume.started(kind, work, tools / "reference-broker") as proc:
        port = int(proc.bootstrap.rsplit(":", 1)[1])
        pcap = work / f"{kind}.pcap"
        capture = subprocess.Popen(
            ["tcpdump", "-i", "lo", "-s", "0", "-B", "262144", "-w", str(pcap),
             "--time-stamp-precision=nano", f"tcp port {port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        try:
            assert capture.stderr is not None
            capture.stderr.readline()  # "listening on lo ...": capturing from here
            before = schedstat(proc.pid)
            started = time.monotonic()
            res = produce_consume.run_bench(
                tools / "kafka-bench.py", proc, kind, work / "results.jsonl",
                ["--messages", "1000", "--size", "1000", "--acks", "all",
                 "--consumer-client", "none", "--latency-messages", str(records),
                 "--latency-rate", "10000", "--latency-size", "1000"],
                timeout_s=120,
            )  # fmt: skip
            elapsed = time.monotonic() - started
            after = schedstat(proc.pid)
        finally:
            capture.send_signal(signal.SIGINT)
            _, err = capture.communicate(timeout=30)
    print(f"\n{kind}: kafka-bench's end to end {(res or {}).get('latency')}")
    print(f"  tcpdump: {' '.join(err.decode().split())}")
    run, wait, slices = (a - b for a, b in zip(after, before, strict=True))
    print(
        f"  broker threads over the run ({elapsed:.1f} s): {run:.2f} s on a CPU, {wait:.2f} s "
        f"ready but waiting for one, {slices:,} times scheduled"
    )
    print(f"  {'stage, ms':52} {'records':>7} {'p50':>8} {'p90':>8} {'p99':>8} {'max':>8}")
    for name, xs in attribute(pcap, port).items():
        print(f"  {name:52} {percentiles(xs)}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--brokers", default="strom", help="comma-separated: strom, reference")
    ap.add_argument("--records", type=int, default=20_000, help="records at 10,000/s")
    ap.add_argument("--tools", type=Path, default=produce_consume.TOOLS)
    a = ap.parse_args()
    if shutil.which("tcpdump") is None:
        ap.error("needs tcpdump (apt-get install tcpdump) and the right to capture")
    with tempfile.TemporaryDirectory(prefix="strom-latency-") as tmp:
        for kind in a.brokers.split(","):
            trace(kind, Path(tmp), a.tools, a.records)
    return 0


if __name__ == "__main__":
    sys.exit(main())
