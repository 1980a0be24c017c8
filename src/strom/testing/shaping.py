"""Slow one process's traffic on loopback with tc (Linux, root): an HTB class on ``lo``
limited to a rate (with a netem delay under it where the kernel has ``sch_netem``;
this machine's has none, nor a mark classifier), fed by u32 filters.

The process listens on its own address, so packets to and from that address are
matched by address. Its outbound connections leave from 127.0.0.1 with ephemeral
ports, and a NAT cannot help (the answers are translated back before they reach
the qdisc), so a thread lists its connections every ``REFRESH_S`` and adds filters
for their local ports, both ways: a connection made again is slowed within that
time. :meth:`Shaper.close` removes the qdisc and its filters.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterable

SHAPED_CLASS = "1:20"
REFRESH_S = 0.3


def _tc(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["tc", *args], capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"tc {' '.join(args)}: {done.stderr.strip() or done.returncode}")
    return done


def _filter(*matches: str) -> None:
    _tc("filter", "add", "dev", "lo", "parent", "1:", "protocol", "ip", "prio", "1", "u32",
        *matches, "flowid", SHAPED_CLASS)  # fmt: skip


class Shaper:
    def __init__(self, host: str, pids: Iterable[int], rate_kbit: int, delay_ms: int = 0) -> None:
        from strom.testing.netfaults import connections

        self._connections = connections
        self.host = host
        self.pids = list(pids)
        self.delay_supported: bool | None = None
        self._ports: set[tuple[str, int]] = set()
        self._stop = threading.Event()
        qdisc = _tc("qdisc", "show", "dev", "lo").stdout
        if "noqueue" not in qdisc:
            raise RuntimeError(f"lo already has a qdisc (another test shaping?): {qdisc}")
        _tc("qdisc", "add", "dev", "lo", "root", "handle", "1:", "htb", "default", "10")
        try:
            self._classes(rate_kbit, delay_ms)
            for side in ("src", "dst"):
                _filter("match", "ip", side, f"{host}/32")
            self.refresh()
        except BaseException:
            self.close()
            raise
        self._thread = threading.Thread(target=self._run, name="shaper", daemon=True)
        self._thread.start()

    def _classes(self, rate_kbit: int, delay_ms: int) -> None:
        fast = ["rate", "100gbit", "quantum", "200000"]
        _tc("class", "add", "dev", "lo", "parent", "1:", "classid", "1:10", "htb", *fast)
        slow = ["rate", f"{rate_kbit}kbit", "ceil", f"{rate_kbit}kbit"]
        _tc("class", "add", "dev", "lo", "parent", "1:", "classid", SHAPED_CLASS, "htb", *slow)
        if delay_ms:
            netem = ["handle", "20:", "netem", "delay", f"{delay_ms}ms", "limit", "10000"]
            added = _tc("qdisc", "add", "dev", "lo", "parent", SHAPED_CLASS, *netem, check=False)
            self.delay_supported = added.returncode == 0

    def refresh(self) -> None:
        """Filters for the outbound connections the processes opened since the last call."""
        for pid in self.pids:
            for (lhost, lport), _ in self._connections(pid):
                if lhost == self.host or (lhost, lport) in self._ports:
                    continue
                self._ports.add((lhost, lport))
                port = [str(lport), "0xffff"]
                _filter("match", "ip", "src", f"{lhost}/32", "match", "ip", "sport", *port)
                _filter("match", "ip", "dst", f"{lhost}/32", "match", "ip", "dport", *port)

    def _run(self) -> None:
        while not self._stop.wait(REFRESH_S):
            try:
                self.refresh()
            except RuntimeError:  # the qdisc is being removed
                return

    def close(self) -> None:
        self._stop.set()
        if getattr(self, "_thread", None) is not None:
            self._thread.join(5)
        _tc("qdisc", "del", "dev", "lo", "root", check=False)
