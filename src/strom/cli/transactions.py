"""``strom transactions``: kafka-transactions.sh (Kafka's TransactionsCommand).

``list`` (ListTransactions on every broker), ``describe`` (DescribeTransactions
at the coordinator), ``describe-producers`` (DescribeProducers at the leader or
``--broker-id``), ``abort`` (a WriteTxnMarkers ABORT marker, found by
``--start-offset`` or given by producer id, epoch and coordinator epoch) and
``find-hanging`` (open transactions older than the timeout whose coordinator
does not know them). Tables are printed as Kafka pads them: every column,
the last one too, followed by a tab.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

from strom.cli.common import CliError, add_bootstrap, add_command_config, client_config, run_admin
from strom.cli.transactions_hanging import find_hanging
from strom.client.admin_types import AbortTransactionSpec
from strom.client.aio.admin import AIOAdmin
from strom.common.types import TopicPartition
from strom.protocol.errors import KafkaError

PRODUCER_HEADERS = (
    "ProducerId",
    "ProducerEpoch",
    "LatestCoordinatorEpoch",
    "LastSequence",
    "LastTimestamp",
    "CurrentTransactionStartOffset",
)
DESCRIBE_HEADERS = (
    "CoordinatorId",
    "TransactionalId",
    "ProducerId",
    "ProducerEpoch",
    "TransactionState",
    "TransactionTimeoutMs",
    "CurrentTransactionStartTimeMs",
    "TransactionDurationMs",
    "TopicPartitions",
)
LIST_HEADERS = ("TransactionalId", "Coordinator", "ProducerId", "TransactionState")


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_command_config(p)
    add_bootstrap(p)
    sub = p.add_subparsers(dest="txn_command", metavar="COMMAND", required=True)
    sub.add_parser("list", help="list transactions")
    describe = sub.add_parser("describe", help="describe the state of an active transactional-id")
    describe.add_argument("--transactional-id", required=True, help="transactional id")
    producers = sub.add_parser(
        "describe-producers", help="describe the states of active producers for a topic partition"
    )
    producers.add_argument(
        "--broker-id",
        type=int,
        help="optional broker id to describe the producer state on a specific replica",
    )
    producers.add_argument("--topic", required=True, help="topic name")
    producers.add_argument("--partition", type=int, required=True, help="partition number")
    _add_abort(
        sub.add_parser(
            "abort", help="abort a hanging transaction (requires administrative privileges)"
        )
    )
    hanging = sub.add_parser("find-hanging", help="find hanging transactions")
    hanging.add_argument(
        "--broker-id", type=int, help="broker id to search for hanging transactions"
    )
    hanging.add_argument(
        "--max-transaction-timeout",
        type=int,
        default=15,
        help="maximum transaction timeout in minutes to limit the scope of the search (default 15)",
    )
    hanging.add_argument("--topic", help="topic name to limit search to")
    hanging.add_argument("--partition", type=int, help="partition number")


def _add_abort(abort: argparse.ArgumentParser) -> None:
    abort.add_argument("--topic", required=True, help="topic name")
    abort.add_argument("--partition", type=int, required=True, help="partition number")
    new = abort.add_argument_group(
        "Brokers on versions 3.0 and above",
        "For newer brokers, only the start offset of the transaction to be aborted is required",
    )
    new.add_argument("--start-offset", type=int, help="start offset of the transaction to abort")
    old = abort.add_argument_group(
        "Brokers on versions older than 3.0",
        "For older brokers, you must provide all of these arguments",
    )
    old.add_argument("--producer-id", type=int, help="producer id")
    old.add_argument("--producer-epoch", type=int, help="producer epoch")
    old.add_argument("--coordinator-epoch", type=int, help="coordinator epoch")


def table(headers: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    """Kafka's prettyPrintTable: columns padded to their widest value, each followed
    by a tab."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    return "\n".join(
        "".join(value.ljust(width) + "\t" for value, width in zip(row, widths, strict=True))
        for row in [headers, *rows]
    )


def fail(message: str, exc: BaseException) -> CliError:
    """Kafka's printErrorAndExit(message, throwable) text."""
    return CliError(f"{message}: {exc}. Enable debug logging for additional detail.")


def _opt(value: int | None) -> str:
    return "None" if value is None else str(value)


