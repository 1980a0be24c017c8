#!/usr/bin/env python3
"""The deterministic cluster simulation over many seeds (issue 13).

Runs seeds of mixed faults (strom.testing.sim) and reports how many ran, how many
failed, the simulated and wall time, and each failure shrunk to a short fault list
with the command that replays it. ``--jobs`` spreads the seeds over processes (each
seed is independent and replays the same in any process).

Usage: python bench/simulation.py [--seeds 100000] [--start 0] [--jobs 2]
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from strom.testing.sim import runner  # noqa: E402

BATCH = 200


def _batch(start: int, count: int) -> tuple[int, int, int, int, list[str]]:
    """(seeds, steps, acknowledged records, simulated ms, failure reports)."""
    import logging

    logging.disable(logging.CRITICAL)
    steps = acks = sim_ms = 0
    reports = []
    for seed in range(start, start + count):
        r = runner.run_seed(seed)
        steps, acks, sim_ms = steps + r.steps, acks + r.acks, sim_ms + r.sim_ms
        if not r.ok:
            reports.append(runner.shrink(r).report())
    return count, steps, acks, sim_ms, reports


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10_000)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=1)
    args = parser.parse_args()
    started = time.perf_counter()
    batches = [
        (s, min(BATCH, args.start + args.seeds - s))
        for s in range(args.start, args.start + args.seeds, BATCH)
    ]
    done = steps = acks = sim_ms = failed = 0
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for count, st, ac, ms, reports in pool.map(_batch, *zip(*batches, strict=True)):
            done, steps, acks, sim_ms = done + count, steps + st, acks + ac, sim_ms + ms
            failed += len(reports)
            for report in reports:
                print(report, "\n", flush=True)
            elapsed = time.perf_counter() - started
            print(
                f"... {done} seeds, {failed} failed, {elapsed:.0f} s", file=sys.stderr, flush=True
            )
    elapsed = time.perf_counter() - started
    print(
        f"{done} seeds (from {args.start}), {failed} failed; {steps} steps, {acks} acknowledged "
        f"records, {sim_ms / 3_600_000:.1f} simulated hours; {elapsed:.1f} s wall "
        f"({1000 * elapsed / max(done, 1):.1f} ms a seed, {args.jobs} process(es))"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
