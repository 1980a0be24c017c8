"""The asyncio client core: bootstrap, connections by broker, metadata.

Admin, producer and reader are built on one :class:`AIOClient`. Connections
are opened lazily, one per broker address, and shared by everything.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from strom.client.aio.connection import BrokerConnection
from strom.client.config import ClientConfig, ConfigDict
from strom.client.errors import KafkaConnectionError, KafkaTimeoutError, error_for
from strom.client.metadata import ClusterMetadata
from strom.client.wait_log import WaitLog
from strom.common.types import TopicPartition
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.generated.metadata import MetadataRequest, MetadataResponse

log = logging.getLogger(__name__)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class AIOClient:
    """Shared connections and cluster metadata; use ``async with`` or close()."""

    def __init__(self, config: ConfigDict | ClientConfig | None = None) -> None:
        self.config = config if isinstance(config, ClientConfig) else ClientConfig.from_dict(config)
        self.cluster = ClusterMetadata()
        self._conns: dict[tuple[str, int], BrokerConnection] = {}
        self._locks: dict[tuple[str, int], asyncio.Lock] = {}
        self._closed = False

    async def __aenter__(self) -> AIOClient:
        await self.bootstrap()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close every open connection."""
        self._closed = True
        conns = list(self._conns.values())
        self._conns.clear()
        for conn in conns:
            await conn.close()

    # -- connections ---------------------------------------------------------

    async def connect(self, host: str, port: int) -> BrokerConnection:
        """The open connection to ``host:port``, else a new one (ApiVersions done);
        raises KafkaConnectionError or KafkaTimeoutError when it cannot connect."""
        if self._closed:
            raise KafkaConnectionError(f"the client is closed (connecting to {host}:{port})")
        address = (host, port)
        lock = self._locks.setdefault(address, asyncio.Lock())
        async with lock:
            conn = self._conns.get(address)
            if conn is not None and not conn.closed:
                return conn
            if conn is not None:
                await conn.close()
            conn = await BrokerConnection.open(
                host,
                port,
                client_id=self.config.client_id,
                connect_timeout_ms=self.config.connection_setup_timeout_ms,
                request_timeout_ms=self.config.request_timeout_ms,
                all_dns_ips=self.config.dns_lookup != "default",
                security=self.config.security,
            )
            self._conns[address] = conn
            return conn

    async def bootstrap(self) -> BrokerConnection:
        """Connect to any bootstrap server (retrying until request.timeout.ms) and
        load the broker list."""
        servers = self.config.bootstrap_servers
        names = ",".join(f"{h}:{p}" for h, p in servers)
        deadline = time.monotonic() + self.config.request_timeout_ms / 1000
        last: KafkaError | None = None
        notice = WaitLog()
        while True:
            for host, port in servers:
                try:
                    conn = await self.connect(host, port)
                    await self._refresh(conn, [])
                    return conn
                except (KafkaConnectionError, KafkaTimeoutError) as exc:
                    last = exc
                if time.monotonic() >= deadline:
                    break
            if notice.due():
                log.warning(
                    f"[clientId={self.config.client_id}] Connection to the bootstrap servers "
                    f"{names} could not be established (last error: {last}). Brokers may not be "
                    f"available; retrying until request.timeout.ms "
                    f"({self.config.request_timeout_ms} ms) has passed."
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise KafkaTimeoutError(
                    f"could not reach any of the bootstrap servers {names} within "
                    f"{self.config.request_timeout_ms} ms (last error: {last})"
                )
            await asyncio.sleep(min(self.config.retry_backoff_ms / 1000, remaining))

    async def node_connection(self, node_id: int) -> BrokerConnection:
        """A connection to broker ``node_id``; an unknown id refreshes metadata once,
        then raises BROKER_NOT_AVAILABLE."""
        broker = self.cluster.broker(node_id)
        if broker is None:
            await self.refresh_metadata(None)
            broker = self.cluster.broker(node_id)
            if broker is None:
                raise KafkaError(ErrorCode.BROKER_NOT_AVAILABLE, f"broker {node_id} is not known")
        return await self.connect(broker.host, broker.port)

    async def any_connection(self) -> BrokerConnection:
        """An open connection, else one to the lowest-id known broker, else bootstrap."""
        for conn in self._conns.values():
            if not conn.closed:
                return conn
        broker = self.cluster.any_broker()
        if broker is not None:
            try:
                return await self.connect(broker.host, broker.port)
            except (KafkaConnectionError, KafkaTimeoutError):
                pass
        return await self.bootstrap()

    async def controller_connection(self) -> BrokerConnection:
        """A connection to the controller (bootstrapping first if no metadata yet);
        any broker when the controller is not known."""
        if self.cluster.last_refresh_ms < 0:
            await self.bootstrap()
        controller = self.cluster.controller_id
        if controller >= 0 and self.cluster.broker(controller) is not None:
            return await self.node_connection(controller)
        return await self.any_connection()

    async def send(self, node_id: int | None, request: Any, **kwargs: Any) -> Any:
        """Send to a broker (None: any broker) at the negotiated version."""
        conn = await (self.any_connection() if node_id is None else self.node_connection(node_id))
        return await conn.send(request, **kwargs)

    # -- metadata ------------------------------------------------------------

    async def _refresh(
        self, conn: BrokerConnection, topics: list[str] | None, auto_create: bool = False
    ) -> MetadataResponse:
        request = MetadataRequest(
            topics=None
            if topics is None
            else [MetadataRequest.MetadataRequestTopic(name=t) for t in topics],
            allow_auto_topic_creation=auto_create,
        )
        response: MetadataResponse = await conn.send(request)
        self.cluster.update(response, _now_ms(), full=topics is None)
        return response

    async def refresh_metadata(
        self, topics: list[str] | None = None, *, auto_create: bool = False
    ) -> MetadataResponse:
        """Ask any broker for metadata of ``topics`` (None: all topics)."""
        conn = await self.any_connection()
        return await self._refresh(conn, topics, auto_create)

    async def wait_for_topic(self, topic: str, *, auto_create: bool = False) -> int:
        """Partition count of ``topic``, refreshing (and retrying while leaders are
        elected) until request.timeout.ms; UNKNOWN_TOPIC_OR_PARTITION if absent."""
        deadline = time.monotonic() + self.config.request_timeout_ms / 1000
        notice = WaitLog()
        while True:
            response = await self.refresh_metadata([topic], auto_create=auto_create)
            entry = next((t for t in response.topics if t.name == topic), None)
            code = entry.error_code if entry is not None else ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
            count = self.cluster.partition_count(topic)
            leaders_known = count and all(
                self.cluster.leader_for(tp) is not None for tp in self.cluster.partitions_for(topic)
            )
            if code == ErrorCode.NONE and count and leaders_known:
                return count
            retry = code in (ErrorCode.LEADER_NOT_AVAILABLE, ErrorCode.NONE) or (
                auto_create and code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
            )
            if not retry or time.monotonic() >= deadline:
                err = error_for(code or ErrorCode.LEADER_NOT_AVAILABLE, f"topic {topic!r}")
                assert err is not None
                raise err
            if notice.due():
                error = ErrorCode(code or ErrorCode.LEADER_NOT_AVAILABLE).name
                log.warning(
                    f"[clientId={self.config.client_id}] Error while fetching metadata: "
                    f"{{{topic}={error}}}; waiting for the leaders of topic {topic!r} until "
                    f"request.timeout.ms ({self.config.request_timeout_ms} ms) has passed."
                )
            await asyncio.sleep(self.config.retry_backoff_ms / 1000)

    async def leader_for(self, tp: TopicPartition) -> int:
        """The node id of ``tp``'s leader, waiting for the topic when it is not known;
        UNKNOWN_TOPIC_OR_PARTITION when the partition does not exist."""
        leader = self.cluster.leader_for(tp)
        if leader is None:
            await self.wait_for_topic(tp.topic)
            leader = self.cluster.leader_for(tp)
        if leader is None:
            raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"partition {tp} does not exist")
        return leader
