"""The optional mypyc build; pyproject.toml holds everything else.

A plain build (``pip install .``, ``pip wheel .``) is pure Python and needs no compiler.
With ``STROM_MYPYC=1`` the modules listed in src/strom/mypyc_build.py are compiled into
C extensions by mypyc, which type-checks the tree first; it needs gcc, Python's headers
and what the type check reads, so build in an environment that has strom's ``test``
extra (mypy and the dependencies) installed, without build isolation:

    STROM_MYPYC=1 pip wheel --no-build-isolation --no-deps -w dist .

``python -c "import strom; print(strom.compiled())"`` lists the compiled modules in use.
"""

from __future__ import annotations

import os
import runpy
from pathlib import Path

from setuptools import setup

HERE = Path(__file__).resolve().parent


def mypyc_extensions() -> list[object]:
    if os.environ.get("STROM_MYPYC", "") not in ("1", "true", "yes"):
        return []
    from mypyc.build import mypycify

    modules = runpy.run_path(str(HERE / "src" / "strom" / "mypyc_build.py"))["MODULES"]
    paths = [os.path.join("src", *name.split(".")) + ".py" for name in modules]
    return list(mypycify(paths, opt_level="3"))


setup(ext_modules=mypyc_extensions())
