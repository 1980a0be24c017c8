"""`strom broker`: parse the configuration, start the listeners, run until stopped.

Start order: check the settings, lock every log directory (before anything is
written to it), bind every listener (a port in use fails here, before the
logs are opened), open the metadata store and the logs, register, then
accept connections. SIGTERM and SIGINT stop accepting, close connections,
flush and close the logs and write the clean-shutdown marker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from strom.broker.broker import CLIENT_HOST, LISTENER_NAME, Broker
from strom.broker.listeners import Listener, bound_listeners
from strom.broker.session import SESSION, Session
from strom.common.config import BrokerConfig, ConfigError, parse_properties
from strom.common.errors import MetadataUnavailableError
from strom.metadata.embedded import EmbeddedMetadataStore
from strom.metadata.meta_properties import (
    MetaPropertiesError,
    check_meta_properties,
    read_meta_properties,
)
from strom.metadata.store import MetadataStore, StoreError
from strom.mypyc_build import MODULES as MYPYC_MODULES
from strom.mypyc_build import compiled_modules
from strom.server.authenticator import Authenticator
from strom.server.connection import Connection
from strom.server.listener_security import ListenerSecurity, listener_security

if TYPE_CHECKING:
    from strom.server.metrics_http import MetricsServer
from strom.storage.checkpoint import (
    LOG_START_OFFSET_CHECKPOINT,
    RECOVERY_POINT_CHECKPOINT,
    REPLICATION_OFFSET_CHECKPOINT,
)
from strom.storage.dir_lock import LogDirError, LogDirLocks

log = logging.getLogger("strom.server")
MARKER_RETRY_S = 0.2  # transaction markers that could not be written are retried this often

EPILOG = """\
Without zookeeper.connect the broker is a single node with an embedded metadata store;
its defaults of offsets.topic.replication.factor, transaction.state.log.replication.factor
and transaction.state.log.min.isr are then 1 (Kafka's are 3, 3 and 2)."""


def parse_args(argv: list[str]) -> tuple[BrokerConfig, str]:
    import argparse  # here, not at import: an embedded broker parses no command line

    p = argparse.ArgumentParser(
        prog="strom broker",
        description="Run a strom broker.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("properties", nargs="?", help="server.properties file")
    p.add_argument(
        "--override",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set a broker config, overriding the properties file",
    )
    p.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR")
    args = p.parse_args(argv)
    values: dict[str, str] = {}
    if args.properties:
        values.update(parse_properties(Path(args.properties).read_text()))
    for item in args.override:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(item, "--override takes KEY=VALUE")
        values[key.strip()] = value.strip()
    return BrokerConfig(values), args.log_level


async def _periodic(interval_s: float, fn: Callable[[], object], what: str) -> None:
    while True:
        await asyncio.sleep(interval_s)
        try:
            result = fn()
            if isinstance(result, Awaitable):
                await result
        except Exception:
            log.exception("periodic %s failed", what)


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
            server = await asyncio.start_server(
                self._client_handler(lst),
                lst.host,
                lst.port,
                limit=2**20,
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
    ) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
        cfg = self.config
        max_frame = cfg.get_int("socket.request.max.bytes")
        idle_ms = cfg.get_int("connections.max.idle.ms")
        buffers = (
            cfg.get_int("socket.send.buffer.bytes"),
            cfg.get_int("socket.receive.buffer.bytes"),
        )

        async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            self.connections.add(task)
            peer = writer.get_extra_info("peername")
            CLIENT_HOST.set(f"/{peer[0]}" if peer else "")  # JoinGroup records the host
            LISTENER_NAME.set(listener.name)
            SESSION.set(Session(client_host=peer[0] if peer else ""))
            _set_buffers(writer, *buffers)
            metrics = self.broker.metrics
            metrics.on_connection(listener.name, opened=True)
            auth = None
            security = self.securities[listener.name]
            if security.ssl_context is not None or security.sasl:
                store = self.broker.store
                auth = Authenticator(security, store.scram_credentials, peer[0] if peer else "")
            try:
                conn = Connection(self.broker, reader, writer, max_frame, idle_ms, auth)
                await conn.serve()
            except asyncio.CancelledError:
                # Shutdown cancels connection tasks; nothing awaits them, and asyncio's
                # stream callback would log the cancellation as an error.
                pass
            finally:
                self.connections.discard(task)
                metrics.on_connection(listener.name, opened=False)

        return on_client

    def periodic_tasks(self) -> list[tuple[float, Callable[[], object], str]]:
        broker, cfg = self.broker, self.broker.config

        def every(key: str) -> float:
            return cfg.get_int(key) / 1000

        txn = broker.transactions
        tasks: list[tuple[float, Callable[[], object], str]] = [
            (every("log.retention.check.interval.ms"), broker.cleanup_logs, "retention"),
            (min(every("log.flush.scheduler.interval.ms"), 1.0), broker.flush_due, "flush"),
            (1.0, broker.delete_due_files, "file deletion"),  # file.delete.delay.ms
            (
                every("producer.id.expiration.check.interval.ms"),
                broker.remove_expired_producers,
                "producer expiry",
            ),
            (
                every("transaction.abort.timed.out.transaction.cleanup.interval.ms"),
                txn.abort_timed_out_transactions,
                "txn abort",
            ),
            (
                every("transaction.remove.expired.transaction.cleanup.interval.ms"),
                txn.expire_transactional_ids,
                "txn expiry",
            ),
            (MARKER_RETRY_S, txn.retry_markers, "txn markers"),
        ]
        if cfg.get_bool("log.cleaner.enable"):
            tasks.append((every("log.cleaner.backoff.ms"), broker.compact_logs, "log cleaner"))
        if broker.cluster is not None:
            cluster = broker.cluster
            lag = every("replica.lag.time.max.ms")
            tasks.append((lag / 2, cluster.check_isr, "ISR expiration"))
            rebalance_s = cfg.get_int("leader.imbalance.check.interval.seconds")
            tasks.append((rebalance_s, cluster.runtime.auto_rebalance, "leader rebalance"))
        for key, name in (
            ("log.flush.offset.checkpoint.interval.ms", RECOVERY_POINT_CHECKPOINT),
            ("log.flush.start.offset.checkpoint.interval.ms", LOG_START_OFFSET_CHECKPOINT),
            ("replica.high.watermark.checkpoint.interval.ms", REPLICATION_OFFSET_CHECKPOINT),
        ):
            interval = cfg.get_int(key)
            if interval > 0:
                tasks.append((interval / 1000, _checkpoint_writer(broker, name), name))
        return tasks

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
            tasks += [tg.create_task(_periodic(*spec)) for spec in self.periodic_tasks()]
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


def _set_buffers(writer: asyncio.StreamWriter, send: int, receive: int) -> None:
    """socket.send.buffer.bytes / socket.receive.buffer.bytes (-1: the OS default)."""
    import socket

    sock = writer.get_extra_info("socket")
    if sock is None:
        return
    with contextlib.suppress(OSError):
        if send > 0:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send)
        if receive > 0:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive)


