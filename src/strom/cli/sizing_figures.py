"""Measured figures of strom for ``strom size``: written by bench/sizing_bench.py.

Measured on 2026-12-06 (x86_64, 2 CPUs, Python 3.11.7) with
``python bench/sizing_bench.py --runs 3 --write``; run it again (on a quiet machine) to refresh
them. Do not edit by hand.
"""

from __future__ import annotations

PRODUCE_MB_PER_CORE_S = 139.3
CONSUME_MB_PER_CORE_S = 853.3
REPLICATION_MB_PER_CORE_S = 288.5
BROKER_IDLE_RSS_MB = 31.4
RSS_KB_PER_PARTITION = 6.6
