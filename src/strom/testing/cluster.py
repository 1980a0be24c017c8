"""A strom cluster for tests and development: one real ZooKeeper, N broker processes.

Each broker listens on its own loopback address (127.0.0.2, .3, ...) so that a
network fault can target one broker's traffic; ZooKeeper is on 127.0.0.1 (or an
existing server is shared, each cluster in its own chroot). Any broker can be
stopped (SIGTERM), killed (SIGKILL), paused (SIGSTOP) and brought back.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from strom.testing.broker import BrokerProcess, free_port
from strom.testing.zookeeper import ZooKeeperProcess

DEFAULT_SESSION_TIMEOUT_MS = 6000


def broker_host(broker_id: int) -> str:
    """The loopback address of broker ``broker_id`` (ids 0..250)."""
    return f"127.0.0.{2 + broker_id}"


class Cluster:
    def __init__(
        self,
        data_dir: Path,
        brokers: int = 3,
        overrides: Mapping[str, str] | None = None,
        *,
        zookeeper: ZooKeeperProcess | None = None,
        chroot: str | None = None,
        session_timeout_ms: int = DEFAULT_SESSION_TIMEOUT_MS,
        per_broker: Callable[[int], Mapping[str, str]] | None = None,
        first_id: int = 0,
        host: str | None = None,
        ports: Mapping[int, int] | None = None,
    ) -> None:
        """``host``: every broker's address (None: each its own loopback address);
        ``ports``: the port of some broker ids (the others get free ports)."""
        self.data_dir = Path(data_dir)
        self.own_zookeeper = zookeeper is None
        self.zookeeper = zookeeper or ZooKeeperProcess(self.data_dir / "zookeeper")
        self.chroot = chroot or f"/strom-{uuid.uuid4().hex[:8]}"
        self.session_timeout_ms = session_timeout_ms
        self.overrides = dict(overrides or {})
        self.per_broker = per_broker
        self.host = host
        self.ports = dict(ports or {})
        self.brokers: dict[int, BrokerProcess] = {}
        for i in range(first_id, first_id + brokers):
            self.brokers[i] = self._make(i)

    @property
    def zookeeper_connect(self) -> str:
        return self.zookeeper.connect_string + self.chroot

    def _make(self, broker_id: int) -> BrokerProcess:
        host = self.host or broker_host(broker_id)
        port = self.ports.get(broker_id) or free_port(host)
        settings = {
            "broker.id": str(broker_id),
            "listeners": f"PLAINTEXT://{host}:{port}",
            "zookeeper.connect": self.zookeeper_connect,
            "zookeeper.session.timeout.ms": str(self.session_timeout_ms),
            "controlled.shutdown.retry.backoff.ms": "500",
            "offsets.topic.num.partitions": "10",
            "transaction.state.log.num.partitions": "5",
            "group.initial.rebalance.delay.ms": "0",
            **self.overrides,
            **(self.per_broker(broker_id) if self.per_broker else {}),
        }
        return BrokerProcess(
            self.data_dir / f"broker-{broker_id}",
            settings,
            host=host,
            port=port,
            ready_timeout_s=60.0,
        )

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> Self:
        if self.own_zookeeper:
            self.zookeeper.start()
        for b in self.brokers.values():
            b.start(wait=False)
        for b in self.brokers.values():
            b.wait_ready()
        self.wait_for_metadata()
        return self

    def wait_for_metadata(self, timeout_s: float = 60.0) -> None:
        """Wait until every running broker knows every running broker and a controller
        (a broker learns the cluster from the controller's UpdateMetadata)."""
        from strom.protocol.generated.metadata import MetadataRequest
        from strom.testing.wire import RawClient

        running = {i for i, b in self.brokers.items() if b.is_running()}

        def complete() -> bool:
            for i in running:
                with RawClient(self.brokers[i].bootstrap, timeout_s=5) as c:
                    md = c.request(MetadataRequest(topics=[]), 12)
                if md.controller_id < 0 or {b.node_id for b in md.brokers} != running:
                    return False
            return True

        self.wait_for("every broker to know the cluster", complete, timeout_s)

    def add_broker(self, broker_id: int) -> BrokerProcess:
        """Start one more broker (adding brokers to a running cluster)."""
        b = self._make(broker_id)
        self.brokers[broker_id] = b
        b.start()
        self.wait_for_metadata()
        return b

    def stop(self) -> None:
        for b in self.brokers.values():
            if b.is_running():
                b.resume_if_paused()
        for b in self.brokers.values():
            b.close()
        if self.own_zookeeper:
            self.zookeeper.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- access --------------------------------------------------------------------------
    @property
    def bootstrap(self) -> str:
        return ",".join(b.bootstrap for b in self.brokers.values() if b.is_running())

    def broker(self, broker_id: int) -> BrokerProcess:
        return self.brokers[broker_id]

    def metadata(self, topics: list[str] | None = None, via: int | None = None) -> Any:
        """The Metadata (v12) answer of the first running broker (of broker ``via``)."""
        from strom.protocol.generated.metadata import MetadataRequest
        from strom.testing.wire import RawClient

        last: Exception | None = None
        for node_id, b in self.brokers.items():
            if not b.is_running() or via not in (None, node_id):
                continue
            try:
                with RawClient(b.bootstrap, timeout_s=5) as c:
                    req = MetadataRequest(
                        topics=None
                        if topics is None
                        else [MetadataRequest.MetadataRequestTopic(name=t) for t in topics],
                        allow_auto_topic_creation=False,
                    )
                    return c.request(req, 12)
            except OSError as exc:
                last = exc
        raise RuntimeError(f"no broker answered Metadata: {last}")

    def controller_id(self, via: int | None = None) -> int:
        return int(self.metadata([], via).controller_id)

    def leader(self, topic: str, partition: int = 0) -> int:
        """The partition's leader as a broker sees it (-1 when it knows none), waiting
        while the broker asked does not know the partition yet."""
        found: list[int] = []

        def known() -> bool:
            for t in self.metadata([topic]).topics:
                for p in t.partitions:
                    if p.partition_index == partition:
                        found.append(int(p.leader_id))
                        return True
            return False

        self.wait_for(f"{topic}-{partition} in the metadata", known, 30)
        return found[-1]

    def partition(self, topic: str, partition: int = 0) -> Any:
        for t in self.metadata([topic]).topics:
            for p in t.partitions:
                if p.partition_index == partition:
                    return p
        return None

    def wait_for(self, what: str, predicate: Callable[[], bool], timeout_s: float = 30.0) -> float:
        """Wait until ``predicate()``; seconds it took; AssertionError naming ``what``."""
        start = time.monotonic()
        last_error: Exception | None = None
        while True:
            try:
                if predicate():
                    return time.monotonic() - start
            except Exception as exc:  # not there yet (a broker still learning the cluster)
                last_error = exc
            if time.monotonic() - start > timeout_s:
                raise AssertionError(
                    f"timed out after {timeout_s} s waiting for {what}"
                    + (f" (last error: {last_error})" if last_error else "")
                )
            time.sleep(0.1)
