"""The state file of a running ``strom dev-cluster`` and its control requests, so that
another process (``strom verify``) can find, kill, pause, cut off and restart its
brokers.

``DIR/cluster.json`` (written once every broker serves, again whenever a broker is
started, removed when the cluster stops)::

    {"pid": 1234, "chroot": "/strom", "bootstrap": "127.0.0.1:9092,...",
     "zookeeper": {"host": "127.0.0.1", "port": 2181, "pid": 1240},
     "brokers": [{"id": 0, "host": "127.0.0.1", "port": 9092, "pid": 1250,
                  "log": "DIR/broker-0/broker.log"}, ...]}

A broker that was killed is started again by the dev-cluster (which owns it) when
a file ``DIR/control/start-<id>`` appears (:func:`request_start`); the file is
removed once the broker was started.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

STATE_FILE = "cluster.json"
CONTROL_DIR = "control"


@dataclass(frozen=True, slots=True)
class Process:
    """A process of the cluster: its id (-1 for ZooKeeper), address and pid."""

    id: int
    host: str
    port: int
    pid: int
    log: str = ""


@dataclass(frozen=True, slots=True)
class ClusterState:
    pid: int
    chroot: str
    bootstrap: str
    zookeeper: Process
    brokers: tuple[Process, ...]

    def broker(self, broker_id: int) -> Process:
        return next(b for b in self.brokers if b.id == broker_id)

    @property
    def zookeeper_connect(self) -> str:
        return f"{self.zookeeper.host}:{self.zookeeper.port}{self.chroot}"


def write_state(data: Path, state: ClusterState) -> None:
    """Write the state file atomically (a reader never sees half of it)."""
    body = {
        "pid": state.pid,
        "chroot": state.chroot,
        "bootstrap": state.bootstrap,
        "zookeeper": asdict(state.zookeeper),
        "brokers": [asdict(b) for b in state.brokers],
    }
    tmp = data / f".{STATE_FILE}.tmp"
    tmp.write_text(json.dumps(body, indent=2) + "\n")
    os.replace(tmp, data / STATE_FILE)


def _process(d: dict[str, Any]) -> Process:
    return Process(int(d["id"]), str(d["host"]), int(d["port"]), int(d["pid"]), str(d["log"]))


def read_state(data: Path) -> ClusterState:
    """The state of the dev-cluster in ``data``; FileNotFoundError when none runs there."""
    body = json.loads((data / STATE_FILE).read_text())
    return ClusterState(
        int(body["pid"]),
        str(body["chroot"]),
        str(body["bootstrap"]),
        _process(body["zookeeper"]),
        tuple(_process(b) for b in body["brokers"]),
    )


def remove_state(data: Path) -> None:
    (data / STATE_FILE).unlink(missing_ok=True)


def request_start(data: Path, broker_id: int) -> None:
    """Ask the dev-cluster running in ``data`` to start broker ``broker_id`` again."""
    control = data / CONTROL_DIR
    control.mkdir(exist_ok=True)
    (control / f"start-{broker_id}").touch()


def start_requests(data: Path) -> list[int]:
    """Broker ids whose start was requested (their request files are removed)."""
    control = data / CONTROL_DIR
    if not control.is_dir():
        return []
    ids = []
    for f in control.glob("start-*"):
        f.unlink(missing_ok=True)
        suffix = f.name.removeprefix("start-")
        if suffix.isdigit():
            ids.append(int(suffix))
    return sorted(ids)
