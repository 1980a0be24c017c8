"""Start-up benchmark: how fast strom's commands and brokers are ready, against the
reference broker in the same run.

    python bench/start_bench.py              # 20 runs of each
    python bench/start_bench.py --runs 5     # quicker
    python bench/start_bench.py --json out.jsonl

Measures, with min/median/max over the runs (issue 15's targets in brackets):
- ``python -c pass``: the interpreter's own floor on this machine;
- ``strom --help`` and ``strom topics --help`` [< 0.15 s], the installed console script
  (``python -m strom`` when there is none);
- a broker process from exec until its port accepts and an ApiVersions request is
  answered [< 0.25 s]: ``strom broker`` and the reference broker
  (../shared/tools/reference-broker, Tansu, in memory);
- an in-process broker (strom.testing.EmbeddedBroker), from after ``import strom`` until it
  answers ApiVersions [< 0.05 s]: the first one of a fresh process (which imports the broker
  code, starting with the standard library's asyncio, timed apart), the same until it has
  also created a topic (CreateTopics answered: code the broker loads on first use, such as
  the storage of a partition, counted too), and a second one in the same process (the code
  already imported);
- the ``python -X importtime`` breakdown of ``import strom.server.main`` (per module, the
  minimum over the runs).
Children run with bytecode caching on (PYTHONDONTWRITEBYTECODE removed), after one warm-up
run, as an installed package would. Figures only: nothing here asserts a time. The machine
may be shared: quote ratios from one run.
"""

from __future__ import annotations

import argparse
import collections
import inspect
import json
import os
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REFERENCE_SCRIPT = ROOT.parent / "shared" / "tools" / "reference-broker"
HOST = "127.0.0.1"
# ApiVersions v0 request: size 15, api_key 18, version 0, correlation id 1, client id "bench"
API_VERSIONS = struct.pack(">ihhih5s", 15, 18, 0, 1, 5, b"bench")


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def stats(values: Sequence[float]) -> dict[str, float]:
    return {
        "min": min(values),
        "median": statistics.median(values),
        "max": max(values),
    }


def show(label: str, values: Sequence[float], target: float | None = None) -> None:
    s = stats(values)
    goal = f"   (target < {target:.2f} s)" if target is not None else ""
    print(
        f"{label:<44} min {s['min']:.3f}  median {s['median']:.3f}  max {s['max']:.3f} s"
        f"  [{len(values)} runs]{goal}",
        flush=True,
    )


def timed_runs(argv: Sequence[str], runs: int) -> list[float]:
    env = child_env()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, check=True)  # warm-up, .pyc
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, check=True)
        out.append(time.perf_counter() - started)
    return out


