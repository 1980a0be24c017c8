"""Start, stop, kill and restart a broker process on 127.0.0.1 for tests.

A :class:`BrokerProcess` owns one OS process and one data directory. It runs
``python -m strom broker --override listeners=PLAINTEXT://127.0.0.1:PORT
--override log.dirs=DIR ...`` by default; any other command line (for example
a third-party reference broker) can be supplied through ``argv_factory``.

Readiness is "the listener accepts a TCP connection", found by polling the
port; if the process exits first, the error carries the tail of its log. The
process's stdout and stderr go to ``broker.log`` in the data directory, and
``restart()`` reuses the same port and directory so clients see the same
broker come back.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Self

__all__ = [
    "ArgvFactory",
    "BrokerExitedError",
    "BrokerFactory",
    "BrokerProcess",
    "BrokerStartTimeoutError",
    "free_port",
    "strom_argv",
]

HOST = "127.0.0.1"
LOG_FILE_NAME = "broker.log"
LOG_TAIL_BYTES = 4000
POLL_INTERVAL_S = 0.02
PR_SET_PDEATHSIG = 1

ArgvFactory = Callable[[int, Path, Mapping[str, str]], Sequence[str]]
"""Builds a broker command line from (port, data_dir, overrides)."""


class BrokerExitedError(RuntimeError):
    """The broker process exited while it was expected to start or run."""


class BrokerStartTimeoutError(RuntimeError):
    """The broker process is alive but did not accept connections in time."""


def free_port(host: str = HOST) -> int:
    """A TCP port on ``host`` (127.0.0.1) that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def strom_argv(port: int, data_dir: Path, overrides: Mapping[str, str]) -> list[str]:
    """``python -m strom broker`` on 127.0.0.1:port storing its log in data_dir/log."""
    settings = {
        "listeners": f"PLAINTEXT://{HOST}:{port}",
        "log.dirs": str(data_dir / "log"),
        **overrides,
    }
    argv = [sys.executable, "-m", "strom", "broker"]
    for key, value in settings.items():
        argv += ["--override", f"{key}={value}"]
    return argv


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the parent dies (Linux), so no broker
    outlives a killed test run. Linux sends it when the thread that started the broker
    exits: start brokers from a thread that lives as long as they should."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def _accepts_connections(port: int, host: str = HOST) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class BrokerProcess:
    """One broker process on 127.0.0.1 with its own data directory.

    Use as a context manager (starts on enter, stops on exit) or call
    :meth:`start` and :meth:`stop` yourself.
    """

    def __init__(
        self,
        data_dir: Path,
        overrides: Mapping[str, str] | None = None,
        *,
        port: int | None = None,
        ready_timeout_s: float = 15.0,
        argv_factory: ArgvFactory = strom_argv,
        env: Mapping[str, str] | None = None,
        host: str = HOST,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.overrides: dict[str, str] = dict(overrides or {})
        self.host = host
        self.port = port if port is not None else free_port(host)
        self.ready_timeout_s = ready_timeout_s
        self._argv_factory = argv_factory
        self._env = dict(env) if env is not None else None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._started = 0.0
        self.start_to_ready_s: float | None = None
        """Seconds from spawning the process to its port accepting, for the last start."""

    # -- properties --------------------------------------------------------

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        return self._require_proc().pid

    @property
    def log_dir(self) -> Path:
        """Where the default command line puts the broker's log.dirs."""
        return self.data_dir / "log"

    @property
    def log_path(self) -> Path:
        return self.data_dir / LOG_FILE_NAME

    @property
    def returncode(self) -> int | None:
        """None while running (or never started), else the exit status."""
        return None if self._proc is None else self._proc.poll()

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def argv(self) -> list[str]:
        return list(self._argv_factory(self.port, self.data_dir, self.overrides))

    # -- lifecycle ---------------------------------------------------------

    def start(self, wait: bool = True) -> Self:
        """Spawn the process and (with ``wait``) wait until its port accepts connections."""
        if self.is_running():
            raise RuntimeError(f"broker already running (pid {self.pid})")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._close_log()
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()/kill()
        self._log.write(f"=== starting: {' '.join(self.argv)}\n".encode())
        self._log.flush()
        self._started = time.monotonic()
        self._proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=self._env,
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self) -> None:
        """Wait until the started process accepts connections (or fail with its log)."""
        self._wait_ready(self._started)
        self.start_to_ready_s = time.monotonic() - self._started

    def _wait_ready(self, started: float) -> None:
        proc = self._require_proc()
        deadline = started + self.ready_timeout_s
        while True:
            if proc.poll() is not None:
                self._close_log()
                raise BrokerExitedError(
                    f"broker exited with status {proc.returncode} before accepting "
                    f"connections on {self.bootstrap}\n{self.log_tail()}"
                )
            if _accepts_connections(self.port, self.host):
                return
            if time.monotonic() > deadline:
                self.kill()
                raise BrokerStartTimeoutError(
                    f"broker did not accept connections on {self.bootstrap} within "
                    f"{self.ready_timeout_s} s\n{self.log_tail()}"
                )
            time.sleep(POLL_INTERVAL_S)

    def stop(self, timeout_s: float = 15.0) -> int:
        """SIGTERM and wait; SIGKILL if it does not exit in time. Returns the exit status."""
        proc = self._require_proc()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                self._close_log()
                raise BrokerExitedError(
                    f"broker did not exit within {timeout_s} s of SIGTERM; killed\n"
                    f"{self.log_tail()}"
                ) from None
        self._close_log()
        return proc.returncode

    def kill(self) -> int:
        """SIGKILL (kill -9) and reap. Returns the exit status."""
        proc = self._require_proc()
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        self._close_log()
        return proc.returncode

    def restart(self, *, clean: bool = True) -> Self:
        """Stop (SIGTERM if clean, else SIGKILL) and start again on the same port and dir."""
        if self.is_running():
            if clean:
                self.stop()
            else:
                self.kill()
        return self.start()

    def pause(self) -> None:
        """SIGSTOP: the process stays alive but answers nothing until resume()."""
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after pause()."""
        os.kill(self.pid, signal.SIGCONT)

    def resume_if_paused(self) -> None:
        """SIGCONT, harmless when the process is not stopped."""
        if self.is_running():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGCONT)

    def log_tail(self, max_bytes: int = LOG_TAIL_BYTES) -> str:
        """The last max_bytes of the broker's combined stdout and stderr."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(0, size - max_bytes))
                data = f.read()
        except OSError as e:
            return f"(no broker log: {e})"
        return f"--- last {len(data)} bytes of {self.log_path} ---\n" + data.decode(
            "utf-8", "replace"
        )

    # -- context manager ---------------------------------------------------

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop the process if it runs (cleanly, falling back to SIGKILL)."""
        if self.is_running():
            with contextlib.suppress(BrokerExitedError):
                self.stop()
        self._close_log()

    def __repr__(self) -> str:
        state = "running" if self.is_running() else f"stopped ({self.returncode})"
        return f"<BrokerProcess {self.bootstrap} {state} dir={self.data_dir}>"

    # -- internals ---------------------------------------------------------

    def _require_proc(self) -> subprocess.Popen[bytes]:
        if self._proc is None:
            raise RuntimeError("broker was never started")
        return self._proc

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


class BrokerFactory:
    """Starts brokers, each in a fresh data directory, and stops all of them at close()."""

    def __init__(
        self,
        new_dir: Callable[[], Path],
        *,
        argv_factory: ArgvFactory = strom_argv,
        expect_clean_exit: bool = True,
    ) -> None:
        self._new_dir = new_dir
        self._argv_factory = argv_factory
        self._expect_clean_exit = expect_clean_exit
        self.brokers: list[BrokerProcess] = []

    def __call__(
        self,
        overrides: Mapping[str, str] | None = None,
        *,
        data_dir: Path | None = None,
        port: int | None = None,
    ) -> BrokerProcess:
        """Start a broker with these config overrides (in data_dir, or a fresh one;
        ``port`` is the one its readiness is checked on, when overrides set listeners)."""
        proc = BrokerProcess(
            data_dir if data_dir is not None else self._new_dir(),
            overrides,
            port=port,
            argv_factory=self._argv_factory,
        )
        self.brokers.append(proc)
        return proc.start()

    def close(self) -> None:
        """Stop every running broker (SIGTERM).

        Raises BrokerExitedError if expect_clean_exit and any of them exits non-zero.
        """
        problems = []
        for proc in self.brokers:
            if proc.is_running():
                try:
                    status = proc.stop()
                except BrokerExitedError as e:
                    problems.append(str(e))
                    continue
                if self._expect_clean_exit and status != 0:
                    problems.append(f"{proc!r} exited {status} after SIGTERM\n{proc.log_tail()}")
        if problems:
            raise BrokerExitedError("\n".join(problems))
