"""The long simulation run (marker ``simulation_long``) is collected only when asked
for by name: ``pytest -m simulation_long tests/simulation`` (or run
``bench/simulation.py --seeds 100000``)."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "simulation_long" in (config.getoption("markexpr") or ""):
        return
    long_runs = [item for item in items if item.get_closest_marker("simulation_long")]
    if long_runs:
        config.hook.pytest_deselected(items=long_runs)
        items[:] = [item for item in items if not item.get_closest_marker("simulation_long")]
