"""Request-rate benchmark: the highest request rate a broker serves with p99 <= 5 ms.

For each case, an open-loop load generator (one process, raw sockets, requests encoded
once and pipelined over a few connections) sends requests at a paced rate; each step
of the rate ladder runs a few seconds and measures, per request, the time from its
scheduled send to its response (so a slow broker cannot slow the schedule down). The
result per case is the highest rate whose p99 stayed within --p99-ms, and the
broker's CPU microseconds per request (utime+stime of the broker process over the
step, divided by the responses).

Cases (strom and the reference broker in the same run, alternating who goes first):

  produce-acks1        Produce v9, one record (100 B) per request, acks=1
  produce-acksall      the same with acks=all
  metadata-none        Metadata v9 naming no topic (the brokers and the cluster id): a
                       request whose handling costs little, so about the cost of a
                       request's way in and out (loop, socket, connection) on its own
  fetch-1p             consumer Fetch v12 of 1 partition, returning its last record
  fetch-100p           consumer Fetch v12 of 100 caught-up partitions (max_wait 0), full
                       requests without a session (each names every partition)
  fetch-100p-session   the same in an incremental fetch session (KIP-227): after the
                       first request, each names no partition; a broker that answers
                       session id 0 gets full requests instead
  follower-100p[-session]  (--follower, strom only: needs ZooKeeper) a follower's Fetch
                       (replica_id set) of 100 caught-up partitions of a 2-broker
                       cluster, with and without a session

    python bench/request_rate.py                    # every single-node case
    python bench/request_rate.py --cases produce-acks1,fetch-1p --step-s 2
    python bench/request_rate.py --follower         # also the follower cases
    python bench/request_rate.py --profile produce-acks1:10000 --brokers strom
        # py-spy samples the strom broker during that step; collapsed stacks to a file
        # (PYSPY_NATIVE=1: with native frames; PROFILER=perf: `perf record -g` instead,
        # which also sees the kernel's share)

Figures only, never a timed assertion. The client runs on the same 2-core machine and
costs CPU too: quote ratios from one run, not absolute figures.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import selectors
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from strom.protocol.frame import RequestHeader, decode_response, encode_request
from strom.protocol.generated.create_topics import CreateTopicsRequest
from strom.protocol.generated.fetch import FetchRequest, FetchResponse
from strom.protocol.generated.list_offsets import ListOffsetsRequest
from strom.protocol.generated.metadata import MetadataRequest
from strom.protocol.generated.produce import ProduceRequest
from strom.protocol.records import build_batch
from strom.testing.broker import BrokerProcess
from strom.testing.reference import reference_argv_factory, reference_broker_binary

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT.parent / "shared" / "tools"
RATES = (1000, 2000, 5000, 10000, 15000, 20000, 25000, 30000, 40000, 50000)
SINGLE_CASES = (
    "metadata-none",
    "produce-acks1",
    "produce-acksall",
    "fetch-1p",
    "fetch-100p",
    "fetch-100p-session",
)
FOLLOWER_CASES = ("follower-100p", "follower-100p-session")
PRODUCE_V, FETCH_V = 9, 12
EPOCH_MARK = 0x5EC0_0E90
MAX_IN_FLIGHT = 2000  # per connection: beyond this the step has failed anyway
_SIZE = struct.Struct(">i")
_I32 = struct.Struct(">i")


# -- set-up through the wire protocol (works with any Kafka-compatible broker) ------------
class Wire:
    def __init__(self, bootstrap: str) -> None:
        host, _, port = bootstrap.rpartition(":")
        self.sock = socket.create_connection((host, int(port)), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.correlation = 0

    def request(self, req: Any, version: int) -> Any:
        self.correlation += 1
        header = RequestHeader(req.API_KEY, version, self.correlation, "rr-bench")
        self.sock.sendall(encode_request(header, req))
        size = _SIZE.unpack(self._exactly(4))[0]
        return decode_response(req.API_KEY, version, self._exactly(size))[1]

    def _exactly(self, n: int) -> bytes:
        out = bytearray()
        while len(out) < n:
            got = self.sock.recv(n - len(out))
            if not got:
                raise ConnectionError("closed")
            out += got
        return bytes(out)

    def close(self) -> None:
        self.sock.close()


def create_topic(
    w: Wire, name: str, partitions: int, assignment: list[int] | None = None, rf: int = 1
) -> None:
    t = CreateTopicsRequest.CreatableTopic(name=name, num_partitions=partitions)
    t.replication_factor = rf
    if assignment is not None:
        t.num_partitions, t.replication_factor = -1, -1
        t.assignments = [
            CreateTopicsRequest.CreatableReplicaAssignment(p, assignment) for p in range(partitions)
        ]
    resp = w.request(CreateTopicsRequest(topics=[t], timeout_ms=30000), 5)
    code = resp.topics[0].error_code
    if code not in (0, 36):
        raise RuntimeError(f"create {name}: error {code}")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        md = w.request(MetadataRequest(topics=[MetadataRequest.MetadataRequestTopic(name=name)]), 9)
        parts = md.topics[0].partitions if md.topics else []
        if len(parts) == partitions and all(p.leader_id >= 0 for p in parts):
            return
        time.sleep(0.2)
    raise RuntimeError(f"topic {name} has no leaders")


def one_record_batch(size: int = 100) -> bytes:
    return build_batch([(None, b"v" * size, (), int(time.time() * 1000))])


def produce_frame(topic: str, acks: int, partition: int = 0) -> bytes:
    req = ProduceRequest(acks=acks, timeout_ms=30000)
    pd = ProduceRequest.PartitionProduceData(index=partition, records=one_record_batch())
    req.topic_data = [ProduceRequest.TopicProduceData(name=topic, partition_data=[pd])]
    return encode_request(RequestHeader(0, PRODUCE_V, 1, "rr-bench"), req)


def fill(w: Wire, topic: str, partitions: int) -> None:
    for p in range(partitions):
        req = ProduceRequest(acks=-1, timeout_ms=30000)
        pd = ProduceRequest.PartitionProduceData(index=p, records=one_record_batch())
        req.topic_data = [ProduceRequest.TopicProduceData(name=topic, partition_data=[pd])]
        resp = w.request(req, PRODUCE_V)
        code = resp.responses[0].partition_responses[0].error_code
        if code:
            raise RuntimeError(f"produce to {topic}-{p}: error {code}")


def end_offsets(w: Wire, topic: str, partitions: int) -> list[int]:
    req = ListOffsetsRequest(replica_id=-1)
    req.topics = [
        ListOffsetsRequest.ListOffsetsTopic(
            topic, [ListOffsetsRequest.ListOffsetsPartition(p, -1, -1) for p in range(partitions)]
        )
    ]
    resp = w.request(req, 5)
    got = {p.partition_index: p.offset for p in resp.topics[0].partitions}
    return [got[p] for p in range(partitions)]


# -- fetch requests -----------------------------------------------------------------------
@dataclass
class FetchSpec:
    topic: str
    offsets: list[int]
    replica_id: int = -1
    session: bool = False

    def full(self, session_epoch: int, session_id: int = 0) -> FetchRequest:
        parts = [
            FetchRequest.FetchPartition(
                partition=p,
                fetch_offset=o,
                log_start_offset=0 if self.replica_id >= 0 else -1,
                partition_max_bytes=1 << 20,
            )
            for p, o in enumerate(self.offsets)
        ]
        return FetchRequest(
            replica_id=self.replica_id,
            max_wait_ms=0,
            min_bytes=0,
            max_bytes=50 << 20,
            session_id=session_id,
            session_epoch=session_epoch,
            topics=[FetchRequest.FetchTopic(topic=self.topic, partitions=parts)],
        )


def fetch_frame(req: FetchRequest) -> bytes:
    return encode_request(RequestHeader(1, FETCH_V, 1, "rr-bench"), req)


def open_session(bootstrap: str, spec: FetchSpec) -> tuple[int, bytes, int]:
    """A session (id, frame template with the epoch at ``offset``) on a fresh connection,
    or (0, full frame, -1) when the broker creates none."""
    w = Wire(bootstrap)
    try:
        resp: FetchResponse = w.request(spec.full(session_epoch=0), FETCH_V)
    finally:
        w.close()
    if resp.error_code or resp.session_id == 0:
        return 0, fetch_frame(spec.full(session_epoch=-1)), -1
    req = FetchRequest(
        replica_id=spec.replica_id,
        max_wait_ms=0,
        min_bytes=0,
        max_bytes=50 << 20,
        session_id=resp.session_id,
        session_epoch=EPOCH_MARK,
        topics=[],
    )
    frame = fetch_frame(req)
    offset = frame.find(_I32.pack(EPOCH_MARK))
    return resp.session_id, frame, offset


# -- the load generator -------------------------------------------------------------------
@dataclass
class Conn:
    sock: socket.socket
    frame: Callable[[], bytes]
    scheduled: collections.deque[int] = field(default_factory=collections.deque)
    buf: bytearray = field(default_factory=bytearray)
    out: list[bytes] = field(default_factory=list)
    pending: bytearray = field(default_factory=bytearray)  # encoded, not yet sent

    def send(self) -> None:
        """Send what the socket takes now, never blocking: a broker that has stopped
        reading until its answers are read must not stall the reading of them."""
        if self.out:
            self.pending += b"".join(self.out)
            self.out.clear()
        if self.pending:
            try:
                n = self.sock.send(self.pending)
            except BlockingIOError:
                return
            del self.pending[:n]


def connect(bootstrap: str, frame: Callable[[], bytes]) -> Conn:
    host, _, port = bootstrap.rpartition(":")
    s = socket.create_connection((host, int(port)), timeout=30)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.setblocking(False)
    return Conn(s, frame)


def _drain(c: Conn, now: int, lats: list[int]) -> int:
    data = c.sock.recv(1 << 20)
    if not data:
        raise ConnectionError("broker closed the connection")
    buf = c.buf
    buf += data
    pos, n, done = 0, len(buf), 0
    while n - pos >= 4:
        size = _SIZE.unpack_from(buf, pos)[0]
        if n - pos - 4 < size:
            break
        pos += 4 + size
        lats.append(now - c.scheduled.popleft())
        done += 1
    del buf[:pos]
    return done


def run_step(conns: list[Conn], rate: int, seconds: float) -> tuple[list[int], int, bool]:
    """Send ``rate`` requests a second for ``seconds``: (latencies in ns, responses, overloaded)."""
    total = max(1, int(rate * seconds))
    interval = 1e9 / rate
    sel = selectors.DefaultSelector()
    for c in conns:
        sel.register(c.sock, selectors.EVENT_READ, c)
    start = time.perf_counter_ns() + 1_000_000
    deadline = start + int(seconds * 1e9) + 3_000_000_000
    lats: list[int] = []
    sent = done = 0
    overloaded = False
    try:
        while done < total:
            now = time.perf_counter_ns()
            if now > deadline:
                overloaded = True
                break
            due = min(total, int((now - start) / interval) + 1) if now >= start else 0
            while sent < due:
                c = conns[sent % len(conns)]
                if len(c.scheduled) >= MAX_IN_FLIGHT:
                    overloaded = True
                    break
                c.out.append(c.frame())
                c.scheduled.append(start + int(sent * interval))
                sent += 1
            if overloaded:
                break
            for c in conns:
                c.send()
            wait = 0.01 if sent >= total else max(0.0, (start + sent * interval - now) / 1e9)
            if any(c.pending for c in conns):
                wait = min(wait, 0.001)
            for key, _ in sel.select(wait):
                done += _drain(key.data, time.perf_counter_ns(), lats)
    finally:
        sel.close()
    return lats, done, overloaded


def settle(conns: list[Conn]) -> None:
    """Read what is still in flight (after an overloaded step) before the next one."""
    sel = selectors.DefaultSelector()
    for c in conns:
        sel.register(c.sock, selectors.EVENT_READ, c)
    try:
        while any(c.scheduled for c in conns):
            for c in conns:
                c.send()
            ready = sel.select(0.001 if any(c.pending for c in conns) else 30)
            if not ready and not any(c.pending for c in conns):
                raise TimeoutError("no answer for 30 s")
            for key, _ in ready:
                _drain(key.data, 0, [])
    finally:
        sel.close()
    for c in conns:
        c.buf.clear()


def broker_cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def pct(sorted_ns: list[int], q: float) -> float:
    if not sorted_ns:
        return float("nan")
    return sorted_ns[min(len(sorted_ns) - 1, int(q * len(sorted_ns)))] / 1e6


# -- cases ----------------------------------------------------------------------------------
@dataclass
class Target:
    kind: str
    bootstrap: str
    pid: int


def make_frames(case: str, t: Target, setup: Wire, n_conns: int) -> list[Callable[[], bytes]]:
    if case == "metadata-none":
        frame = encode_request(RequestHeader(3, 9, 1, "rr-bench"), MetadataRequest(topics=[]))
        return [lambda f=frame: f for _ in range(n_conns)]  # type: ignore[misc]
    if case.startswith("produce"):
        topic = f"rr-{case}"
        create_topic(setup, topic, 1)
        frame = produce_frame(topic, 1 if case == "produce-acks1" else -1)
        return [lambda f=frame: f for _ in range(n_conns)]  # type: ignore[misc]
    if case == "fetch-1p":
        topic = "rr-fetch-1p"
        create_topic(setup, topic, 1)
        fill(setup, topic, 1)
        last = end_offsets(setup, topic, 1)[0] - 1
        frame = fetch_frame(FetchSpec(topic, [last]).full(session_epoch=-1))
        return [lambda f=frame: f for _ in range(n_conns)]  # type: ignore[misc]
    topic = "rr-fetch-100p" if case.startswith("fetch") else "rr-follow-100p"
    replica_id = 1 if case.startswith("follower") else -1
    if replica_id < 0:  # the follower cluster created its topic before broker 1 stopped
        ensure_100p(setup, topic, replica_id)
    offsets = end_offsets(setup, topic, 100)
    spec = FetchSpec(topic, offsets, replica_id)
    check = setup.request(spec.full(session_epoch=-1), FETCH_V)
    errors = {p.error_code for t in check.responses for p in t.partitions} - {0}
    if errors and replica_id < 0:
        raise RuntimeError(f"{t.kind}: fetch of {topic} answers errors {errors}")
    if not case.endswith("-session"):
        frame = fetch_frame(spec.full(session_epoch=-1))
        return [lambda f=frame: f for _ in range(n_conns)]  # type: ignore[misc]
    frames: list[Callable[[], bytes]] = []
    for _ in range(n_conns):
        session_id, template, offset = open_session(t.bootstrap, spec)
        if session_id == 0:
            print(f"  {t.kind}: no fetch session created; full requests", flush=True)
            frames.append(lambda f=template: f)  # type: ignore[misc]
            continue
        frames.append(_epoch_counter(template, offset))
    return frames


def ensure_100p(setup: Wire, topic: str, replica_id: int) -> None:
    if replica_id >= 0:
        create_topic(setup, topic, 100, assignment=[0, 1])
    else:
        create_topic(setup, topic, 100)
    fill(setup, topic, 100)


def _epoch_counter(template: bytes, offset: int) -> Callable[[], bytes]:
    buf = bytearray(template)
    epoch = [0]

    def next_frame() -> bytes:
        epoch[0] += 1
        _I32.pack_into(buf, offset, epoch[0])
        return bytes(buf)

    return next_frame


def run_case(
    case: str, t: Target, a: argparse.Namespace, profile_rate: int | None
) -> dict[str, Any]:
    setup = Wire(t.bootstrap)
    try:
        frames = make_frames(case, t, setup, a.connections)
    finally:
        setup.close()
    conns = [connect(t.bootstrap, f) for f in frames]
    steps: list[dict[str, Any]] = []
    best = best_p50 = 0
    failures = 0
    try:
        run_step(conns, 500, 0.5)  # warm-up
        for rate in a.rates:
            prof = None
            if profile_rate == rate:
                prof = start_profile(t.pid, a.profile_out, a.step_s)
            cpu0 = broker_cpu_s(t.pid)
            lats, done, overloaded = run_step(conns, rate, a.step_s)
            cpu1 = broker_cpu_s(t.pid)
            if prof is not None:
                prof.wait()
            if overloaded:
                settle(conns)
            lats.sort()
            p99 = pct(lats, 0.99)
            ok = not overloaded and p99 <= a.p99_ms
            step = {
                "rate": rate,
                "responses": done,
                "p50_ms": round(pct(lats, 0.5), 3),
                "p99_ms": round(p99, 3),
                "cpu_us_per_req": round((cpu1 - cpu0) * 1e6 / done, 1) if done else None,
                "ok": ok,
            }
            steps.append(step)
            print(f"  {t.kind:9} {case:22} {json.dumps(step)}", flush=True)
            if not overloaded and step["p50_ms"] <= a.p99_ms:
                best_p50 = rate  # kept up, with a median within the limit
            if ok:
                best = rate
                failures = 0
            else:
                failures += 1
                # a noisy step is retried by the next rate; a saturated broker ends the case
                if failures >= 3 or overloaded or step["p50_ms"] > a.p99_ms:
                    break
    finally:
        for c in conns:
            c.sock.close()
    kept_up = [s for s in steps if s["rate"] == best_p50]
    cpu = kept_up[-1]["cpu_us_per_req"] if kept_up else None
    return {
        "broker": t.kind,
        "case": case,
        "max_rate": best,
        "max_rate_p50": best_p50,
        "cpu_us_per_req": cpu,
        "steps": steps,
    }


def start_profile(pid: int, out: Path, seconds: float) -> subprocess.Popen[bytes]:
    if os.environ.get("PROFILER") == "perf":
        cmd = ["perf", "record", "-e", "cpu-clock", "-F", "2000", "-g", "-p", str(pid)]
        cmd += ["-o", str(out), "--", "sleep", str(max(1, int(seconds)))]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.3)
        return proc
    cmd = ["py-spy", "record", "--pid", str(pid), "--format", "raw", "--rate", "500"]
    cmd += ["--duration", str(max(1, int(seconds))), "--output", str(out)]
    cmd += ["--native"] if os.environ.get("PYSPY_NATIVE") else ["--nonblocking"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.3)
    return proc


# -- brokers ----------------------------------------------------------------------------
@contextmanager
def single(kind: str, work: Path, ref_script: Path, env: dict[str, str]) -> Iterator[Target]:
    """A broker: "reference", "strom" (this tree), or "strom@LABEL=SRC" (strom from
    another source tree, e.g. the commit before a change, in the same run)."""
    data = Path(tempfile.mkdtemp(prefix="broker-", dir=work))
    if kind.startswith("strom"):
        _, _, src = kind.partition("=")
        extra = {"PYTHONPATH": src} if src else {}
        proc = BrokerProcess(data, env={**os.environ, **env, **extra})
        kind = kind.partition("=")[0]
    else:
        binary = reference_broker_binary(ref_script)
        proc = BrokerProcess(data, argv_factory=reference_argv_factory(binary))
    with proc:
        yield Target(kind, proc.bootstrap, proc.pid)


@contextmanager
def follower_cluster(work: Path, env: dict[str, str]) -> Iterator[Target]:
    """Two strom brokers; broker 1 is stopped after the topic is created, and the bench
    fetches from broker 0 as broker 1 would."""
    from strom.testing.cluster import Cluster

    with Cluster(work / "cluster", brokers=2) as cluster:
        b0 = cluster.broker(0)
        setup = Wire(b0.bootstrap)
        try:
            ensure_100p(setup, "rr-follow-100p", 1)
        finally:
            setup.close()
        cluster.broker(1).stop()
        yield Target("strom", b0.bootstrap, b0.pid)


def print_table(results: list[dict[str, Any]], kinds: list[str]) -> None:
    """Per case and broker: the highest rate within the p99 limit and CPU us/request,
    with ratios to the reference broker of the same run."""
    names = [k.partition("=")[0] for k in kinds]
    by = {(r["broker"], r["case"]): r for r in results}
    cases = list(dict.fromkeys(r["case"] for r in results))
    print("\nreq/s: highest rate with p99 within the limit; p50 req/s: highest kept up")
    print("with a median within it; us/req: broker CPU per request at that rate")
    head = f"{'case':22}{'broker':>16}{'req/s':>8}{'p50 req/s':>10}{'us/req':>8}"
    print(head + f"{'rate/ref':>9}{'p50/ref':>9}{'cpu/ref':>8}")
    for case in cases:
        ref = by.get(("reference", case))
        for name in names:
            r = by.get((name, case))
            if r is None:
                continue
            row = f"{case:22}{name:>16}{r['max_rate']:>8}{r['max_rate_p50']:>10}"
            row += f"{r['cpu_us_per_req'] or '-':>8}"
            if ref and name != "reference":
                row += _ratio(r["max_rate"], ref["max_rate"], 9)
                row += _ratio(r["max_rate_p50"], ref["max_rate_p50"], 9)
                row += _ratio(r["cpu_us_per_req"], ref["cpu_us_per_req"], 8)
            print(row)


def _ratio(a: float | None, b: float | None, width: int) -> str:
    return f"{a / b:>{width}.2f}" if a and b else f"{'-':>{width}}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--cases", default=",".join(SINGLE_CASES))
    ap.add_argument("--follower", action="store_true", help="also the follower cases (ZooKeeper)")
    ap.add_argument(
        "--brokers",
        default="strom,reference",
        help="strom, reference, or strom@LABEL=SRC_DIR for strom from another tree",
    )
    ap.add_argument("--step-s", type=float, default=3.0, help="seconds per rate step")
    ap.add_argument("--rates", default=",".join(map(str, RATES)), help="the rate ladder")
    ap.add_argument("--p99-ms", type=float, default=5.0)
    ap.add_argument("--connections", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=1, help="run every case this many times")
    ap.add_argument("--profile", default=None, help="CASE:RATE to sample strom with py-spy")
    ap.add_argument("--profile-out", type=Path, default=Path("/tmp/strom-profile.txt"))
    ap.add_argument("--strom-env", action="append", default=[], help="KEY=VALUE for strom")
    ap.add_argument("--tools", type=Path, default=TOOLS)
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    kinds = [k for k in a.brokers.split(",") if k]
    a.rates = [int(r) for r in a.rates.split(",") if r]
    env = dict(kv.split("=", 1) for kv in a.strom_env)
    cases = [c for c in a.cases.split(",") if c]
    profile_case, profile_rate = None, None
    if a.profile:
        profile_case, _, r = a.profile.partition(":")
        profile_rate = int(r)
    ref_script = a.tools / "reference-broker"
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="strom-rr-") as tmp:
        work = Path(tmp)
        for i in range(a.repeat):
            for j, case in enumerate(cases):
                order = kinds if (i + j) % 2 == 0 else list(reversed(kinds))
                for kind in order:
                    with single(kind, work, ref_script, env) as t:
                        is_strom = kind.startswith("strom")
                        prof = profile_rate if is_strom and case == profile_case else None
                        results.append(run_case(case, t, a, prof))
            if a.follower and "strom" in kinds:
                with follower_cluster(work, env) as t:
                    for case in FOLLOWER_CASES:
                        prof = profile_rate if case == profile_case else None
                        results.append(run_case(case, t, a, prof))
    if a.json:
        with a.json.open("a") as f:
            for r in results:
                f.write(json.dumps(r) + "\n")
    print_table(results, kinds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
