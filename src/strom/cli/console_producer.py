"""``strom console-producer``: kafka-console-producer.sh (lines from stdin).

Producer settings merge as in Kafka's ConsoleProducer: the --command-config
file, then --command-property, then each option that was given (or whose
config is not set yet: the option's default, e.g. linger.ms=1000). When stdin
is a terminal it shows Kafka's ``>`` prompt before each line.
"""

from __future__ import annotations

import argparse
import sys
from typing import BinaryIO

from strom.cli.common import (
    CliError,
    add_bootstrap,
    add_command_config,
    add_command_property,
    client_config,
    parse_bool,
    parse_properties,
)
from strom.client.blocking import DeliveryFuture, Producer
from strom.protocol.errors import KafkaError

_CODECS = ("none", "gzip", "snappy", "lz4", "zstd")

# option dest -> (producer config, Kafka's default or None, help)
_MERGED: dict[str, tuple[str, object, str]] = {
    "request_required_acks": ("acks", "-1", "The required `acks` of the producer requests"),
    "timeout": (
        "linger.ms",
        1000,
        "If set and the producer is running in asynchronous mode, this gives the maximum "
        "amount of time a message will queue awaiting sufficient batch size. The value is "
        "given in ms. This is the option to control `linger.ms` in producer configs.",
    ),
    "batch_size": (
        "batch.size",
        16384,
        "The producer's `batch.size`: the most bytes of records batched together for one "
        "partition when they are not sent synchronously. (Kafka's help calls this a number "
        "of messages, but Kafka, like strom, passes it on as batch.size, a size in bytes.) "
        "--max-partition-memory-bytes replaces it when also set.",
    ),
    "max_partition_memory_bytes": (
        "batch.size",
        None,
        "The buffer size allocated for a partition. This is the option to control "
        "`batch.size` in producer configs.",
    ),
    "request_timeout_ms": (
        "request.timeout.ms",
        1500,
        "The ack timeout of the producer requests. Value must be non-negative and non-zero.",
    ),
    "message_send_max_retries": (
        "retries",
        3,
        "The number of retries before the producer gives up and drops a message. "
        "This is the option to control `retries` in producer configs.",
    ),
    "retry_backoff_ms": (
        "retry.backoff.ms",
        100,
        "How long the producer waits before refreshing the metadata and retrying. "
        "This is the option to control `retry.backoff.ms` in producer configs.",
    ),
    "metadata_expiry_ms": (
        "metadata.max.age.ms",
        300_000,
        "The period of time in milliseconds after which we force a refresh of metadata. "
        "This is the option to control `metadata.max.age.ms` in producer configs.",
    ),
    "max_block_ms": (
        "max.block.ms",
        60_000,
        "The max time that the producer will block for during a send request (e.g. while "
        "the topic is not in the metadata).",
    ),
    "max_memory_bytes": (
        "buffer.memory",
        32 * 1024 * 1024,
        "The total memory used by the producer to buffer records waiting to be sent to the "
        "server. This is the option to control `buffer.memory` in producer configs.",
    ),
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_bootstrap(p)
    p.add_argument("--topic", required=True, help="REQUIRED: The topic id to produce messages to.")
    p.add_argument(
        "--reader-property",
        "--property",
        dest="property",
        action="append",
        metavar="KEY=VALUE",
        help="Properties of the line reader: parse.key=false, key.separator=\\t (default "
        "tab), ignore.error=false (a line without separator is sent as a value with a null "
        "key instead of failing).",
    )
    add_command_property(p, "--producer-property", client="Producer")
    add_command_config(p, "--producer.config", client="the producer")
    p.add_argument(
        "--compression-codec",
        nargs="?",
        const="gzip",
        choices=_CODECS,
        help="The compression codec: either 'none', 'gzip', 'snappy', 'lz4', or 'zstd'. If "
        "specified without value, then it defaults to 'gzip'",
    )
    p.add_argument(
        "--sync",
        action="store_true",
        help="If set message send requests to the brokers are synchronously, one at a time "
        "as they arrive.",
    )
    for dest, (_, default, help_text) in _MERGED.items():
        suffix = "" if default is None else f" (default {default})"
        p.add_argument(f"--{dest.replace('_', '-')}", dest=dest, help=help_text + suffix)


def producer_config(args: argparse.Namespace) -> dict[str, str | int]:
    """Kafka's ConsoleProducer.producerProps: an option given on the command line wins;
    an option's default applies only when the configs do not set it."""
    config = client_config(args, bootstrap=False)
    config.setdefault("client.id", "console-producer")
    config["compression.type"] = args.compression_codec or "none"
    for dest, (key, default, _) in _MERGED.items():
        value = getattr(args, dest)
        if value is not None:
            config[key] = value
        elif default is not None:
            config.setdefault(key, default)  # type: ignore[arg-type]
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


def _lines(source: BinaryIO, prompt: bool) -> list[bytes] | BinaryIO:
    """The input lines; with a prompt (stdin and stdout are terminals, Kafka's
    ``System.console() != null``) read one at a time after printing ``>``."""
    if not prompt:
        return source

    def prompted() -> object:
        while True:
            sys.stdout.write(">")
            sys.stdout.flush()
            line = source.readline()
            if not line:
                return
            yield line

    return prompted()  # type: ignore[return-value]


class _Sent:
    """Futures of async sends, with what Kafka's ErrorLoggingCallback prints."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.pending: list[tuple[DeliveryFuture, bytes | None, bytes]] = []
        self.failed = 0

    def add(self, future: DeliveryFuture, key: bytes | None, value: bytes) -> None:
        self.pending.append((future, key, value))
        if len(self.pending) >= 10_000:
            self.collect()

    def collect(self) -> None:
        for future, key, value in self.pending:
            exc = future.exception()
            if exc is not None:
                self.failed += 1
                keyed = "null" if key is None else f"{len(key)} bytes"
                print(
                    f"ERROR Error when sending message to topic {self.topic} with key: {keyed}, "
                    f"value: {len(value)} bytes with error: {exc}",
                    file=sys.stderr,
                )
        self.pending.clear()


def run(args: argparse.Namespace, stdin: BinaryIO | None = None) -> int:
    props = parse_properties(args.property, "--property")
    parse_key = parse_bool(props.get("parse.key"))
    separator = props.get("key.separator", "\t").encode()
    ignore_error = parse_bool(props.get("ignore.error"))
    source = stdin if stdin is not None else sys.stdin.buffer
    prompt = stdin is None and sys.stdin.isatty() and sys.stdout.isatty()
    sent = _Sent(args.topic)
    with Producer(producer_config(args)) as producer:
        for number, raw in enumerate(_lines(source, prompt), start=1):
            line = raw.rstrip(b"\n").removesuffix(b"\r")
            try:
                key, value = split_line(line, parse_key, separator, number)
            except CliError:
                if not ignore_error:
                    raise
                key, value = None, line
            try:
                future = producer.send(args.topic, value, key=key)
            except KafkaError as exc:  # e.g. the topic is not in the metadata after max.block.ms
                raise CliError(str(exc)) from None
            if args.sync:
                future.result()
            else:
                sent.add(future, key, value)
        producer.flush()
        sent.collect()
    if sent.failed:
        raise CliError(f"{sent.failed} record(s) could not be delivered")
    return 0
