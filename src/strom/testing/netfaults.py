"""Network faults between processes on loopback (Linux, root): cut links and slow one
process's traffic, and undo all of it.

Brokers and ZooKeeper nodes listen on their own 127.0.0.x addresses, but their
outbound connections leave from 127.0.0.1, so a rule on an address cuts only one
direction. A process is therefore put in a cgroup (v2, mounted at
/sys/fs/cgroup/unified here) and its packets are matched with ``-m cgroup --path``:
every packet its sockets send. A socket belongs to the cgroup its process was in
when it was made, so the connections a process had before it was moved are reset
(``ss -K``) and made again.  :class:`Network` keeps its rules in chains of its own
(filter table) and :meth:`Network.close`
deletes the chains, the traffic control qdisc on ``lo`` and the cgroups, moving
their processes back where they were. Use it as a context manager.

Shaping one process's traffic: :mod:`strom.testing.shaping`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import Self

from strom.testing.shaping import Shaper

CGROUP_ROOT = Path("/sys/fs/cgroup/unified")
Endpoint = tuple[int, str, int]
"""A process as a fault sees it: (pid, host, port of its listener)."""


class NetworkFaultsUnavailable(RuntimeError):
    """Not root, or iptables, tc or the cgroup v2 hierarchy is missing."""


def unavailable_reason() -> str | None:
    """Why network faults cannot be injected here (None when they can)."""
    if os.geteuid() != 0:
        return "network faults need root (iptables, tc and cgroups; CI runs as root)"
    for tool in ("iptables", "tc"):
        if shutil.which(tool) is None:
            return f"network faults need {tool} (Debian packages iptables and iproute2)"
    if not (CGROUP_ROOT / "cgroup.procs").exists():
        return f"network faults need the cgroup v2 hierarchy at {CGROUP_ROOT}"
    return None


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip() or done.returncode}")
    return done


def connections(pid: int) -> list[tuple[tuple[str, int], tuple[str, int]]]:
    """(local, peer) addresses of the established TCP connections of ``pid``."""
    out = []
    for line in _run("ss", "-tnpH", "state", "established").stdout.splitlines():
        if f"pid={pid}," in line:
            fields = line.split()  # Recv-Q Send-Q Local Peer Process
            local, peer = fields[2].rpartition(":"), fields[3].rpartition(":")
            out.append(((local[0], int(local[2])), (peer[0], int(peer[2]))))
    return out


def _reset(pid: int, which: Callable[[tuple[str, int], tuple[str, int]], bool]) -> None:
    """Reset the connections of ``pid`` for which ``which(local, peer)``: a socket is
    matched by the cgroup its process was in when it was made, so connections older
    than a move must be made again."""
    for (lhost, lport), (phost, pport) in connections(pid):
        if which((lhost, lport), (phost, pport)):
            kill = [
                "src",
                lhost,
                "sport",
                "=",
                f":{lport}",
                "dst",
                phost,
                "dport",
                "=",
                f":{pport}",
            ]
            _run("ss", "-K", *kill, check=False)


def _cgroup_of(pid: int) -> str:
    """The cgroup v2 path of ``pid`` ("/" when it has none)."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
            if line.startswith("0::"):
                return line[3:] or "/"
    return "/"


