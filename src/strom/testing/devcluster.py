"""``strom dev-cluster``: a real ZooKeeper and N strom brokers on 127.0.0.1, for development.

ZooKeeper (Debian's ``zookeeper`` package, run by :mod:`strom.testing.zookeeper`)
keeps its data in ``DIR/zookeeper``; broker N listens on 127.0.0.1:(BASE+N) and
keeps its logs in ``DIR/broker-N/log`` and its output in ``DIR/broker-N/broker.log``.
Once every broker serves (each one's Metadata lists all N brokers and a controller)
the tool prints ``zookeeper.connect=...`` and ``bootstrap.servers=...``, writes
``DIR/cluster.json`` (pids, broker ids, addresses, ZooKeeper: see
:mod:`strom.testing.devstate`, read by ``strom verify``), then runs until Ctrl-C
(SIGINT) or SIGTERM: the brokers stop one by one with SIGTERM (a controlled
shutdown each), then ZooKeeper. A broker that exits is reported; it is started
again when ``DIR/control/start-<id>`` appears. Starting again with the same
``--data`` finds the same topics and records.

It lives in strom.testing (not strom.cli) because it starts broker processes;
``strom dev-cluster`` dispatches here as ``strom broker`` dispatches to the server.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import time
from pathlib import Path
from types import FrameType

from strom.protocol.generated.metadata import MetadataRequest
from strom.testing.broker import BrokerExitedError, BrokerStartTimeoutError
from strom.testing.cluster import Cluster
from strom.testing.devstate import (
    ClusterState,
    Process,
    remove_state,
    start_requests,
    write_state,
)
from strom.testing.wire import RawClient
from strom.testing.zookeeper import (
    INSTALL_HINT,
    ZooKeeperProcess,
    ZooKeeperStartError,
    free_port,
    zookeeper_installed,
)

HOST = "127.0.0.1"
CHROOT = "/strom"
READY_TIMEOUT_S = 90.0


class StartError(Exception):
    """The cluster could not start; the message says why."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="strom dev-cluster",
        description="Run a ZooKeeper and N strom brokers on 127.0.0.1 until Ctrl-C.",
    )
    p.add_argument("--brokers", type=int, default=3, metavar="N", help="brokers (default 3)")
    p.add_argument(
        "--data",
        default="dev-cluster",
        metavar="DIR",
        help="data directory (default ./dev-cluster); the same DIR again reuses the data",
    )
    p.add_argument(
        "--zookeeper-port",
        type=int,
        default=2181,
        metavar="P",
        help="ZooKeeper's client port (default 2181; 0: any free port)",
    )
    p.add_argument(
        "--port",
        type=int,
        default=9092,
        metavar="BASE",
        help="broker N listens on BASE+N (default 9092; 0: any free ports)",
    )
    p.add_argument(
        "--override",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a broker config for every broker (repeatable)",
    )
    return p


def _port(port: int) -> int:
    """``port`` when nothing listens on it (0: a free one); StartError otherwise."""
    if port == 0:
        return free_port(HOST)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            raise StartError(
                f"{HOST}:{port} is in use (another broker, ZooKeeper or dev-cluster?); "
                "choose other ports with --port/--zookeeper-port (0: any free port)"
            ) from None
    return port


def _overrides(args: argparse.Namespace) -> dict[str, str]:
    replicas = min(3, args.brokers)
    settings = {
        "offsets.topic.replication.factor": str(replicas),
        "transaction.state.log.replication.factor": str(replicas),
        "transaction.state.log.min.isr": str(min(2, replicas)),
    }
    for item in args.override:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise StartError(f"--override expects KEY=VALUE, got {item!r}")
        settings[key.strip()] = value
    return settings


def _serves(bootstrap: str, brokers: int) -> bool:
    with RawClient(bootstrap, timeout_s=5) as c:
        md = c.request(MetadataRequest(topics=[], allow_auto_topic_creation=False), 12)
    return len(md.brokers) == brokers and md.controller_id >= 0


