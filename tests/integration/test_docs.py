"""Every Python example in docs/client.md runs, in order, against a real broker."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from strom.testing import BrokerProcess

pytestmark = pytest.mark.integration

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "client.md"
BLOCKS = re.findall(r"```python\n(.*?)```", GUIDE.read_text(), re.S)


def test_the_guide_has_examples() -> None:
    assert len(BLOCKS) >= 6


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_client_guide_example_runs(
    broker: BrokerProcess, require_strom: None, index: int, capsys: pytest.CaptureFixture[str]
) -> None:
    source = BLOCKS[index].replace("127.0.0.1:9092", broker.bootstrap)
    code = compile(source, f"{GUIDE.name}, example {index + 1}", "exec")
    exec(code, {"__name__": f"docs_example_{index + 1}"})
    printed = capsys.readouterr().out
    if "print(" in source:
        assert printed.strip(), "the example prints nothing"
