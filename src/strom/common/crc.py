"""CRC32C (Castagnoli) of record batches, from the crc32c package's C extension.

``import crc32c`` runs the package's ``__init__``, which looks up its own
version with importlib.metadata: about 15 ms, a tenth of a broker's start.
The extension module itself loads in well under a millisecond, so it is loaded
directly; any surprise in the package's layout falls back to the plain import.
Use it as the package: ``crc32c.crc32c(data, value=0)``.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
from typing import Protocol


class Crc32c(Protocol):
    def crc32c(self, data: bytes | bytearray | memoryview, value: int = 0, /) -> int: ...


def _load() -> Crc32c:
    try:
        package = importlib.util.find_spec("crc32c")
        locations = package.submodule_search_locations if package is not None else None
        spec = importlib.machinery.PathFinder.find_spec("crc32c._crc32c", locations)
        if spec is None or spec.loader is None:
            raise ImportError("crc32c._crc32c not found")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.crc32c  # noqa: B018 - the function is there
        return module
    except (ImportError, AttributeError):
        import crc32c as package_module

        return package_module


crc32c: Crc32c = _load()
