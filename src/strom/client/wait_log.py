"""Say what a retry loop is waiting for, instead of waiting silently.

A loop that retries until a deadline (bootstrap, a topic's metadata, a
coordinator) asks :meth:`WaitLog.due` on every failed round and logs a warning
when it answers True: the first once the wait has lasted ``after_s`` (a second by default),
then at most every ``every_s``, like the warnings Kafka's clients log while
they retry. The ``strom`` tools print these warnings to standard error.
"""

from __future__ import annotations

import time


class WaitLog:
    """When to warn during one wait (create one per wait)."""

    def __init__(self, after_s: float = 1.0, every_s: float = 10.0) -> None:
        self._next = time.monotonic() + after_s
        self._every_s = every_s

    def due(self) -> bool:
        """True when a warning is due now (and then not again for ``every_s``)."""
        now = time.monotonic()
        if now < self._next:
            return False
        self._next = now + self._every_s
        return True
