"""``strom transactions find-hanging`` (Kafka's FindHangingTransactionsCommand).

A transaction is hanging when a partition holds it open for longer than the
maximum transaction timeout and its coordinator does not know it: no
transactional id lists that producer id, the id is not found, or the id's
current transaction does not include the partition.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence

from strom.cli.common import CliError
from strom.client.admin_types import ProducerState, TransactionDescription
from strom.client.aio.admin import AIOAdmin
from strom.common.types import TopicPartition
from strom.protocol.errors import ErrorCode, KafkaError

HEADERS = (
    "Topic",
    "Partition",
    "ProducerId",
    "ProducerEpoch",
    "CoordinatorEpoch",
    "StartOffset",
    "LastTimestamp",
    "Duration(min)",
)
MAX_BATCH_SIZE = 500
Table = Callable[[tuple[str, ...], Sequence[tuple[str, ...]]], str]
Open = tuple[TopicPartition, ProducerState]


def _fail(message: str, exc: BaseException) -> CliError:
    return CliError(f"{message}: {exc}. Enable debug logging for additional detail.")


async def _partitions(admin: AIOAdmin, args: argparse.Namespace) -> list[TopicPartition]:
    if args.topic is not None and args.partition is not None:
        return [TopicPartition(args.topic, args.partition)]
    try:
        topics = [args.topic] if args.topic is not None else await admin.list_topics()
        described = await admin.describe_topics(topics)
    except KafkaError as exc:
        raise _fail(f"Failed to describe {len(topics)} topics", exc) from None
    return [
        TopicPartition(name, p.partition)
        for name, d in described.items()
        for p in d.partitions
        if args.broker_id is None or args.broker_id in p.replicas
    ]


async def _candidates(
    admin: AIOAdmin, args: argparse.Namespace, tps: list[TopicPartition]
) -> list[Open]:
    """Open transactions running longer than --max-transaction-timeout minutes."""
    limit_ms = args.max_transaction_timeout * 60_000
    out: list[Open] = []
    for i in range(0, len(tps), MAX_BATCH_SIZE):
        batch = tps[i : i + MAX_BATCH_SIZE]
        try:
            found = await admin.describe_producers(batch, broker_id=args.broker_id)
        except KafkaError as exc:
            where = (
                f"Optional[{args.broker_id}]" if args.broker_id is not None else "Optional.empty"
            )
            raise _fail(
                f"Failed to describe producers for {len(batch)} partitions on broker {where}", exc
            ) from None
        now = time.time_ns() // 1_000_000
        out.extend(
            (tp, s)
            for tp, states in found.items()
            for s in states
            if s.current_transaction_start_offset is not None and now - s.last_timestamp > limit_ms
        )
    return out


async def _descriptions(
    admin: AIOAdmin, transactional_ids: set[str]
) -> dict[str, TransactionDescription | None]:
    out: dict[str, TransactionDescription | None] = {}
    for tid in transactional_ids:
        try:
            out[tid] = (await admin.describe_transactions([tid]))[tid]
        except KafkaError as exc:
            if exc.code != ErrorCode.TRANSACTIONAL_ID_NOT_FOUND:
                raise _fail(
                    f"Failed to describe {len(transactional_ids)} transactions", exc
                ) from None
            out[tid] = None
    return out


async def hanging_transactions(admin: AIOAdmin, candidates: list[Open]) -> list[Open]:
    """The candidates whose coordinator does not expect to finish them."""
    producer_ids = {s.producer_id for _, s in candidates}
    try:
        listed = await admin.list_transactions(producer_ids=producer_ids)
    except KafkaError as exc:
        raise _fail(f"Failed to list transactions for {len(producer_ids)} producers", exc) from None
    tids = {t.producer_id: t.transactional_id for t in listed if t.producer_id in producer_ids}
    descriptions = await _descriptions(admin, set(tids.values()))
    out = []
    for tp, state in candidates:
        tid = tids.get(state.producer_id)
        description = None if tid is None else descriptions.get(tid)
        if description is None or tp not in description.topic_partitions:
            out.append((tp, state))
    return out


async def find_hanging(admin: AIOAdmin, args: argparse.Namespace, table: Table) -> str:
    if args.topic is None and args.broker_id is None:
        raise CliError(
            "The `find-hanging` command requires either --topic or --broker-id to limit the "
            "scope of the search"
        )
    if args.partition is not None and args.topic is None:
        raise CliError("The --partition argument requires --topic to be provided")
    candidates = await _candidates(admin, args, await _partitions(admin, args))
    found = await hanging_transactions(admin, candidates) if candidates else []
    now = time.time_ns() // 1_000_000
    rows = [
        (
            tp.topic,
            str(tp.partition),
            str(s.producer_id),
            str(s.producer_epoch),
            str(-1 if s.coordinator_epoch is None else s.coordinator_epoch),
            str(s.current_transaction_start_offset),
            str(s.last_timestamp),
            str((now - s.last_timestamp) // 60_000),
        )
        for tp, s in found
    ]
    return table(HEADERS, rows)
