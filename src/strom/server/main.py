"""`strom broker`: parse the configuration, start the listeners, run until stopped.

Start order: check the settings, lock every log directory (before anything is
written to it), bind every listener (a port in use fails here, before the
logs are opened), open the metadata store and the logs, register, then
accept connections. SIGTERM and SIGINT stop accepting, close connections,
flush and close the logs and write the clean-shutdown marker. The listeners and
their connections are strom.server.broker_server, the periodic tasks
strom.server.periodic.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from strom.broker.broker import Broker
from strom.broker.listeners import Listener, bound_listeners
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
from strom.server.broker_server import BrokerServer, bind_all

if TYPE_CHECKING:
    from strom.server.metrics_http import MetricsServer
from strom.storage.dir_lock import LogDirError, LogDirLocks

log = logging.getLogger("strom.server")

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
    listeners: list[Listener] | None = None,
) -> None:
    """Run one broker until SIGTERM/SIGINT (or its server's ``stop`` event). ``ready`` is
    set once it accepts connections; ``server`` (made here by default) lets an embedding
    caller see the broker and set its ``stop`` event; ``listeners`` are the config's,
    when the caller parsed them already."""
    started = time.monotonic()
    locks = LogDirLocks()
    locks.acquire([Path(d) for d in config.log_dirs])
    try:
        listeners = bound_listeners(config) if listeners is None else listeners
        server = server if server is not None else BrokerServer(config)
        # Bind first: a port in use fails before a log directory is touched.
        ports = await bind_all(server, listeners, config)
        if config.embedded:  # a few small files, read (and first written) as the logs are
            store = open_store(config)
        else:  # ZooKeeper: a session to establish, in a worker thread
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


def _parse_listeners(config: BrokerConfig) -> list[Listener] | None:
    """The listeners of ``config``; None when they do not parse (serve() reports it)."""
    try:
        return bound_listeners(config)
    except ConfigError:
        return None


def _has_tls_listener(listeners: list[Listener] | None) -> bool:
    if listeners is None:
        return False
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
        listeners = _parse_listeners(config)
        with asyncio.Runner(loop_factory=loop_factory(_has_tls_listener(listeners))) as runner:
            runner.run(serve(config, listeners=listeners))
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
