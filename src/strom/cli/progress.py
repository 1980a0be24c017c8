"""Live progress bars of the perf tools (rich), on standard error when it is a
terminal; nothing is drawn when it is a file or a pipe."""

from __future__ import annotations

import sys
import time
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text


class _RateColumn(ProgressColumn):
    """records/s: rich's recent estimate, else the average since the bar started."""

    def render(self, task: Task) -> Text:
        speed = task.speed
        if speed is None:
            speed = task.completed / task.elapsed if task.elapsed else 0.0
        return Text(f"{speed:,.0f} records/s")


class Bar:
    """One progress bar of ``total`` records; extra text fields by keyword."""

    def __init__(self, description: str, total: int, *, console: Console | None = None) -> None:
        self._console = console or Console(stderr=True)
        self.enabled = console is not None or sys.stderr.isatty()
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            _RateColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[note]}"),
            console=self._console,
            transient=False,
        )
        self._task = self._progress.add_task(description, total=total, note="")
        if self.enabled:
            self._progress.start()

    def update(self, completed: int, note: str = "") -> None:
        """Move the bar to ``completed`` records, with ``note`` after it."""
        if self.enabled:
            self._progress.update(self._task, completed=completed, note=note)

    def close(self) -> None:
        """Draw the last state and stop refreshing."""
        if self.enabled:
            self._progress.stop()

    def __enter__(self) -> Bar:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class Rate:
    """Records per second since the first :meth:`add` (for the producer's acks)."""

    def __init__(self) -> None:
        self.count = 0
        self._start: float | None = None

    def add(self, n: int = 1) -> None:
        """Count ``n`` more."""
        if self._start is None:
            self._start = time.monotonic()
        self.count += n

    def per_second(self) -> float:
        """The average rate so far."""
        if self._start is None:
            return 0.0
        return self.count / max(time.monotonic() - self._start, 1e-9)
