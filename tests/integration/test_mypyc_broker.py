"""A broker process says at start whether it runs the compiled modules of the optional
mypyc build (``mypyc: 27 of 27 modules``) or pure Python (``0 of 27``); CI's compiled
phase (STROM_EXPECT_COMPILED=1) checks that its brokers, not only the test process,
run compiled."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from strom.mypyc_build import MODULES
from strom.testing import BrokerProcess

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("require_strom")]


def test_the_broker_logs_whether_it_runs_compiled_modules(tmp_path: Path) -> None:
    n = len(MODULES) if os.environ.get("STROM_EXPECT_COMPILED") == "1" else 0
    with BrokerProcess(tmp_path) as broker:
        assert f"mypyc: {n} of {len(MODULES)} modules" in broker.log_path.read_text()
