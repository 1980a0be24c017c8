"""``strom console-producer``: kafka-console-producer.sh (lines from stdin)."""

from __future__ import annotations

import argparse
import sys
from typing import BinaryIO

from strom.cli.common import (
    CliError,
    add_bootstrap,
    load_properties_file,
    parse_bool,
    parse_properties,
)
from strom.client.blocking import DeliveryFuture, Producer

_CODECS = ("none", "gzip", "snappy", "lz4", "zstd")


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_bootstrap(p)
    p.add_argument("--topic", required=True, help="the topic to produce to")
    p.add_argument(
        "--property",
        action="append",
        metavar="KEY=VALUE",
        help="reader properties: parse.key=true, key.separator=SEP (default tab), "
        "ignore.error=true",
    )
    p.add_argument("--producer-property", action="append", metavar="KEY=VALUE")
    p.add_argument("--producer.config", dest="producer_config", metavar="FILE")
    p.add_argument(
        "--compression-codec",
        nargs="?",
        const="gzip",
        choices=_CODECS,
        help="compression codec (gzip when given without a value)",
    )
    p.add_argument("--request-required-acks", help="acks (default -1)")
    p.add_argument("--sync", action="store_true", help="send each line synchronously")
    p.add_argument("--timeout", type=int, help="linger.ms (default 1000)")
    p.add_argument("--batch-size", type=int, help="records per batch (batch.size)")


def producer_config(args: argparse.Namespace) -> dict[str, str | int]:
    config: dict[str, str | int] = {
        "acks": "-1",
        "linger.ms": 1000,
        "client.id": "console-producer",
    }
    config.update(load_properties_file(args.producer_config))
    config.update(parse_properties(args.producer_property, "--producer-property"))
    if args.compression_codec is not None:
        config["compression.type"] = args.compression_codec
    if args.request_required_acks is not None:
        config["acks"] = args.request_required_acks
    if args.timeout is not None:
        config["linger.ms"] = args.timeout
    if args.sync:
        config["linger.ms"] = 0
    config["bootstrap.servers"] = args.bootstrap_server
    return config


def split_line(
    line: bytes, parse_key: bool, separator: bytes, number: int
) -> tuple[bytes | None, bytes]:
    if not parse_key:
        return None, line
    key, sep, value = line.partition(separator)
    if not sep:
        text = line.decode("utf-8", "replace")
        raise CliError(f"No key separator found on line number {number}: '{text}'")
    return key, value


def run(args: argparse.Namespace, stdin: BinaryIO | None = None) -> int:
    props = parse_properties(args.property, "--property")
    parse_key = parse_bool(props.get("parse.key"))
    separator = props.get("key.separator", "\t").encode()
    ignore_error = parse_bool(props.get("ignore.error"))
    source = stdin if stdin is not None else sys.stdin.buffer
    futures: list[DeliveryFuture] = []
    failed = 0
    with Producer(producer_config(args)) as producer:
        for number, raw in enumerate(source, start=1):
            line = raw.rstrip(b"\n").removesuffix(b"\r")
            try:
                key, value = split_line(line, parse_key, separator, number)
            except CliError:
                if not ignore_error:
                    raise
                key, value = None, line
            future = producer.send(args.topic, value, key=key)
            if args.sync:
                future.result()
            else:
                futures.append(future)
                if len(futures) >= 10_000:
                    failed += _collect(futures)
        producer.flush()
        failed += _collect(futures)
    if failed:
        raise CliError(f"{failed} record(s) could not be delivered")
    return 0


def _collect(futures: list[DeliveryFuture]) -> int:
    failed = 0
    for future in futures:
        exc = future.exception()
        if exc is not None:
            failed += 1
            print(f"Error when sending message: {exc}", file=sys.stderr)
    futures.clear()
    return failed
