"""``strom verify``: run the fault checker against a cluster while injecting faults.

    strom dev-cluster --data DIR &
    strom verify --cluster-dir DIR --duration 120 --faults kill-leader,pause,partition \\
        --report report.html

It creates a topic (3 partitions, up to 3 replicas, min.insync.replicas 2), runs
acks=all idempotent producers of confluent-kafka, kafka-python and aiokafka and a
transactional one for ``--duration`` seconds while injecting the named faults in
turn (each lasting ``--fault-seconds``, each listed fault at least once; see
:mod:`strom.testing.verify_faults`), then reads every partition back at
read_uncommitted and read_committed and prints the checker's report (lost,
duplicated, reordered, aborted and never-committed reads, inconsistent offsets, the
windows without an acknowledged write). ``--report`` writes it as HTML with a
timeline. The exit status is 0 when the checker found nothing, 1 otherwise.

Faults need the state file of a running ``strom dev-cluster`` (``--cluster-dir``);
without faults any cluster can be checked through ``--bootstrap-server``. It lives
in strom.testing because it starts and signals processes; ``strom verify``
dispatches here. The client libraries are the ``test`` extra's.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from strom.testing.checker import Report
from strom.testing.devstate import ClusterState, read_state
from strom.testing.verify_faults import FAULTS, FaultError, Injector, alive, check_faults
from strom.testing.verify_report import render_html
from strom.testing.workload import Workload, partitions_of

WARMUP_S = 2.0


class VerifyError(Exception):
    """The run cannot start; the message says why."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="strom verify",
        description="Check that acknowledged records survive faults (lost, duplicated, "
        "reordered, aborted reads, ...), with a report.",
    )
    p.add_argument("--bootstrap-server", metavar="HOSTS", help="default: the dev-cluster's")
    p.add_argument(
        "--cluster-dir",
        default="dev-cluster",
        metavar="DIR",
        help="the --data of a running strom dev-cluster (default ./dev-cluster)",
    )
    p.add_argument("--duration", type=float, default=60.0, metavar="S", help="seconds of load")
    p.add_argument(
        "--faults",
        default="",
        metavar="F1,F2",
        help=f"faults to inject in turn: {', '.join(FAULTS)}",
    )
    p.add_argument(
        "--fault-seconds",
        type=float,
        default=8.0,
        metavar="S",
        help="how long each fault lasts (default 8)",
    )
    p.add_argument(
        "--quiet-seconds",
        type=float,
        default=3.0,
        metavar="S",
        help="load without a fault between two faults (default 3)",
    )
    p.add_argument("--topic", help="topic to write (default strom-verify-<time>)")
    p.add_argument("--partitions", type=int, default=3)
    p.add_argument("--rate", type=float, default=100.0, help="records/s of each producer")
    p.add_argument("--no-transactions", action="store_true", help="idempotent producers only")
    p.add_argument(
        "--gap-seconds",
        type=float,
        default=1.0,
        help="report windows longer than this without an acknowledged write",
    )
    p.add_argument("--seed", type=int, help="seed of the fault choices")
    p.add_argument("--report", metavar="FILE.html", help="also write the report as HTML")
    return p


def _state(args: argparse.Namespace, faults: list[str]) -> ClusterState | None:
    data = Path(args.cluster_dir)
    try:
        state = read_state(data)
    except FileNotFoundError:
        if faults or not args.bootstrap_server:
            raise VerifyError(
                f"no running strom dev-cluster in {data} (no {data}/cluster.json); start one "
                "with `strom dev-cluster --data DIR`, or give --bootstrap-server without --faults"
            ) from None
        return None
    if not alive(state.pid):
        raise VerifyError(f"the dev-cluster of {data} (pid {state.pid}) is not running")
    return state


def _create_topic(bootstrap: str, topic: str, partitions: int, brokers: int) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

    replicas = min(3, brokers)
    config = {"min.insync.replicas": str(min(2, replicas))}
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(topic, partitions, replicas, config=config)])
    futures[topic].result(60)
    deadline = time.monotonic() + 60
    while True:
        try:
            parts = partitions_of(bootstrap, topic)
            if len(parts) == partitions and all(
                p.leader_id >= 0 and len(p.isr_nodes) == replicas for p in parts
            ):
                return
        except RuntimeError:
            pass
        if time.monotonic() > deadline:
            raise VerifyError(f"{topic} not fully replicated within 60 s")
        time.sleep(0.2)


def _schedule(args: argparse.Namespace, faults: list[str], injector: Injector | None) -> None:
    """Faults in turn while time is left (each listed one at least once)."""
    started = time.monotonic()
    time.sleep(WARMUP_S)
    done = 0
    while injector is not None and faults:
        left = args.duration - (time.monotonic() - started)
        if done >= len(faults) and left < args.fault_seconds + args.quiet_seconds:
            break
        kind = faults[done % len(faults)]
        print(f"[{time.monotonic() - started:6.1f} s] {kind}", flush=True)
        injector.inject(kind)
        done += 1
        time.sleep(args.quiet_seconds)
    left = args.duration - (time.monotonic() - started)
    if left > 0:
        time.sleep(left)


def run(args: argparse.Namespace) -> Report:
    faults = [f.strip() for f in args.faults.split(",") if f.strip()]
    reason = check_faults(faults)
    if reason:
        raise VerifyError(reason)
    state = _state(args, faults)
    bootstrap = args.bootstrap_server or (state.bootstrap if state else "")
    brokers = len(state.brokers) if state else len(bootstrap.split(","))
    topic = args.topic or f"strom-verify-{int(time.time())}"
    _create_topic(bootstrap, topic, args.partitions, brokers)
    txn = () if args.no_transactions else ("confluent-kafka",)
    load = Workload(bootstrap, topic, args.partitions, rate=args.rate, txn_clients=txn)
    injector = None
    if state is not None and faults:
        injector = Injector(
            Path(args.cluster_dir), topic, load.history, args.fault_seconds, args.seed
        )
    print(f"writing {topic} for {args.duration:.0f} s; faults: {', '.join(faults) or 'none'}")
    try:
        with load:
            _schedule(args, faults, injector)
    finally:
        if injector is not None:
            injector.heal_all()
    if injector is not None:
        try:
            injector.wait_recovered()
        except FaultError as exc:
            print(f"warning: {exc}", file=sys.stderr)
    report = load.check(args.gap_seconds)
    print(report.table())
    if args.report:
        settings = {
            "topic": topic,
            "bootstrap": bootstrap,
            "duration s": f"{args.duration:.0f}",
            "faults": ", ".join(faults) or "none",
            "fault s": f"{args.fault_seconds:.0f}",
            "producers": ", ".join(w.writer for w in load.loads),
        }
        html = render_html(load.history, report, f"strom verify: {topic}", settings)
        Path(args.report).write_text(html)
        print(f"report written to {args.report}")
    return report


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    try:
        report = run(args)
    except (VerifyError, FaultError) as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    except ImportError as exc:
        print(
            f"Error: strom verify needs the test extra's client libraries: {exc}", file=sys.stderr
        )
        return 1
    return 0 if report.ok else 1
