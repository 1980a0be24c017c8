"""The listeners of one broker (:class:`BrokerServer`): bound before the logs are
opened, each with its security (TLS context, SASL mechanisms; rebuilt when a
listener's stores change at runtime), accepting connections once the broker is
registered, and the clean stop: controlled shutdown, listeners closed,
connections cancelled. Each accepted connection gets its request context
(client host, listener name, session), its socket buffers and, on an SSL or SASL
listener, an Authenticator, then is served by strom.server.connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
from collections.abc import Callable, Coroutine
from typing import Any

from strom.broker.broker import CLIENT_HOST, LISTENER_NAME, Broker
from strom.broker.listeners import Listener
from strom.broker.session import SESSION, Session
from strom.common.config import BrokerConfig, ConfigError
from strom.server.authenticator import Authenticator
from strom.server.connection import Connection
from strom.server.listener_security import ListenerSecurity, listener_security
from strom.server.periodic import periodic_tasks, run_periodic
from strom.server.stream import ClientStream

log = logging.getLogger("strom.server")


class BrokerServer:
    """The listeners and periodic work of one broker."""

    def __init__(self, config: BrokerConfig) -> None:
        self.config = config
        self._broker: Broker | None = None
        self.connections: set[asyncio.Task[None]] = set()
        self.servers: list[asyncio.Server] = []
        # by listener name; rebuilt when a listener's stores change at runtime
        self.securities: dict[str, ListenerSecurity] = {}
        self._listeners: list[Listener] = []
        self.stop = asyncio.Event()

    async def bind(self, listeners: list[Listener]) -> dict[str, int]:
        """Bind every listener (not accepting yet); the bound port of each."""
        ports: dict[str, int] = {}
        for lst in listeners:
            security = listener_security(self.config, lst)
            self.securities[lst.name] = security
            self._listeners.append(lst)
            on_client = self._client_handler(lst)
            max_frame = self.config.get_int("socket.request.max.bytes")
            server = await asyncio.get_running_loop().create_server(
                functools.partial(ClientStream, max_frame, on_client),
                lst.host,
                lst.port,
                start_serving=False,
            )
            self.servers.append(server)
            ports[lst.name] = server.sockets[0].getsockname()[1]
        return ports

    @property
    def broker(self) -> Broker:
        assert self._broker is not None, "no broker attached"
        return self._broker

    def attach(self, broker: Broker) -> None:
        self._broker = broker
        broker.on_listeners_changed = self._reload_securities

    def _reload_securities(self) -> None:
        """New connections use a listener's new key and trust stores (the broker checked
        that they load before storing them)."""
        for lst in self._listeners:
            try:
                self.securities[lst.name] = listener_security(self.config, lst)
            except ConfigError as exc:
                log.error("keeping the TLS settings of listener %s: %s", lst.name, exc)

    def _client_handler(
        self, listener: Listener
    ) -> Callable[[ClientStream], Coroutine[Any, Any, None]]:
        cfg = self.config
        idle_ms = cfg.get_int("connections.max.idle.ms")
        buffers = (
            cfg.get_int("socket.send.buffer.bytes"),
            cfg.get_int("socket.receive.buffer.bytes"),
        )

        async def on_client(stream: ClientStream) -> None:
            task = asyncio.current_task()
            assert task is not None
            self.connections.add(task)
            peer = stream.get_extra_info("peername")
            CLIENT_HOST.set(f"/{peer[0]}" if peer else "")  # JoinGroup records the host
            LISTENER_NAME.set(listener.name)
            SESSION.set(Session(client_host=peer[0] if peer else ""))
            _set_buffers(stream, *buffers)
            metrics = self.broker.metrics
            metrics.on_connection(listener.name, opened=True)
            auth = None
            security = self.securities[listener.name]
            if security.ssl_context is not None or security.sasl:
                store = self.broker.store
                auth = Authenticator(security, store.scram_credentials, peer[0] if peer else "")
            try:
                conn = Connection(self.broker, stream, idle_ms, auth)
                await conn.serve()
            except asyncio.CancelledError:
                # Shutdown cancels connection tasks; nothing awaits them.
                stream.close()
            except Exception:
                log.exception("unexpected error serving %s", peer)
                stream.close()
            finally:
                self.connections.discard(task)
                metrics.on_connection(listener.name, opened=False)

        return on_client

    async def run(self, ready: asyncio.Event | None = None) -> None:
        broker = self.broker
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.stop.set)
        for server in self.servers:
            await server.start_serving()
        endpoints = ", ".join(f"{lst.name}://{lst.host}:{lst.port}" for lst in broker.listeners)
        log.info(
            "[KafkaServer id=%d] started: listening on %s, log dirs %s",
            broker.node_id,
            endpoints,
            ",".join(str(d) for d in broker.log_dirs),
        )
        if ready is not None:
            ready.set()
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(broker.groups.run())]
            tasks += [tg.create_task(run_periodic(*spec)) for spec in periodic_tasks(broker)]
            await self.stop.wait()
            log.info("shutting down")
            await self._before_stop()
            for server in self.servers:
                server.close()
            for task in tasks + list(self.connections):
                task.cancel()
        for server in self.servers:
            await server.wait_closed()
        if broker.cluster is not None:
            await broker.cluster.shutdown()
        await broker.peers.close()

    async def _before_stop(self) -> None:
        """Controlled shutdown (still serving): the controller moves this broker's
        leaderships away before it stops, so clients only retry once."""
        cluster = self.broker.cluster
        if cluster is not None and self.config.get_bool("controlled.shutdown.enable"):
            await cluster.controlled_shutdown()


def _set_buffers(stream: ClientStream, send: int, receive: int) -> None:
    """socket.send.buffer.bytes / socket.receive.buffer.bytes (-1: the OS default)."""
    import socket

    sock = stream.get_extra_info("socket")
    if sock is None:
        return
    with contextlib.suppress(OSError):
        if send > 0:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send)
        if receive > 0:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive)


async def bind_all(
    server: BrokerServer, listeners: list[Listener], config: BrokerConfig
) -> dict[str, int]:
    try:
        return await server.bind(listeners)
    except OSError as exc:
        for s in server.servers:
            s.close()
        where = ", ".join(f"{lst.name}://{lst.host}:{lst.port}" for lst in listeners)
        raise ConfigError("listeners", f"cannot bind {where}: {exc.strerror or exc}") from None
