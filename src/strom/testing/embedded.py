"""A strom broker inside the current process: for test suites and applications.

:class:`EmbeddedBroker` runs the same code as ``strom broker`` (``strom.server.main.serve``)
on a thread of its own with its own event loop, listening on 127.0.0.1 on a port the
system picks (``listeners=PLAINTEXT://127.0.0.1:0``; no free-port race), with its log in
a fresh temporary directory, or on tmpfs (``/dev/shm``) with ``memory=True`` where the
system has one. ``stop()`` stops it as SIGTERM stops a broker process (clean shutdown:
logs flushed and closed) and removes the directory it made.

Use it as a context manager, synchronous or asynchronous::

    with EmbeddedBroker() as broker:
        producer = Producer({"bootstrap.servers": broker.bootstrap})

    async with EmbeddedBroker({"num.partitions": "3"}) as broker:
        ...

The broker's thread never touches the caller's event loop: the asynchronous form starts
and stops it in a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Self

if TYPE_CHECKING:
    from strom.broker.broker import Broker
    from strom.common.config import BrokerConfig
    from strom.server.broker_server import BrokerServer

__all__ = ["EmbeddedBroker", "EmbeddedBrokerError"]

HOST = "127.0.0.1"
TMPFS = Path("/dev/shm")
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 30.0


class EmbeddedBrokerError(RuntimeError):
    """The embedded broker failed to start, or failed while running."""


def memory_dir_parent() -> Path | None:
    """A tmpfs directory for logs kept in memory (Linux's /dev/shm), if writable."""
    if TMPFS.is_dir() and os.access(TMPFS, os.W_OK | os.X_OK):
        return TMPFS
    return None


def make_private_dir(parent: Path | None) -> Path:
    """A new directory only its owner may use, as ``tempfile.mkdtemp``: in ``parent``, or
    in $TMPDIR (else /tmp). Made without importing tempfile (and the shutil, bz2 and lzma
    it imports: 4 ms of the first broker's start); tempfile itself where this fails."""
    root = parent or Path(os.environ.get("TMPDIR") or "/tmp")
    for _ in range(10):
        path = root / f"strom-embedded-{os.urandom(6).hex()}"
        try:
            path.mkdir(mode=0o700)
        except FileExistsError:
            continue
        except OSError:
            break
        return path
    import tempfile

    return Path(tempfile.mkdtemp(prefix="strom-embedded-", dir=parent))


class EmbeddedBroker:
    """One broker in this process on its own thread and event loop.

    ``overrides`` are broker configs (server.properties keys), applied over the
    listener and log directory set here. ``log_dir``: keep the log there (it is not
    removed at stop); otherwise a temporary directory, in memory with ``memory``.
    """

    def __init__(
        self,
        overrides: Mapping[str, str] | None = None,
        *,
        log_dir: Path | str | None = None,
        memory: bool = False,
        port: int = 0,
        host: str = HOST,
    ) -> None:
        self.overrides = dict(overrides or {})
        self.host = host
        self.port = port
        self.memory = memory
        self._given_log_dir = Path(log_dir) if log_dir is not None else None
        self.log_dir: Path | None = self._given_log_dir
        self._made_dir: Path | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: BrokerServer | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    # -- what clients need -------------------------------------------------------
    @property
    def bootstrap(self) -> str:
        """``host:port`` for bootstrap.servers."""
        if not self.running:
            raise EmbeddedBrokerError("the embedded broker is not running")
        return f"{self.host}:{self.port}"

    @property
    def metrics_url(self) -> str | None:
        """The Prometheus endpoint when ``metrics.listener`` is set (port 0: any port)."""
        return self._server.broker.metrics_url if self._server is not None else None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and self._ready.is_set()

    @property
    def broker(self) -> Broker:
        """The Broker object (read it on the broker's loop, or when quiet: it is not
        thread-safe)."""
        if self._server is None:
            raise EmbeddedBrokerError("the embedded broker is not running")
        return self._server.broker

    # -- lifecycle ----------------------------------------------------------------
    def start(self, timeout_s: float = START_TIMEOUT_S) -> Self:
        """Start the broker and wait until it accepts connections."""
        if self._thread is not None:
            raise EmbeddedBrokerError("the embedded broker was already started")
        from strom.common.config import BrokerConfig, ConfigError

        self.log_dir = self._given_log_dir or self._make_dir()
        settings = {
            "listeners": f"PLAINTEXT://{self.host}:{self.port}",
            "log.dirs": str(self.log_dir),
            **self.overrides,
        }
        try:
            config = BrokerConfig(settings)
        except ConfigError as exc:
            self._remove_dir()
            raise EmbeddedBrokerError(f"the embedded broker failed to start: {exc}") from exc
        self._thread = threading.Thread(
            target=self._run, args=(config,), name=f"strom-broker-{self.port}", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(timeout_s):
            self.stop()
            raise EmbeddedBrokerError(f"the embedded broker did not start within {timeout_s} s")
        if self._error is not None:
            error, self._error = self._error, None
            self._thread.join()
            self._thread = None
            self._remove_dir()
            raise EmbeddedBrokerError(f"the embedded broker failed to start: {error}") from error
        return self

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Stop the broker cleanly (as SIGTERM does) and remove the directory it made.
        Raises EmbeddedBrokerError if the broker failed while it ran."""
        thread, loop, server = self._thread, self._loop, self._server
        if thread is None:
            return
        if loop is not None and server is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already finished
                loop.call_soon_threadsafe(server.stop.set)
        thread.join(timeout_s)
        if thread.is_alive():
            raise EmbeddedBrokerError(f"the embedded broker did not stop within {timeout_s} s")
        self._thread = None
        self._remove_dir()
        if self._error is not None:
            error, self._error = self._error, None
            raise EmbeddedBrokerError(f"the embedded broker failed: {error}") from error

    def _run(self, config: BrokerConfig) -> None:
        try:
            asyncio.run(self._serve(config))
        except BaseException as exc:  # reported to the caller of start() or stop()
            self._error = exc
        finally:
            self._ready.set()

    async def _serve(self, config: BrokerConfig) -> None:
        from strom.server.broker_server import BrokerServer
        from strom.server.main import serve

        self._loop = asyncio.get_running_loop()
        server = self._server = BrokerServer(config)
        ready = asyncio.Event()

        async def announce() -> None:
            await ready.wait()
            self.port = server.broker.listeners[0].port
            self._ready.set()

        announcing = asyncio.create_task(announce())
        try:
            await serve(config, ready, server)
        finally:
            announcing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await announcing

    def _make_dir(self) -> Path:
        parent = memory_dir_parent() if self.memory else None
        made = self._made_dir = make_private_dir(parent)
        return made

    def _remove_dir(self) -> None:
        if self._made_dir is not None:
            import shutil

            shutil.rmtree(self._made_dir, ignore_errors=True)
            self._made_dir = None

    # -- context managers ---------------------------------------------------------
    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return await asyncio.to_thread(self.start)

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self.stop)

    def __repr__(self) -> str:
        state = f"running on {self.host}:{self.port}" if self.running else "stopped"
        return f"<EmbeddedBroker {state} log_dir={self.log_dir}>"
