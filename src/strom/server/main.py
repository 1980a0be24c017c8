"""`strom broker`: parse the configuration, start the listener, run until stopped.

SIGTERM and SIGINT stop accepting, close connections, flush and close the
logs and write the clean-shutdown marker.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import time
from pathlib import Path

from strom.broker.api import Broker
from strom.broker.broker import CLIENT_HOST
from strom.common.config import BrokerConfig, ConfigError, parse_properties
from strom.server.connection import Connection

log = logging.getLogger("strom.server")


def parse_args(argv: list[str]) -> tuple[BrokerConfig, str]:
    p = argparse.ArgumentParser(prog="strom broker", description="Run a strom broker.")
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


async def _periodic(interval_s: float, fn: object, what: str) -> None:
    assert callable(fn)
    while True:
        await asyncio.sleep(interval_s)
        try:
            fn()
        except Exception:
            log.exception("periodic %s failed", what)


async def serve(broker: Broker, ready: asyncio.Event | None = None) -> None:
    cfg = broker.config
    max_frame = cfg.get_int("socket.request.max.bytes")
    connections: set[asyncio.Task[None]] = set()

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        connections.add(task)
        peer = writer.get_extra_info("peername")
        CLIENT_HOST.set(f"/{peer[0]}" if peer else "")  # JoinGroup records the member's host
        try:
            await Connection(broker, reader, writer, max_frame).serve()
        except asyncio.CancelledError:
            # Shutdown cancels connection tasks; nothing awaits them, and asyncio's
            # stream callback would log the cancellation as an error.
            pass
        finally:
            connections.discard(task)

    server = await asyncio.start_server(on_client, broker.host, broker.port, limit=2**20)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    retention_s = cfg.get_int("log.retention.check.interval.ms") / 1000
    compact_s = cfg.get_int("log.cleaner.backoff.ms") / 1000
    flush_s = min(cfg.get_int("log.flush.scheduler.interval.ms"), 1000) / 1000
    log.info(
        "[KafkaServer id=%d] started: listening on %s:%d (advertised %s:%d), log dirs %s",
        broker.node_id,
        broker.host,
        broker.port,
        broker.advertised.host,
        broker.advertised.port,
        ",".join(str(d) for d in broker.log_dirs),
    )
    broker.transactions.startup()
    txn_abort_s = cfg.get_int("transaction.abort.timed.out.transaction.cleanup.interval.ms") / 1000
    txn_expire_s = cfg.get_int("transaction.remove.expired.transaction.cleanup.interval.ms") / 1000
    if ready is not None:
        ready.set()
    async with asyncio.TaskGroup() as tg:
        cleaner = tg.create_task(_periodic(retention_s, broker.cleanup_logs, "retention"))
        flusher = tg.create_task(_periodic(flush_s, broker.flush_due, "flush"))
        compactor = (
            tg.create_task(_periodic(compact_s, broker.compact_logs, "log cleaner"))
            if cfg.get_bool("log.cleaner.enable")
            else None
        )
        groups = tg.create_task(broker.groups.run())
        txn_timer = tg.create_task(
            _periodic(txn_abort_s, broker.transactions.abort_timed_out_transactions, "txn abort")
        )
        txn_expirer = tg.create_task(
            _periodic(txn_expire_s, broker.transactions.expire_transactional_ids, "txn expiry")
        )
        await stop.wait()
        log.info("shutting down")
        server.close()
        cleaner.cancel()
        flusher.cancel()
        if compactor is not None:
            compactor.cancel()
        groups.cancel()
        txn_timer.cancel()
        txn_expirer.cancel()
        for task in list(connections):
            task.cancel()
    await server.wait_closed()
    broker.shutdown()
    log.info("[KafkaServer id=%d] shut down completed", broker.node_id)


def main(argv: list[str] | None = None) -> int:
    started = time.monotonic()
    try:
        config, level = parse_args(sys.argv[1:] if argv is None else argv)
    except (ConfigError, OSError) as e:
        print(f"Error: {e}", file=sys.stderr)
        return 1
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="[%(asctime)s] %(levelname)s %(message)s (%(name)s)",
        stream=sys.stderr,
    )
    try:
        broker = Broker(config)
    except (ConfigError, ValueError, OSError) as e:
        print(f"Error: {e}", file=sys.stderr)
        return 1
    log.info("broker initialised in %.0f ms", (time.monotonic() - started) * 1000)
    try:
        asyncio.run(serve(broker))
    except OSError as e:
        print(f"Error: {e}", file=sys.stderr)
        broker.shutdown()
        return 1
    return 0
