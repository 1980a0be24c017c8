"""The modules of the optional mypyc build, and which of them a process runs compiled.

``STROM_MYPYC=1`` makes setup.py compile these modules (the codec, the produce and
fetch path and the connection layer, where bench/request_cost.py's profile shows the
interpreter is the cost) into C extensions with mypyc; a plain install leaves every
module pure Python, and the pure modules are the fallback: a compiled wheel ships the
``.py`` files too. Everything behaves the same either way. ``strom.compiled()`` and the
broker's start-up log line (``mypyc: 27 of 27 modules``) say which is in use.

This file is read by setup.py (``runpy``) before strom is installed, so it imports no
other strom module at its top.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys

# Left out: strom.broker.broker (compiled, its async handle() made each request dearer);
# strom.storage.leader_epoch (strom.testing.sim derives from LeaderEpochCache; off the
# hot path); strom.storage.logfile (weakly referenced, which compiled classes
# cannot be); the other generated messages (off the hot path; compiling all of them took
# 7 minutes on 2 cores instead of 1).
MODULES: tuple[str, ...] = (
    "strom.common.values",  # the base of value classes, compiled ones among them
    "strom.protocol.message",
    "strom.protocol.wire",
    "strom.protocol.records",
    "strom.protocol.frame",
    "strom.protocol.generated.fetch",
    "strom.protocol.generated.produce",
    "strom.storage.index",
    "strom.storage.log_core",  # PartitionLog's bases: LogCore -> LogAppend -> PartitionLog
    "strom.storage.log_append",
    "strom.storage.log_loader",
    "strom.storage.log",
    "strom.storage.log_dirs",  # LogManager's base
    "strom.storage.log_manager",
    "strom.storage.producer_state",
    "strom.storage.segment_files",  # LogSegment's base
    "strom.storage.segment",
    "strom.storage.validator",
    "strom.broker.fetch",
    "strom.broker.fetch_sessions",
    "strom.broker.produce",
    "strom.broker.replica_manager",
    # The connection layer and what it calls per request: bench/request_cost.py
    # --connection, compiled, 1.2-1.8 us (7-10%) less per request with these.
    "strom.broker.metrics",
    "strom.server.frames",
    "strom.server.stream",
    "strom.server.connection",
    # Generic over its log (a ReplicaLog protocol, an object at run time): the
    # simulation's in-memory log does as well as PartitionLog.
    "strom.replication.partition",
)


def is_compiled(module_name: str) -> bool:
    """Whether ``module_name`` is (or, not yet imported, would be) loaded from a compiled
    extension rather than its .py file; found without importing it."""
    module = sys.modules.get(module_name)
    if module is not None:
        origin = getattr(module, "__file__", None)
    else:
        spec = importlib.util.find_spec(module_name)
        origin = spec.origin if spec is not None else None
    return (origin or "").endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))


def compiled_modules() -> list[str]:
    """The modules of :data:`MODULES` compiled in this installation (empty: pure Python)."""
    return [name for name in MODULES if is_compiled(name)]
