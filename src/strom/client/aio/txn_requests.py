"""Producer-id and transaction requests: InitProducerId, AddPartitionsToTxn,
AddOffsetsToTxn, TxnOffsetCommit, EndTxn (with Kafka's retry rules).

Retriable answers (CONCURRENT_TRANSACTIONS, COORDINATOR_LOAD_IN_PROGRESS,
NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE, network errors) are retried with
``retry.backoff.ms`` until ``request.timeout.ms`` (the coordinator is looked up
again); PRODUCER_FENCED / INVALID_PRODUCER_EPOCH are fatal and raise
:class:`~strom.client.messages.ProducerFencedError`.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from strom.client.aio.client import AIOClient
from strom.client.aio.connection import BrokerConnection
from strom.client.aio.coordinators import GROUP, TRANSACTION, find_coordinator
from strom.client.errors import error_for
from strom.client.messages import ProducerFencedError
from strom.client.txn_manager import TransactionManager
from strom.common.types import TopicPartition
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.generated.add_offsets_to_txn import AddOffsetsToTxnRequest
from strom.protocol.generated.add_partitions_to_txn import (
    AddPartitionsToTxnRequest,
    AddPartitionsToTxnResponse,
)
from strom.protocol.generated.end_txn import EndTxnRequest
from strom.protocol.generated.init_producer_id import InitProducerIdRequest
from strom.protocol.generated.txn_offset_commit import TxnOffsetCommitRequest

R = TypeVar("R")
_FENCED = (ErrorCode.PRODUCER_FENCED, ErrorCode.INVALID_PRODUCER_EPOCH)


def _check(code: int, context: str) -> None:
    err = error_for(code, context)
    if err is None:
        return
    if code in _FENCED:
        raise ProducerFencedError(
            err.code,
            f"{context}: {err.code.name}: there is a newer producer with the same "
            "transactional.id (fenced); close this producer",
        )
    raise err


async def _retrying(
    client: AIOClient,
    key: str | None,
    key_type: int,
    call: Callable[[BrokerConnection], Awaitable[R]],
) -> R:
    deadline = time.monotonic() + client.config.request_timeout_ms / 1000
    while True:
        try:
            if key is None:
                conn = await client.any_connection()
            else:
                conn = await find_coordinator(client, key, key_type)
            return await call(conn)
        except KafkaError as exc:
            if not exc.retriable or time.monotonic() >= deadline:
                raise
        await asyncio.sleep(client.config.retry_backoff_ms / 1000)


async def init_producer_id(
    client: AIOClient,
    transactional_id: str | None,
    transaction_timeout_ms: int,
    *,
    producer_id: int = -1,
    producer_epoch: int = -1,
) -> tuple[int, int]:
    """A producer id and epoch (from the transaction coordinator when transactional)."""

    async def call(conn: BrokerConnection) -> tuple[int, int]:
        """Send InitProducerId on ``conn``; the (producer id, epoch) it grants."""
        request = InitProducerIdRequest(
            transactional_id=transactional_id,
            transaction_timeout_ms=transaction_timeout_ms,
            producer_id=producer_id,
            producer_epoch=producer_epoch,
        )
        response = await conn.send(request)
        _check(response.error_code, "InitProducerId")
        return response.producer_id, response.producer_epoch

    return await _retrying(client, transactional_id, TRANSACTION, call)


async def add_partitions(client: AIOClient, txn: TransactionManager) -> None:
    """AddPartitionsToTxn for the partitions the transaction does not hold yet."""
    tps = set(txn.pending_partitions)
    if not tps or txn.transactional_id is None:
        return
    by_topic: dict[str, list[int]] = defaultdict(list)
    for tp in tps:
        by_topic[tp.topic].append(tp.partition)
    request = AddPartitionsToTxnRequest(
        v3_and_below_transactional_id=txn.transactional_id,
        v3_and_below_producer_id=txn.producer_id,
        v3_and_below_producer_epoch=txn.producer_epoch,
        v3_and_below_topics=[
            AddPartitionsToTxnRequest.AddPartitionsToTxnTopic(t, sorted(ps))
            for t, ps in by_topic.items()
        ],
    )

    async def call(conn: BrokerConnection) -> None:
        """Send AddPartitionsToTxn; raise the first partition error
        (OPERATION_NOT_ATTEMPTED is skipped: another partition caused it)."""
        response: AddPartitionsToTxnResponse = await conn.send(request)
        for topic in response.results_by_topic_v3_and_below:
            for p in topic.results_by_partition:
                code = p.partition_error_code
                if code == ErrorCode.OPERATION_NOT_ATTEMPTED:
                    continue
                _check(code, f"AddPartitionsToTxn {topic.name}-{p.partition_index}")

    try:
        await _retrying(client, txn.transactional_id, TRANSACTION, call)
    except ProducerFencedError as exc:
        raise txn.fatal(exc) from None
    except KafkaError as exc:
        if not exc.retriable:
            raise txn.abortable(exc) from None
        raise
    txn.partitions_added(tps)


async def add_offsets(client: AIOClient, txn: TransactionManager, group_id: str) -> None:
    """AddOffsetsToTxn: add ``group_id``'s offsets to the transaction (before
    TxnOffsetCommit); ProducerFencedError when fenced."""

    async def call(conn: BrokerConnection) -> None:
        """Send AddOffsetsToTxn on ``conn`` and check its error code."""
        request = AddOffsetsToTxnRequest(
            transactional_id=txn.transactional_id or "",
            producer_id=txn.producer_id,
            producer_epoch=txn.producer_epoch,
            group_id=group_id,
        )
        response = await conn.send(request)
        _check(response.error_code, f"AddOffsetsToTxn for group {group_id!r}")

    await _retrying(client, txn.transactional_id, TRANSACTION, call)


async def txn_offset_commit(
    client: AIOClient,
    txn: TransactionManager,
    group: Mapping[str, Any],
    offsets: Mapping[TopicPartition, tuple[int, str | None]],
) -> None:
    """Commit ``offsets`` for ``group`` (group_id, generation_id, member_id,
    group_instance_id) as part of the transaction."""
    by_topic: dict[str, list[TxnOffsetCommitRequest.TxnOffsetCommitRequestPartition]] = defaultdict(
        list
    )
    for tp, (offset, metadata) in offsets.items():
        by_topic[tp.topic].append(
            TxnOffsetCommitRequest.TxnOffsetCommitRequestPartition(
                partition_index=tp.partition, committed_offset=offset, committed_metadata=metadata
            )
        )
    request = TxnOffsetCommitRequest(
        transactional_id=txn.transactional_id or "",
        group_id=group["group_id"],
        producer_id=txn.producer_id,
        producer_epoch=txn.producer_epoch,
        generation_id=group.get("generation_id", -1),
        member_id=group.get("member_id", ""),
        group_instance_id=group.get("group_instance_id"),
        topics=[
            TxnOffsetCommitRequest.TxnOffsetCommitRequestTopic(t, ps) for t, ps in by_topic.items()
        ],
    )

    async def call(conn: BrokerConnection) -> None:
        """Send TxnOffsetCommit on ``conn``; raise the first partition error."""
        response = await conn.send(request)
        for topic in response.topics:
            for p in topic.partitions:
                _check(p.error_code, f"TxnOffsetCommit {topic.name}-{p.partition_index}")

    await _retrying(client, group["group_id"], GROUP, call)


async def end_txn(client: AIOClient, txn: TransactionManager, commit: bool) -> None:
    """EndTxn: commit (``commit``) or abort the open transaction; ProducerFencedError
    when fenced."""

    async def call(conn: BrokerConnection) -> None:
        """Send EndTxn on ``conn`` and check its error code."""
        request = EndTxnRequest(
            transactional_id=txn.transactional_id or "",
            producer_id=txn.producer_id,
            producer_epoch=txn.producer_epoch,
            committed=commit,
        )
        response = await conn.send(request)
        _check(response.error_code, "EndTxn")

    await _retrying(client, txn.transactional_id, TRANSACTION, call)