def _checkpoint_writer(broker: Broker, name: str) -> Callable[[], Awaitable[None]]:
    async def write() -> None:
        offsets = broker.logs.checkpoint_offsets(name)  # a snapshot, taken on the loop
        await asyncio.to_thread(broker.logs.write_checkpoint, name, offsets)

    return write


def open_store(config: BrokerConfig) -> MetadataStore:
    """The embedded store (a single node); a ZooKeeper store with zookeeper.connect
    (connected, its cluster id checked against meta.properties, the broker id
    generated when none is configured). Blocking: run it in a worker thread."""
    log_dirs = [Path(d) for d in config.log_dirs]
    if config.embedded:
        return EmbeddedMetadataStore(log_dirs, config.node_id, config.get_str("cluster.id"))
    from strom.metadata.zk.store import ZkMetadataStore

    store = ZkMetadataStore(
        config.get_str("zookeeper.connect") or "",
        session_timeout_ms=config.get_int("zookeeper.session.timeout.ms"),
        connection_timeout_ms=config.get("zookeeper.connection.timeout.ms"),  # type: ignore[arg-type]
    )
    store.open(config.get_str("cluster.id"))
    try:
        node_id = config.node_id
        if node_id < 0:
            stored, _ = read_meta_properties(log_dirs)
            if stored is not None:
                node_id = stored
            elif config.get_bool("broker.id.generation.enable"):
                node_id = store.generate_broker_id(config.get_int("reserved.broker.max.id"))
                log.info("generated broker id %d", node_id)
            else:
                raise ConfigError("broker.id", "no broker.id set and generation is disabled")
            config.explicit["broker.id"] = node_id
        check_meta_properties(log_dirs, node_id, None, store.cluster_id, zookeeper=True)
    except BaseException:
        store.close()
        raise
    return store