class Network:
    """Cut and slow links between local processes; :meth:`close` undoes everything."""

    def __init__(self) -> None:
        reason = unavailable_reason()
        if reason:
            raise NetworkFaultsUnavailable(reason)
        self.name = f"strom-{os.getpid()}"
        self._base = CGROUP_ROOT / self.name
        self._groups: dict[str, Path] = {}
        self._origin: dict[int, str] = {}
        self._chains: list[str] = []
        self._shaper: Shaper | None = None
        self.delay_supported: bool | None = None

    # -- cgroups ----------------------------------------------------------------------
    def group(self, name: str, pids: Iterable[int]) -> str:
        """Put ``pids`` (whole processes) in cgroup ``name``; its ``--path`` for rules."""
        path = self._base / name
        path.mkdir(parents=True, exist_ok=True)
        self._groups[name] = path
        for pid in pids:
            self._origin.setdefault(pid, _cgroup_of(pid))
            (path / "cgroup.procs").write_text(f"{pid}\n")
        return f"{self.name}/{name}"

    def _release_groups(self) -> None:
        for path in self._groups.values():
            with contextlib.suppress(OSError):
                for pid_text in (path / "cgroup.procs").read_text().split():
                    pid = int(pid_text)
                    self._move_back(pid, self._origin.get(pid, "/"))
        for path in sorted(self._groups.values(), key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):
                path.rmdir()
        with contextlib.suppress(OSError):
            self._base.rmdir()
        self._groups.clear()

    @staticmethod
    def _move_back(pid: int, origin: str) -> None:
        for target in (CGROUP_ROOT / origin.lstrip("/"), CGROUP_ROOT):
            try:
                (target / "cgroup.procs").write_text(f"{pid}\n")
                return
            except OSError:
                continue

    # -- iptables -----------------------------------------------------------------------
    def _chain(self, table: str, parent: str = "OUTPUT") -> str:
        chain = f"{self.name}-{table[0]}"
        entry = f"{table}:{chain}:{parent}"
        if entry not in self._chains:
            _run("iptables", "-t", table, "-N", chain)
            self._chains.append(entry)
            _run("iptables", "-t", table, "-I", parent, "1", "-j", chain)
        return chain

    def drop(
        self,
        *,
        group: str | None = None,
        dst: tuple[str | None, int | None] | None = None,
        src: str | None = None,
    ) -> None:
        """Drop TCP packets sent by ``group``'s processes (a ``group()`` path) and/or
        to ``dst`` (host, port; either may be None) and/or from address ``src``."""
        rule = ["-p", "tcp"]
        if group is not None:
            rule += ["-m", "cgroup", "--path", group]
        if src is not None:
            rule += ["-s", src]
        if dst is not None:
            host, port = dst
            rule += ["-d", host] if host else []
            rule += ["--dport", str(port)] if port else []
        _run("iptables", "-A", self._chain("filter"), *rule, "-j", "DROP")

    def isolate(self, name: str, pid: int, host: str, port: int) -> None:
        """Cut process ``pid`` (listening on host:port) off from everyone: every packet
        it sends and every packet sent to its listener is dropped."""
        self.drop(group=self.group(name, [pid]))
        self.drop(dst=(host, port))
        _reset(pid, lambda local, peer: local != (host, port))

    def partition(self, side_a: Iterable[Endpoint], side_b: Iterable[Endpoint]) -> None:
        """Cut every link between the processes of ``side_a`` and those of ``side_b``
        ((pid, host, port) of each, port being its listener): the packets a process of
        one side sends to a listener of the other are dropped. Processes on neither
        side (clients) still reach both."""
        a, b = list(side_a), list(side_b)
        groups = (self.group("side-a", [e[0] for e in a]), self.group("side-b", [e[0] for e in b]))
        for group, others in ((groups[0], b), (groups[1], a)):
            for _, host, port in others:
                self.drop(group=group, dst=(host, port))
        for side, others in ((a, b), (b, a)):
            listeners = {(host, port) for _, host, port in others}
            for pid, _, _ in side:
                _reset(pid, lambda local, peer, ls=listeners: peer in ls)  # type: ignore[misc]

    def heal(self) -> None:
        """Remove every drop rule (the chains stay until close; shaping stays)."""
        for entry in self._chains:
            table, chain, _ = entry.split(":")
            if table == "filter":
                _run("iptables", "-t", table, "-F", chain)

    # -- shaping ------------------------------------------------------------------------
    def shape(self, host: str, pids: Iterable[int], *, rate_kbit: int, delay_ms: int = 0) -> None:
        """Limit all the traffic of the processes ``pids`` (listening on ``host``) to
        ``rate_kbit``, and delay it by ``delay_ms`` where the kernel has netem (see
        :mod:`strom.testing.shaping`)."""
        if self._shaper is not None:
            raise RuntimeError("one process at a time is shaped")
        self._shaper = Shaper(host, pids, rate_kbit, delay_ms)
        self.delay_supported = self._shaper.delay_supported

    def unshape(self) -> None:
        """Remove the rate limit."""
        if self._shaper is not None:
            self._shaper.close()
            self._shaper = None

    # -- cleanup ------------------------------------------------------------------------
    @staticmethod
    def _delete_chain(table: str, chain: str, parent: str) -> None:
        while _run("iptables", "-t", table, "-D", parent, "-j", chain, check=False).returncode == 0:
            pass
        _run("iptables", "-t", table, "-F", chain, check=False)
        _run("iptables", "-t", table, "-X", chain, check=False)

    def close(self) -> None:
        """Delete every rule, chain, qdisc and cgroup this object made."""
        try:
            self.unshape()
        finally:
            for entry in self._chains:
                table, chain, parent = entry.split(":")
                self._delete_chain(table, chain, parent)
            self._chains.clear()
            self._release_groups()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
