"""``strom dev-cluster``: a real ZooKeeper and three brokers as a subprocess; clients
use it, SIGINT stops every process, and a restart with the same data finds the records."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from strom.testing.kafka import produce_acked, read_all
from tests.integration.cli_helpers import strom

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("require_strom")]


def _start_dev_cluster(data: Path) -> tuple[subprocess.Popen[str], list[str]]:
    """``strom dev-cluster`` as a subprocess; its lines up to the bootstrap line."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "strom",
            "dev-cluster",
            "--brokers",
            "3",
            "--data",
            str(data),
            "--port",
            "0",
            "--zookeeper-port",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if line.startswith("Ctrl-C"):
            return proc, lines
    proc.kill()
    _, err = proc.communicate()
    raise AssertionError(f"dev-cluster did not start: {lines} {err}")


def _stop_dev_cluster(proc: subprocess.Popen[str], pids: list[int]) -> None:
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert out.splitlines() == ["Stopping the brokers, then ZooKeeper...", "Stopped."]
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_dev_cluster_serves_stops_on_sigint_and_keeps_its_data(tmp_path: Path) -> None:
    data = tmp_path / "dev"
    proc, lines = _start_dev_cluster(data)
    try:
        pids = [int(m) for line in lines for m in re.findall(r"\(pid (\d+)\)", line)]
        assert len(pids) == 4  # ZooKeeper and three brokers
        assert re.fullmatch(r"zookeeper\.connect=127\.0\.0\.1:\d+/strom", lines[-3])
        bootstrap = lines[-2].removeprefix("bootstrap.servers=")
        assert re.fullmatch(r"127\.0\.0\.1:\d+(,127\.0\.0\.1:\d+){2}", bootstrap)
        for i in range(3):
            assert (data / f"broker-{i}" / "log").is_dir()
        created = strom(
            "topics", "--bootstrap-server", bootstrap, "--create", "--topic", "dev",
            "--partitions", "2", "--replication-factor", "3",
        )  # fmt: skip
        assert created.returncode == 0, created.stderr
        produce_acked(bootstrap, "dev", [(i % 2, None, f"r{i}".encode()) for i in range(10)])
        assert len(read_all(bootstrap, "dev", 2)) == 10
    except BaseException:
        proc.kill()
        proc.communicate()
        raise
    _stop_dev_cluster(proc, pids)

    proc, lines = _start_dev_cluster(data)
    try:
        pids = [int(m) for line in lines for m in re.findall(r"\(pid (\d+)\)", line)]
        bootstrap = lines[-2].removeprefix("bootstrap.servers=")
        values = sorted(r.value for r in read_all(bootstrap, "dev", 2))
        assert values == sorted(f"r{i}".encode() for i in range(10))
    except BaseException:
        proc.kill()
        proc.communicate()
        raise
    _stop_dev_cluster(proc, pids)


def test_dev_cluster_names_the_zookeeper_package_when_it_is_missing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from strom.testing import devcluster

    monkeypatch.setattr(devcluster, "zookeeper_installed", lambda: False)
    assert devcluster.main(["--data", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: Apache ZooKeeper is not installed")
    assert "apt-get install zookeeper" in err
