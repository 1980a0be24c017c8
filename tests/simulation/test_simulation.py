"""The deterministic simulation (strom.testing.sim): mixed-fault seeds, replay, and
the proof that it finds a planted bug."""

from __future__ import annotations

import json
import os

import pytest

from strom.testing.sim import runner
from strom.testing.sim.schedule import fault_from_list

CHUNK = 100
CHUNKS = 20  # 2,000 seeds in CI

# Failures found beyond the seeds CI runs, replayed with their shrunk fault lists:
# (seed, faults as the report prints them).
REGRESSIONS = [
    # a watch event dropped while the controller was cut off from ZooKeeper: the
    # /brokers/ids watch stayed disarmed, broker 1's registration went unnoticed
    (109732, '[[9059,"crash",1,2,300,291246],[12360,"isolate",2,1,300,801381]]'),
]


def _check(seeds: range) -> None:
    failures = runner.run_many(seeds)
    if failures:
        reports = [runner.shrink(r).report() for r in failures[:3]]
        pytest.fail(f"{len(failures)} of {len(seeds)} seeds failed:\n\n" + "\n\n".join(reports))


@pytest.mark.slow
@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_mixed_fault_seeds(chunk: int) -> None:
    _check(range(chunk * CHUNK, (chunk + 1) * CHUNK))


@pytest.mark.simulation_long
def test_many_more_seeds() -> None:
    """STROM_SIM_SEEDS seeds (default 20,000) after the ones CI runs."""
    count = int(os.environ.get("STROM_SIM_SEEDS", "20000"))
    start = CHUNK * CHUNKS
    _check(range(start, start + count))


@pytest.mark.parametrize(("seed", "faults"), REGRESSIONS, ids=[str(s) for s, _ in REGRESSIONS])
def test_regression_seeds(seed: int, faults: str) -> None:
    r = runner.run_seed(seed, None, [fault_from_list(f) for f in json.loads(faults)])
    assert r.ok, r.report()
    assert runner.run_seed(seed).ok


def test_a_seed_replays_identically() -> None:
    a, b = runner.run_seed(7), runner.run_seed(7)
    assert a.ok and (a.steps, a.acks, a.story) == (b.steps, b.acks, b.story)
    assert a.steps > 1000 and a.acks > 50 and a.faults


def test_replaying_its_fault_list_is_the_same_run() -> None:
    first = runner.run_seed(11)
    faults = [
        fault_from_list(f) for f in json.loads(json.dumps([f.as_list() for f in first.faults]))
    ]
    again = runner.run_seed(11, None, faults)
    assert (again.steps, again.story) == (first.steps, first.story)


def test_a_planted_controller_bug_is_found_shrunk_and_replayed(monkeypatch) -> None:
    """Elections that ignore the ISR (always unclean) lose acknowledged records: the
    simulation must say so, with a shorter fault list that fails the same way."""
    import strom.controller.controller as controller

    real = controller.offline_partition_leader
    monkeypatch.setattr(
        controller,
        "offline_partition_leader",
        lambda assignment, isr, live, unclean: real(assignment, (), live, True),
    )
    found = next((r for r in map(runner.run_seed, range(40)) if not r.ok), None)
    assert found is not None, "the planted bug went unnoticed in 40 seeds"
    assert "unclean election" in (found.error or "") or "acknowledged" in (found.error or "")
    small = runner.shrink(found)
    assert len(small.faults) <= len(found.faults)
    report = small.report()
    assert f"seed {small.seed}" in report and "replay: python -m strom.testing.sim.runner" in report
    replay = json.loads(report.split("--faults '")[1].split("'")[0])
    again = runner.run_seed(small.seed, None, [fault_from_list(f) for f in replay])
    assert again.error == small.error


def test_the_command_line(capsys) -> None:
    assert runner.main(["--seeds", "2", "--start", "3"]) == 0
    assert "2 seeds, 0 failed" in capsys.readouterr().out
    assert runner.main(["--seed", "3"]) == 0
    assert "seed 3: ok" in capsys.readouterr().out
