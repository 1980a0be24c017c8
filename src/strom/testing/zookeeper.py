"""Start, stop, kill and pause a real Apache ZooKeeper server (Debian's ``zookeeper``
package) on a loopback address, for tests and ``strom dev-cluster``.

The server runs as a plain background JVM with its own config and data
directory (never the system's config, which binds every interface and logs to
/var/log): ``clientPortAddress`` on loopback, the admin server off, a small
heap. Readiness is the ``srvr`` four-letter word answering with a ``Mode:``
line (a connection accepted earlier can hang, ZOOKEEPER-5051). A 3-node
ensemble gives each node its own 127.0.0.x address.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from strom.testing.broker import _die_with_parent

JARS = (
    "/usr/share/java/zookeeper.jar",
    "/usr/share/java/slf4j-log4j12.jar",
    "/usr/share/java/log4j-1.2.jar",
)
INSTALL_HINT = (
    "Apache ZooKeeper is not installed: install Debian's package with "
    "`apt-get install zookeeper` (it needs a Java runtime: default-jre-headless)"
)
LOG4J = """log4j.rootLogger=INFO, FILE
log4j.appender.FILE=org.apache.log4j.FileAppender
log4j.appender.FILE.File=${zookeeper.log.dir}/zookeeper.log
log4j.appender.FILE.layout=org.apache.log4j.PatternLayout
log4j.appender.FILE.layout.ConversionPattern=%d{ISO8601} [myid:%X{myid}] %-5p [%t] %c{1}: %m%n
"""


class ZooKeeperNotInstalledError(RuntimeError):
    """Debian's zookeeper package (or java) is missing."""


class ZooKeeperStartError(RuntimeError):
    """The server exited or did not become ready in time."""


