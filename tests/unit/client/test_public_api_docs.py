"""Every public name of strom's client has a docstring (the client issue asks for it)."""

from __future__ import annotations

import ast
from pathlib import Path

import strom.client

CLIENT = Path(strom.client.__file__).parent


def _undocumented(path: Path) -> list[str]:
    missing = []
    for node in ast.walk(ast.parse(path.read_text())):
        if (
            isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            and not node.name.startswith("_")
            and ast.get_docstring(node) is None
        ):
            missing.append(f"{path.relative_to(CLIENT.parent)}:{node.lineno} {node.name}")
    return missing


def test_every_public_name_has_a_docstring() -> None:
    files = sorted(CLIENT.rglob("*.py"))
    assert len(files) > 20
    missing = [name for path in files for name in _undocumented(path)]
    assert missing == [], f"{len(missing)} public names without a docstring"
