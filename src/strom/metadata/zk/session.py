"""One ZooKeeper session through kazoo, with the behaviour a broker needs.

- ``zookeeper.connect`` is ``host:port[,host:port...][/chroot]``; the chroot is
  created if missing (as Kafka does) before it is used.
- A ZooKeeper that is down at start is retried with backoff, a clear message
  logged every few seconds, until ``zookeeper.connection.timeout.ms``; then
  :class:`MetadataUnavailableError` with Kafka's message.
- Reconnection backoff is bounded (kazoo's default grows to an hour and loses
  sessions that could have survived).
- Every call has a deadline: kazoo queues requests while SUSPENDED, and a plain
  call would block forever; ConnectionLoss means "outcome unknown", so writers
  re-read or write idempotently.
- Session state changes (SUSPENDED, LOST, CONNECTED) reach ``on_state`` on
  kazoo's thread; the receiver must not block (hand them to a loop or queue).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import (
    ConnectionClosedError,
    ConnectionLoss,
    KazooException,
    OperationTimeoutError,
    SessionExpiredError,
)
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.retry import KazooRetry

from strom.common.errors import MetadataUnavailableError

log = logging.getLogger(__name__)

SUSPENDED = "SUSPENDED"
LOST = "LOST"
CONNECTED = "CONNECTED"
LOG_EVERY_S = 3.0


def split_connect(connect: str) -> tuple[str, str]:
    """'h1:2181,h2:2181/kafka' -> ('h1:2181,h2:2181', '/kafka'); chroot '' when none."""
    hosts, slash, chroot = connect.strip().partition("/")
    chroot = ("/" + chroot).rstrip("/") if slash else ""
    return hosts, chroot


class ZkSession:
    def __init__(
        self,
        connect: str,
        session_timeout_ms: int,
        connection_timeout_ms: int | None = None,
        on_state: Callable[[str], None] | None = None,
        request_timeout_s: float | None = None,
    ) -> None:
        self.connect = connect
        self.hosts, self.chroot = split_connect(connect)
        self.session_timeout_ms = session_timeout_ms
        self.connection_timeout_ms = connection_timeout_ms or session_timeout_ms
        self.request_timeout_s = request_timeout_s or max(session_timeout_ms / 1000, 2.0)
        self._on_state = on_state
        self.client = KazooClient(
            hosts=self.hosts,
            timeout=session_timeout_ms / 1000,
            connection_retry=KazooRetry(max_tries=-1, delay=0.1, backoff=2, max_delay=1.0),
            command_retry=KazooRetry(max_tries=3, delay=0.1, backoff=2, max_delay=1.0),
        )

    # -- lifecycle ----------------------------------------------------------------------
    def start(self) -> None:
        """Connect (creating the chroot); MetadataUnavailableError after
        zookeeper.connection.timeout.ms."""
        deadline = time.monotonic() + self.connection_timeout_ms / 1000
        started = time.monotonic()
        wait_s = 1.0  # the first message comes after a second, then every few seconds
        while True:
            remaining = deadline - time.monotonic()
            try:
                self.client.start(timeout=max(min(remaining, wait_s), 0.1))
                break
            except KazooTimeoutError:
                if time.monotonic() >= deadline:
                    self.client.stop()
                    self.client.close()
                    raise MetadataUnavailableError(
                        f"Timed out waiting for connection to ZooKeeper at {self.hosts} "
                        f"(zookeeper.connection.timeout.ms={self.connection_timeout_ms})"
                    ) from None
                log.warning(
                    "waiting for ZooKeeper at %s: not connected after %.0f s (giving up after "
                    "zookeeper.connection.timeout.ms=%d)",
                    self.hosts,
                    time.monotonic() - started,
                    self.connection_timeout_ms,
                )
                wait_s = LOG_EVERY_S
        if self.chroot:
            self.call(self.client.ensure_path_async, self.chroot)
            self.client.chroot = self.chroot
        self.client.add_listener(self._state_listener)
        log.info("connected to ZooKeeper at %s (session 0x%x)", self.connect, self.session_id)

    def close(self) -> None:
        self._on_state = None
        self.client.remove_listener(self._state_listener)
        try:
            self.client.stop()
            self.client.close()
        except KazooException as exc:
            log.debug("closing the ZooKeeper session: %s", exc)

    @property
    def session_id(self) -> int:
        cid = self.client.client_id
        return int(cid[0]) if cid else 0

    @property
    def connected(self) -> bool:
        return bool(self.client.connected)

    def _state_listener(self, state: Any) -> None:
        name = {KazooState.SUSPENDED: SUSPENDED, KazooState.LOST: LOST}.get(state, CONNECTED)
        log.log(
            logging.WARNING if name != CONNECTED else logging.INFO,
            "ZooKeeper session 0x%x is %s",
            self.session_id,
            name,
        )
        if self._on_state is not None:
            self._on_state(name)

    # -- calls --------------------------------------------------------------------------
    def call(self, async_fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a kazoo ``*_async`` call and wait for it at most the request timeout;
        MetadataUnavailableError when it does not finish or the connection or session was
        lost meanwhile (the outcome is unknown)."""
        try:
            return async_fn(*args, **kwargs).get(timeout=self.request_timeout_s)
        except KazooTimeoutError:
            raise MetadataUnavailableError(
                f"ZooKeeper at {self.hosts} did not answer within {self.request_timeout_s} s"
            ) from None
        except (
            ConnectionLoss,
            ConnectionClosedError,
            OperationTimeoutError,
            SessionExpiredError,
        ) as exc:
            raise MetadataUnavailableError(
                f"ZooKeeper at {self.hosts}: {type(exc).__name__}, the outcome is unknown"
            ) from None

    def get(self, path: str, watch: Callable[..., Any] | None = None) -> tuple[bytes, Any]:
        result: tuple[bytes, Any] = self.call(self.client.get_async, path, watch)
        return result

    def children(self, path: str, watch: Callable[..., Any] | None = None) -> list[str]:
        result: list[str] = self.call(self.client.get_children_async, path, watch)
        return result

    def exists(self, path: str, watch: Callable[..., Any] | None = None) -> Any:
        return self.call(self.client.exists_async, path, watch)

    def create(
        self,
        path: str,
        value: bytes = b"",
        *,
        ephemeral: bool = False,
        sequence: bool = False,
        makepath: bool = False,
    ) -> str:
        result: str = self.call(
            self.client.create_async,
            path,
            value,
            ephemeral=ephemeral,
            sequence=sequence,
            makepath=makepath,
        )
        return result

    def set(self, path: str, value: bytes, version: int = -1) -> Any:
        return self.call(self.client.set_async, path, value, version)

    def delete(self, path: str, version: int = -1) -> None:
        self.call(self.client.delete_async, path, version)

    def ensure_path(self, path: str) -> None:
        self.call(self.client.ensure_path_async, path)

    def transaction(self) -> Any:
        return self.client.transaction()

    def commit(self, transaction: Any) -> list[Any]:
        """Commit a kazoo transaction; the per-operation results (exceptions where an
        operation failed: then nothing was applied)."""
        result: list[Any] = self.call(transaction.commit_async)
        return result
