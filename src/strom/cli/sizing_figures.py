"""Measured figures of strom for ``strom size``: written by bench/sizing_bench.py.

Measured on 2026-12-06 (x86_64, 2 CPUs, Python 3.11.7) with
``python bench/sizing_bench.py --runs 1 --quick``; run it again (on a quiet machine) to refresh
them. Do not edit by hand.
"""

from __future__ import annotations

PRODUCE_MB_PER_CORE_S = 409.6
CONSUME_MB_PER_CORE_S = 341.3
REPLICATION_MB_PER_CORE_S = 170.7
BROKER_IDLE_RSS_MB = 32.1
RSS_KB_PER_PARTITION = 6.5