def strom_command() -> list[str]:
    script = Path(sys.executable).parent / "strom"
    return [str(script)] if script.exists() else [sys.executable, "-m", "strom"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def _connect(port: int, timeout: float) -> socket.socket:
    """A connection to HOST:port, made without ``socket.create_connection``: its
    getaddrinfo encodes the host name with the IDNA codec, whose first use imports
    encodings.idna, stringprep and unicodedata (2 ms), which would be timed as the
    broker's start in the in-process case."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect((HOST, port))
    except OSError:
        sock.close()
        raise
    return sock


def answers_api_versions(port: int) -> bool:
    """Connect, send ApiVersions v0, read the whole response; False if not possible yet."""
    try:
        with _connect(port, 2) as sock:
            sock.sendall(API_VERSIONS)
            head = _read(sock, 4)
            size = struct.unpack(">i", head)[0]
            body = _read(sock, size)
            return struct.unpack(">i", body[:4])[0] == 1
    except OSError:
        return False


def creates_topic(port: int, name: str) -> bool:
    """CreateTopics v2 for one partition of ``name`` on the broker at ``port``; True when
    it answered no error (the broker has made the partition's log)."""
    topic = name.encode()
    body = struct.pack(
        f">hhih5si h{len(topic)}s ihii i?", 19, 2, 2, 5, b"bench", 1, len(topic), topic,
        1, 1, 0, 0, 10_000, False,
    )  # fmt: skip
    with _connect(port, 10) as sock:
        sock.sendall(struct.pack(">i", len(body)) + body)
        size = struct.unpack(">i", _read(sock, 4))[0]
        answer = _read(sock, size)
    # correlation id, throttle time, [topics]: name, error code, error message (null)
    error, message = struct.unpack(">hh", answer[-4:])
    return struct.unpack(">i", answer[:4])[0] == 2 and error == 0 and message == -1


def _read(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def process_start(argv_for: Callable[[int, Path], list[str]], runs: int) -> list[float]:
    """Seconds from exec to an answered ApiVersions, for ``runs`` fresh broker processes."""
    env = child_env()
    out = []
    for i in range(runs + 1):  # the first is the warm-up
        with tempfile.TemporaryDirectory(prefix="strom-start-bench-") as data:
            port = free_port()
            argv = argv_for(port, Path(data))
            started = time.perf_counter()
            proc = subprocess.Popen(
                argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            try:
                while not answers_api_versions(port):
                    if proc.poll() is not None:
                        raise RuntimeError(f"{argv[0]} exited with {proc.returncode}")
                    if time.perf_counter() - started > 30:
                        raise RuntimeError(f"{argv[0]} did not answer within 30 s")
                    time.sleep(0.002)
                elapsed = time.perf_counter() - started
            finally:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            if i:
                out.append(elapsed)
    return out


def strom_broker_argv(port: int, data: Path) -> list[str]:
    return [
        *strom_command(),
        "broker",
        "--override",
        f"listeners=PLAINTEXT://{HOST}:{port}",
        "--override",
        f"log.dirs={data}",
    ]


# The child gets the ApiVersions check as source (#HELPERS): importing this module there
# would time the bench's own imports (argparse, statistics, ...) as the broker's.
EMBEDDED = r"""
import json, socket, struct, sys, time
#HELPERS
import strom
started = time.perf_counter()
import asyncio  # the first thing the broker imports; timed apart: the standard library's floor
asyncio_s = time.perf_counter() - started
from strom.testing import EmbeddedBroker
first = EmbeddedBroker(memory=True).start()
assert answers_api_versions(first.port)
cold = time.perf_counter() - started
assert creates_topic(first.port, "bench")  # what it still imports on first use
cold_topic = time.perf_counter() - started
started = time.perf_counter()
second = EmbeddedBroker(memory=True).start()
assert answers_api_versions(second.port)
warm = time.perf_counter() - started
second.stop()
first.stop()
print(json.dumps({"cold": cold, "topic": cold_topic, "warm": warm, "asyncio": asyncio_s}))
"""


def embedded_script() -> str:
    helpers = "\n".join(
        inspect.getsource(fn) for fn in (_read, _connect, answers_api_versions, creates_topic)
    )
    constants = f"HOST = {HOST!r}\nAPI_VERSIONS = {API_VERSIONS!r}\n"
    return EMBEDDED.replace("#HELPERS\n", constants + helpers)


def embedded_start(runs: int) -> tuple[list[float], list[float], list[float], list[float]]:
    """(first broker's start, its start and first topic made, second broker's start, the
    first's ``import asyncio``)."""
    env = child_env()
    cold, topic, warm, floor = [], [], [], []
    argv = [sys.executable, "-c", embedded_script()]
    for i in range(runs + 1):
        out = subprocess.run(argv, env=env, capture_output=True, text=True, check=True).stdout
        result = json.loads(out.strip().splitlines()[-1])
        if i:
            cold.append(result["cold"])
            topic.append(result["topic"])
            warm.append(result["warm"])
            floor.append(result["asyncio"])
    return cold, topic, warm, floor


def importtime(statement: str, runs: int) -> tuple[float, list[tuple[str, int, int]]]:
    """(sum of the minimum self times in s, [(module, min self us, min cumulative us)])."""
    selfs: dict[str, list[int]] = collections.defaultdict(list)
    cums: dict[str, list[int]] = collections.defaultdict(list)
    env = child_env()
    for _ in range(runs):
        err = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", statement],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stderr
        for line in err.splitlines():
            if not line.startswith("import time:") or "self [us]" in line:
                continue
            own, cumulative, name = line[len("import time:") :].split("|")
            selfs[name.strip()].append(int(own))
            cums[name.strip()].append(int(cumulative))
    rows = sorted(
        ((name, min(v), min(cums[name])) for name, v in selfs.items()), key=lambda r: -r[1]
    )
    return sum(r[1] for r in rows) / 1e6, rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--top", type=int, default=15, help="modules shown of the importtime list")
    p.add_argument("--reference", type=Path, default=REFERENCE_SCRIPT)
    p.add_argument("--json", type=Path, help="append the figures as one JSON line")
    args = p.parse_args(argv)
    runs = args.runs
    results: dict[str, object] = {"runs": runs}

    def record(key: str, label: str, values: list[float], target: float | None = None) -> None:
        show(label, values, target)
        results[key] = stats(values)

    record("python", "python -c pass", timed_runs([sys.executable, "-c", "pass"], runs))
    strom = strom_command()
    record("help", "strom --help", timed_runs([*strom, "--help"], runs), 0.15)
    record(
        "topics_help", "strom topics --help", timed_runs([*strom, "topics", "--help"], runs), 0.15
    )
    record(
        "broker",
        "strom broker: exec to ApiVersions answered",
        process_start(strom_broker_argv, runs),
        0.25,
    )
    if args.reference.exists() and shutil.which("bash"):
        from strom.testing.reference import reference_argv_factory, reference_broker_binary

        factory = reference_argv_factory(reference_broker_binary(args.reference))
        record(
            "reference",
            "reference broker: exec to ApiVersions",
            process_start(lambda port, data: list(factory(port, data, {})), runs),
        )
    else:
        print(f"reference broker: {args.reference} not found; not measured")
    cold, topic, warm, floor = embedded_start(runs)
    record("embedded_cold", "EmbeddedBroker, first in a process", cold, 0.05)
    record("embedded_cold_topic", "  ... and its first topic created", topic)
    record("embedded_asyncio", "  of which: import asyncio (stdlib)", floor)
    record(
        "embedded_cold_strom",
        "  the rest: strom's imports and start",
        [c - f for c, f in zip(cold, floor, strict=True)],
    )
    record("embedded_warm", "EmbeddedBroker, second in a process", warm, 0.05)
    total, rows = importtime("import strom.server.main", max(5, runs // 2))
    print(
        f"\npython -X importtime -c 'import strom.server.main': {len(rows)} modules, "
        f"sum of per-module minimum self times {total:.3f} s; the largest:"
    )
    strom_total = sum(own for name, own, _ in rows if name.startswith("strom")) / 1e6
    print(f"  (strom's own modules: {strom_total:.3f} s; the rest: standard library, packages)")
    for name, own, cumulative in rows[: args.top]:
        print(f"  {own / 1000:7.2f} ms self {cumulative / 1000:8.2f} ms cumulative  {name}")
    results["importtime_s"] = total
    results["importtime_top"] = rows[: args.top]
    if args.json:
        with args.json.open("a") as f:
            f.write(json.dumps(results) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
