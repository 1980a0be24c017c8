"""The optional mypyc build (setup.py, strom.mypyc_build): the modules it compiles exist
as pure Python, and a run tests what it means to test.

The main suite runs pure Python (a plain wheel); CI's compiled phase sets
STROM_EXPECT_COMPILED=1 on a wheel built with STROM_MYPYC=1, and then every listed
module must be imported from its compiled extension, so that phase cannot quietly
test the .py files.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import os
from pathlib import Path

import strom
from strom.mypyc_build import MODULES, compiled_modules, is_compiled

EXPECT_COMPILED = os.environ.get("STROM_EXPECT_COMPILED") == "1"


def test_every_listed_module_has_its_python_source_beside_it() -> None:
    # the pure modules are the fallback: a compiled wheel ships them too
    assert len(set(MODULES)) == len(MODULES)
    for name in MODULES:
        module = importlib.import_module(name)
        source = Path(str(module.__file__)).with_name(name.rsplit(".", 1)[1] + ".py")
        assert source.is_file(), name


def test_the_run_uses_the_build_it_expects() -> None:
    if EXPECT_COMPILED:
        assert strom.compiled() == list(MODULES)
        suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
        for name in MODULES:
            assert str(importlib.import_module(name).__file__).endswith(suffixes), name
    else:
        assert strom.compiled() == []
        assert compiled_modules() == []


def test_a_module_outside_the_build_is_pure_python() -> None:
    assert not is_compiled("strom.broker.broker")
    assert not is_compiled("strom.storage.logfile")
