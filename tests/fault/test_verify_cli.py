"""``strom verify`` against a ``strom dev-cluster`` subprocess: it kills and pauses
leaders (the dev-cluster starts the killed broker again), then reads everything
back; the checker finds nothing lost and the HTML report has its timeline."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.test_dev_cluster import _start_dev_cluster, _stop_dev_cluster

pytestmark = [pytest.mark.integration, pytest.mark.fault, pytest.mark.usefixtures("require_strom")]


def verify(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    # not PYTHONWARNINGS=error: kafka-python's own deprecation warnings are not strom's
    return subprocess.run(
        [sys.executable, "-m", "strom", "verify", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"},
    )


def test_verify_kills_and_pauses_leaders_and_loses_nothing(tmp_path: Path) -> None:
    data = tmp_path / "dev"
    proc, lines = _start_dev_cluster(data)
    state_path = data / "cluster.json"
    try:
        state = json.loads(state_path.read_text())
        first_pids = {b["id"]: b["pid"] for b in state["brokers"]}
        assert sorted(first_pids) == [0, 1, 2]
        assert state["bootstrap"] == lines[-2].removeprefix("bootstrap.servers=")
        report = tmp_path / "report.html"
        run = verify(
            "--cluster-dir", str(data), "--duration", "20", "--faults", "kill-leader,pause",
            "--fault-seconds", "7", "--report", str(report), "--seed", "1",
        )  # fmt: skip
        assert run.returncode == 0, run.stdout + run.stderr[-3000:]
        assert re.search(r"^lost +0$", run.stdout, re.M), run.stdout
        assert re.search(r"^acknowledged +[1-9]\d{3,}$", run.stdout, re.M), run.stdout
        assert run.stdout.splitlines()[-2] == "OK"
        html = report.read_text()
        assert "<svg" in html and "kill -9 broker" in html and "SIGSTOP broker" in html
        state = json.loads(state_path.read_text())
        pids = [state["zookeeper"]["pid"], *(b["pid"] for b in state["brokers"])]
        assert {b["id"]: b["pid"] for b in state["brokers"]} != first_pids  # one restarted
    except BaseException:
        proc.kill()
        proc.communicate()
        raise
    _stop_dev_cluster(proc, pids)
    assert not state_path.exists()


def test_verify_without_a_dev_cluster_says_how_to_start_one(tmp_path: Path) -> None:
    run = verify("--cluster-dir", str(tmp_path), "--faults", "pause")
    assert run.returncode == 1
    assert run.stderr.startswith("Error: no running strom dev-cluster in ")
    run = verify("--cluster-dir", str(tmp_path), "--faults", "kill-leader,flood")
    assert run.returncode == 1
    assert "unknown fault(s) flood" in run.stderr