def prepare(args: argparse.Namespace, data: Path) -> tuple[ZooKeeperProcess, Cluster]:
    """ZooKeeper and the brokers, not started yet; StartError when they cannot start."""
    if args.brokers < 1:
        raise StartError("--brokers must be at least 1")
    if not zookeeper_installed():
        raise StartError(INSTALL_HINT)
    overrides = _overrides(args)
    zk_port = _port(args.zookeeper_port)
    ports = {i: _port(0 if args.port == 0 else args.port + i) for i in range(args.brokers)}
    zookeeper = ZooKeeperProcess(data / "zookeeper", host=HOST, port=zk_port)
    cluster = Cluster(
        data, args.brokers, overrides, zookeeper=zookeeper, chroot=CHROOT, host=HOST, ports=ports
    )
    return zookeeper, cluster


def start(zookeeper: ZooKeeperProcess, cluster: Cluster) -> None:
    """Start ZooKeeper, then the brokers; return once every broker serves."""
    zookeeper.start()
    cluster.start()
    n = len(cluster.brokers)
    cluster.wait_for(
        "every broker to serve",
        lambda: all(_serves(b.bootstrap, n) for b in cluster.brokers.values()),
        timeout_s=READY_TIMEOUT_S,
    )


def _announce(zookeeper: ZooKeeperProcess, cluster: Cluster, data: Path) -> None:
    print(f"ZooKeeper 127.0.0.1:{zookeeper.port} (pid {zookeeper.pid}), data in {data}")
    for broker_id, b in cluster.brokers.items():
        print(f"broker {broker_id} at {b.bootstrap} (pid {b.pid}), output in {b.log_path}")
    print(f"zookeeper.connect={cluster.zookeeper_connect}")
    print(f"bootstrap.servers={cluster.bootstrap}")
    print("Ctrl-C stops the cluster.", flush=True)


def _state(zookeeper: ZooKeeperProcess, cluster: Cluster) -> ClusterState:
    zk = Process(-1, zookeeper.host, zookeeper.port, zookeeper.pid, str(zookeeper.log_path))
    brokers = tuple(
        Process(i, b.host, b.port, b.pid if b.is_running() else -1, str(b.log_path))
        for i, b in cluster.brokers.items()
    )
    return ClusterState(os.getpid(), cluster.chroot, cluster.bootstrap, zk, brokers)


def _watch(zookeeper: ZooKeeperProcess, cluster: Cluster, data: Path) -> None:
    """Until interrupted: report a broker that exits (once); start the brokers whose
    start is requested, and keep the state file up to date."""
    reported: set[int] = set()
    while True:
        time.sleep(0.5)
        for broker_id, b in cluster.brokers.items():
            if broker_id not in reported and not b.is_running():
                reported.add(broker_id)
                print(
                    f"broker {broker_id} exited with status {b.returncode}; see {b.log_path}",
                    file=sys.stderr,
                    flush=True,
                )
        for broker_id in start_requests(data):
            again = cluster.brokers.get(broker_id)
            if again is not None and not again.is_running():
                again.start(wait=False)
                reported.discard(broker_id)
                print(
                    f"broker {broker_id} started again (pid {again.pid})",
                    file=sys.stderr,
                    flush=True,
                )
                write_state(data, _state(zookeeper, cluster))


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _stop(zookeeper: ZooKeeperProcess, cluster: Cluster) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut it short
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print("Stopping the brokers, then ZooKeeper...", flush=True)
    remove_state(cluster.data_dir)
    cluster.stop()
    zookeeper.stop()
    print("Stopped.", flush=True)


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    data = Path(args.data).resolve()
    try:
        zookeeper, cluster = prepare(args, data)
    except StartError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    # Ctrl-C even when started in the background (which ignores SIGINT), and SIGTERM
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        start(zookeeper, cluster)
        write_state(data, _state(zookeeper, cluster))
        _announce(zookeeper, cluster, data)
        _watch(zookeeper, cluster, data)
    except KeyboardInterrupt:
        _stop(zookeeper, cluster)
        return 0
    except (ZooKeeperStartError, BrokerExitedError, BrokerStartTimeoutError, AssertionError) as exc:
        print(f"Error: {exc}", file=sys.stderr, flush=True)
        _stop(zookeeper, cluster)
        return 1
    return 0