def zookeeper_installed() -> bool:
    return all(Path(j).exists() for j in JARS) and shutil.which("java") is not None


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def four_letter_word(host: str, port: int, word: str, timeout_s: float = 1.0) -> str:
    """Send a ZooKeeper four-letter word; its answer ('' when there is none)."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as sock:
            sock.sendall(word.encode())
            chunks = []
            while True:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                chunks.append(chunk)
            return b"".join(chunks).decode(errors="replace")
    except OSError:
        return ""


class ZooKeeperProcess:
    """One ZooKeeper server: standalone, or node ``my_id`` of ``ensemble`` (a list of
    (host, client port, quorum port, election port) for every node)."""

    def __init__(
        self,
        data_dir: Path,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        tick_ms: int = 500,
        ensemble: Sequence[tuple[str, int, int, int]] | None = None,
        my_id: int = 1,
        heap_mb: int = 128,
        ready_timeout_s: float = 30.0,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.host = host
        self.port = port if port is not None else free_port(host)
        self.tick_ms = tick_ms
        self.ensemble = list(ensemble or [])
        self.my_id = my_id
        self.heap_mb = heap_mb
        self.ready_timeout_s = ready_timeout_s
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def connect_string(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    @property
    def log_path(self) -> Path:
        return self.data_dir / "logs" / "zookeeper.log"

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _write_config(self) -> Path:
        data = self.data_dir / "data"
        data.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "logs").mkdir(exist_ok=True)
        conf = self.data_dir / "conf"
        conf.mkdir(exist_ok=True)
        (conf / "log4j.properties").write_text(LOG4J)
        lines = [
            f"tickTime={self.tick_ms}",
            "initLimit=20",
            "syncLimit=10",
            f"dataDir={data}",
            f"clientPort={self.port}",
            f"clientPortAddress={self.host}",
            "admin.enableServer=false",
            "4lw.commands.whitelist=ruok,srvr,stat,mntr,cons",
            "preAllocSize=4096",
            "snapCount=10000",
            "forceSync=no",
            "maxClientCnxns=0",
            f"minSessionTimeout={2 * self.tick_ms}",
            f"maxSessionTimeout={40 * self.tick_ms}",
        ]
        if self.ensemble:
            lines += ["standaloneEnabled=false", "quorumListenOnAllIPs=false"]
            for i, (host, _, quorum, election) in enumerate(self.ensemble, start=1):
                lines.append(f"server.{i}={host}:{quorum}:{election}")
            (data / "myid").write_text(f"{self.my_id}\n")
        cfg = conf / "zoo.cfg"
        cfg.write_text("\n".join(lines) + "\n")
        return cfg

    def argv(self, cfg: Path) -> list[str]:
        classpath = ":".join([str(cfg.parent), *JARS])
        return [
            "java",
            "-cp",
            classpath,
            "-Xms32m",
            f"-Xmx{self.heap_mb}m",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.net.preferIPv4Stack=true",
            f"-Dzookeeper.log.dir={self.data_dir / 'logs'}",
            "-Dzookeeper.jmx.log4j.disable=true",
            "-Dzookeeper.admin.enableServer=false",
            "org.apache.zookeeper.server.quorum.QuorumPeerMain",
            str(cfg),
        ]

    def start(self, wait: bool = True) -> Self:
        if not zookeeper_installed():
            raise ZooKeeperNotInstalledError(INSTALL_HINT)
        cfg = self._write_config()
        self._log = open(self.data_dir / "stdout.log", "ab")  # noqa: SIM115 - closed in stop()
        self._proc = subprocess.Popen(
            self.argv(cfg),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # dies with the process that started it: no server outlives a killed test run
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
        if wait:
            self.wait_ready()
        return self

    def mode(self) -> str | None:
        """'standalone', 'leader' or 'follower' when serving, else None."""
        answer = four_letter_word(self.host, self.port, "srvr")
        for line in answer.splitlines():
            if line.startswith("Mode:"):
                return line.split(":", 1)[1].strip()
        return None

    def wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout_s
        while self.mode() is None:
            if self._proc is not None and self._proc.poll() is not None:
                raise ZooKeeperStartError(
                    f"ZooKeeper exited with status {self._proc.returncode}\n{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise ZooKeeperStartError(
                    f"ZooKeeper on {self.connect_string} not ready in {self.ready_timeout_s} s\n"
                    f"{self.log_tail()}"
                )
            time.sleep(0.05)

    def log_tail(self, limit: int = 3000) -> str:
        for path in (self.log_path, self.data_dir / "stdout.log"):
            if path.exists():
                return path.read_bytes()[-limit:].decode(errors="replace")
        return ""

    def stop(self, timeout_s: float = 10.0) -> None:
        if self._proc is None:
            return
        if self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGCONT)
            self._proc.terminate()
            try:
                self._proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()

    def pause(self) -> None:
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def restart(self) -> Self:
        self.stop()
        return self.start()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class ZooKeeperEnsemble:
    """Three (or ``size``) ZooKeeper nodes on 127.0.0.11, .12, ... of one ensemble."""

    def __init__(self, data_dir: Path, size: int = 3, tick_ms: int = 500) -> None:
        hosts = [f"127.0.0.{11 + i}" for i in range(size)]
        spec = [(h, free_port(h), free_port(h), free_port(h)) for h in hosts]
        self.nodes = [
            ZooKeeperProcess(
                Path(data_dir) / f"zk{i + 1}",
                host=h,
                port=client,
                tick_ms=tick_ms,
                ensemble=spec,
                my_id=i + 1,
            )
            for i, (h, client, _, _) in enumerate(spec)
        ]

    @property
    def connect_string(self) -> str:
        return ",".join(n.connect_string for n in self.nodes)

    def start(self) -> Self:
        for n in self.nodes:
            n.start(wait=False)
        for n in self.nodes:
            n.wait_ready()
        return self

    def leader(self) -> ZooKeeperProcess | None:
        return next((n for n in self.nodes if n.is_running() and n.mode() == "leader"), None)

    def stop(self) -> None:
        for n in self.nodes:
            n.stop()