async def serve(
    config: BrokerConfig,
    ready: asyncio.Event | None = None,
    server: BrokerServer | None = None,
) -> None:
    """Run one broker until SIGTERM/SIGINT (or its server's ``stop`` event). ``ready`` is
    set once it accepts connections; ``server`` (made here by default) lets an embedding
    caller see the broker and set its ``stop`` event."""
    started = time.monotonic()
    locks = LogDirLocks()
    locks.acquire([Path(d) for d in config.log_dirs])
    try:
        listeners = bound_listeners(config)
        server = server if server is not None else BrokerServer(config)
        # Bind first: a port in use fails before a log directory is touched.
        ports = await _bind_all(server, listeners, config)
        store = await asyncio.to_thread(open_store, config)
        broker = Broker(config, store)
        server.attach(broker)
        if not config.embedded:
            from strom.broker.cluster_member import ClusterMember

            broker.cluster = ClusterMember(broker, store)  # type: ignore[arg-type]
        broker.start(ports)
        metrics = _start_metrics(broker, config)
        log.info(
            "broker initialised in %.0f ms (event loop: %s, mypyc: %d of %d modules)",
            (time.monotonic() - started) * 1000,
            type(asyncio.get_running_loop()).__module__,
            len(compiled_modules()),
            len(MYPYC_MODULES),
        )
        for key, why in config.no_effect_settings():
            log.warning("%s is set but has no effect: %s", key, why)
        try:
            await server.run(ready)
        finally:
            if metrics is not None:
                await metrics.close()
            broker.shutdown()
            log.info("[KafkaServer id=%d] shut down completed", broker.node_id)
    finally:
        locks.release()


def _start_metrics(broker: Broker, config: BrokerConfig) -> MetricsServer | None:
    """The Prometheus endpoint of metrics.listener, when set (ConfigError if it cannot
    bind or prometheus-client is missing)."""
    listener = config.get_str("metrics.listener")
    if not listener:
        return None
    from strom.server.metrics_http import MetricsServer

    metrics = MetricsServer(broker, listener)
    try:
        metrics.start()
    except OSError as exc:
        raise ConfigError("metrics.listener", f"cannot bind {listener}: {exc}") from None
    broker.metrics_url = metrics.url
    return metrics


async def _bind_all(
    server: BrokerServer, listeners: list[Listener], config: BrokerConfig
) -> dict[str, int]:
    try:
        return await server.bind(listeners)
    except OSError as exc:
        for s in server.servers:
            s.close()
        where = ", ".join(f"{lst.name}://{lst.host}:{lst.port}" for lst in listeners)
        raise ConfigError("listeners", f"cannot bind {where}: {exc.strerror or exc}") from None


def loop_factory(tls: bool = False) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop when it is installed (the ``fast`` extra) and STROM_NO_UVLOOP
    is not set; None: asyncio's own. A broker with a TLS listener (``tls``) runs on
    asyncio's loop: uvloop's start_tls (0.19-0.23) never completes a server-side
    handshake on an accepted stream, and the handshake belongs to the connection (a
    failed one is logged as Kafka logs a failed authentication)."""
    if os.environ.get("STROM_NO_UVLOOP") or tls:
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def _has_tls_listener(config: BrokerConfig) -> bool:
    try:
        listeners = bound_listeners(config)
    except ConfigError:
        return False  # serve() reports it
    return any(lst.security_protocol in ("SSL", "SASL_SSL") for lst in listeners)


def main(argv: list[str] | None = None) -> int:
    try:
        config, level = parse_args(sys.argv[1:] if argv is None else argv)
        _ = config.node_id  # a negative or inconsistent id is refused here
    except (ConfigError, OSError) as e:
        print(f"Error: {e}", file=sys.stderr)
        return 1
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="[%(asctime)s] %(levelname)s %(message)s (%(name)s)",
        stream=sys.stderr,
    )
    try:
        with asyncio.Runner(loop_factory=loop_factory(_has_tls_listener(config))) as runner:
            runner.run(serve(config))
    except (
        ConfigError,
        LogDirError,
        MetaPropertiesError,
        MetadataUnavailableError,
        StoreError,
        ValueError,
    ) as e:
        print(f"Error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"Error: {e}", file=sys.stderr)
        return 1
    return 0
