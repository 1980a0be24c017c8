"""The controller's connections to brokers (Kafka's ControllerChannelManager).

One queue and one sender task per live broker, on the broker's event loop: requests
go out in the order the controller made them, each retried (with a new connection
after a failure) until it is answered or the broker is removed. The controller
thread calls :meth:`add_broker`, :meth:`remove_broker` and :meth:`send`; they only
schedule work on the loop. Responses reach the callback the controller gave.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from strom.metadata.image import BrokerInfo
from strom.net.connection import BrokerConnection
from strom.net.security import ClientSecurity
from strom.protocol.api_versions import INTER_BROKER_API_VERSIONS
from strom.protocol.errors import ErrorCode, KafkaError

log = logging.getLogger(__name__)
RETRY_BACKOFF_S = 0.2


@dataclass(slots=True)
class _Peer:
    info: BrokerInfo
    queue: asyncio.Queue[tuple[Any, Callable[[Any], None] | None]] = field(
        default_factory=asyncio.Queue
    )
    task: asyncio.Task[None] | None = None
    conn: BrokerConnection | None = None


class ControllerChannelManager:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        listener: str,
        client_id: str,
        request_timeout_ms: int,
        security: ClientSecurity | None = None,
    ) -> None:
        self.loop = loop
        self.security = security
        self.listener = listener
        self.client_id = client_id
        self.request_timeout_ms = request_timeout_ms
        self._peers: dict[int, _Peer] = {}

    # -- the controller thread's side --------------------------------------------------
    def add_broker(self, info: BrokerInfo) -> None:
        self.loop.call_soon_threadsafe(self._add, info)

    def remove_broker(self, broker_id: int) -> None:
        self.loop.call_soon_threadsafe(self._remove, broker_id)

    def send(
        self, broker_id: int, request: Any, on_response: Callable[[Any], None] | None = None
    ) -> None:
        self.loop.call_soon_threadsafe(self._enqueue, broker_id, request, on_response)

    def close(self) -> None:
        """Stop every sender (on the loop)."""
        for broker_id in list(self._peers):
            self._remove(broker_id)

    # -- the loop's side -----------------------------------------------------------------
    def _add(self, info: BrokerInfo) -> None:
        self._remove(info.node_id)
        peer = _Peer(info)
        peer.task = self.loop.create_task(self._run(peer), name=f"controller-to-{info.node_id}")
        self._peers[info.node_id] = peer

    def _remove(self, broker_id: int) -> None:
        peer = self._peers.pop(broker_id, None)
        if peer is not None and peer.task is not None:
            peer.task.cancel()

    def _enqueue(self, broker_id: int, request: Any, cb: Callable[[Any], None] | None) -> None:
        peer = self._peers.get(broker_id)
        if peer is None:
            log.debug("dropping %s to broker %d: not live", type(request).__name__, broker_id)
            return
        peer.queue.put_nowait((request, cb))

    async def _connect(self, peer: _Peer) -> BrokerConnection:
        if peer.conn is not None and not peer.conn.closed:
            return peer.conn
        ep = peer.info.endpoint(self.listener)
        if ep is None:
            raise KafkaError(
                ErrorCode.LISTENER_NOT_FOUND,
                f"broker {peer.info.node_id} has no {self.listener} listener",
            )
        peer.conn = await BrokerConnection.open(
            ep.host,
            ep.port,
            client_id=self.client_id,
            request_timeout_ms=self.request_timeout_ms,
            api_versions=INTER_BROKER_API_VERSIONS,
            security=self.security,
        )
        return peer.conn

    async def _run(self, peer: _Peer) -> None:
        try:
            while True:
                request, cb = await peer.queue.get()
                response = await self._deliver(peer, request)
                if cb is not None:
                    try:
                        cb(response)
                    except Exception:
                        log.exception("controller response callback failed")
        finally:
            if peer.conn is not None:
                with contextlib.suppress(Exception):
                    await peer.conn.close()

    async def _deliver(self, peer: _Peer, request: Any) -> Any:
        """Send until answered (the task is cancelled when the broker is removed)."""
        while True:
            try:
                conn = await self._connect(peer)
                return await conn.send(request)
            except (KafkaError, OSError) as exc:
                log.debug(
                    "controller request %s to broker %d failed (%s); retrying",
                    type(request).__name__,
                    peer.info.node_id,
                    exc,
                )
                if peer.conn is not None:
                    with contextlib.suppress(Exception):
                        await peer.conn.close()
                    peer.conn = None
                await asyncio.sleep(RETRY_BACKOFF_S)