async def list_transactions(admin: AIOAdmin, args: argparse.Namespace) -> str:
    try:
        listed = await admin.list_transactions()
    except KafkaError as exc:
        raise fail("Failed to list transactions", exc) from None
    rows = [
        (t.transactional_id, str(t.coordinator_id), str(t.producer_id), t.state) for t in listed
    ]
    return table(LIST_HEADERS, rows)


async def describe(admin: AIOAdmin, args: argparse.Namespace) -> str:
    tid = args.transactional_id
    try:
        d = (await admin.describe_transactions([tid]))[tid]
    except KafkaError as exc:
        raise fail(
            f"Failed to describe transaction state of transactional-id `{tid}`", exc
        ) from None
    start = d.transaction_start_time_ms
    duration = None if start is None else time.time_ns() // 1_000_000 - start
    row = (
        str(d.coordinator_id),
        tid,
        str(d.producer_id),
        str(d.producer_epoch),
        d.state,
        str(d.transaction_timeout_ms),
        _opt(start),
        _opt(duration),
        ",".join(str(tp) for tp in d.topic_partitions),
    )
    return table(DESCRIBE_HEADERS, [row])


async def describe_producers(admin: AIOAdmin, args: argparse.Namespace) -> str:
    tp = TopicPartition(args.topic, args.partition)
    try:
        states = (await admin.describe_producers([tp], broker_id=args.broker_id))[tp]
    except KafkaError as exc:
        where = "leader" if args.broker_id is None else f"broker {args.broker_id}"
        raise fail(f"Failed to describe producers for partition {tp} on {where}", exc) from None
    rows = [
        (
            str(s.producer_id),
            str(s.producer_epoch),
            str(-1 if s.coordinator_epoch is None else s.coordinator_epoch),
            str(s.last_sequence),
            str(s.last_timestamp),
            _opt(s.current_transaction_start_offset),
        )
        for s in states
    ]
    return table(PRODUCER_HEADERS, rows)


async def _abort_spec(admin: AIOAdmin, args: argparse.Namespace) -> AbortTransactionSpec:
    tp = TopicPartition(args.topic, args.partition)
    if args.start_offset is None:
        if args.producer_epoch is None:
            raise CliError("Missing required argument --producer-epoch")
        if args.coordinator_epoch is None:
            raise CliError("Missing required argument --coordinator-epoch")
        epoch = max(args.coordinator_epoch, 0)
        return AbortTransactionSpec(tp, args.producer_id, args.producer_epoch, epoch)
    try:
        states = (await admin.describe_producers([tp]))[tp]
    except KafkaError as exc:
        raise fail(f"Failed to validate producer state for partition {tp}", exc) from None
    for s in states:
        if s.current_transaction_start_offset == args.start_offset:
            return AbortTransactionSpec(
                tp, s.producer_id, s.producer_epoch, s.coordinator_epoch or 0
            )
    raise CliError(
        f"Could not find any open transactions starting at offset {args.start_offset} on "
        f"partition {tp}"
    )


async def abort(admin: AIOAdmin, args: argparse.Namespace) -> str:
    if args.start_offset is None and args.producer_id is None:
        raise CliError(
            "The transaction to abort must be identified either with --start-offset (for "
            "brokers on 3.0 or above) or with --producer-id, --producer-epoch, and "
            "--coordinator-epoch (for older brokers)"
        )
    spec = await _abort_spec(admin, args)
    try:
        await admin.abort_transaction(spec)
    except KafkaError as exc:
        shown = (
            f"AbortTransactionSpec(topicPartition={spec.topic_partition}, producerId="
            f"{spec.producer_id}, producerEpoch={spec.producer_epoch}, coordinatorEpoch="
            f"{spec.coordinator_epoch})"
        )
        raise fail(f"Failed to abort transaction {shown}", exc) from None
    return ""


async def hanging(admin: AIOAdmin, args: argparse.Namespace) -> str:
    return await find_hanging(admin, args, table)


_COMMANDS = {
    "list": list_transactions,
    "describe": describe,
    "describe-producers": describe_producers,
    "abort": abort,
    "find-hanging": hanging,
}


def run(args: argparse.Namespace) -> int:
    command = _COMMANDS[args.txn_command]

    async def work(admin: AIOAdmin) -> str:
        return await command(admin, args)

    out = run_admin(client_config(args), work)
    if out:
        print(out)
    return 0
