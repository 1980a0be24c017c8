"""The transactional half of AIOProducer (Kafka's KafkaProducer transaction API).

``init_transactions`` (once), then per transaction ``begin_transaction``, sends,
optionally ``send_offsets_to_transaction``, and ``commit_transaction`` or
``abort_transaction``. A fenced producer (another instance took the same
transactional.id) raises ProducerFencedError and can only be closed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from strom.client.aio.txn_requests import add_offsets, end_txn, init_producer_id, txn_offset_commit
from strom.client.messages import ProducerFencedError
from strom.client.txn_manager import TxnState
from strom.common.types import TopicPartition
from strom.protocol.errors import ErrorCode, KafkaError

if TYPE_CHECKING:
    from strom.client.aio.client import AIOClient
    from strom.client.aio.sender import Sender
    from strom.client.producer_config import ProducerConfig
    from strom.client.txn_manager import TransactionManager


def _offset(value: Any) -> tuple[int, str | None]:
    if isinstance(value, int):
        return value, ""
    return int(value.offset), getattr(value, "metadata", "")


class TransactionsMixin:
    """AIOProducer's transaction methods (KafkaProducer's transaction API)."""

    client: AIOClient
    config: ProducerConfig
    _txn: TransactionManager
    _sender: Sender

    async def flush(self, timeout: float | None = None) -> None:
        """Provided by AIOProducer; raises NotImplementedError here."""
        raise NotImplementedError

    async def init_transactions(self) -> None:
        """Get the producer id and epoch for transactional.id, fencing older instances
        and completing (aborting) their open transaction."""
        txn = self._txn
        txn.require(TxnState.UNINITIALIZED, TxnState.READY, action="init_transactions")
        txn.state = TxnState.INITIALIZING
        try:
            producer_id, epoch = await init_producer_id(
                self.client, txn.transactional_id, self.config.transaction_timeout_ms
            )
        except ProducerFencedError as exc:
            raise txn.fatal(exc) from None
        except KafkaError:
            txn.state = TxnState.UNINITIALIZED
            raise
        txn.set_producer_id(producer_id, epoch)
        txn.state = TxnState.READY

    async def begin_transaction(self) -> None:
        """Start a transaction (Kafka's beginTransaction; no request is sent). KafkaError
        INVALID_TXN_STATE unless init_transactions completed and none is open; a fenced
        producer raises its fatal error."""
        self._txn.begin()

    async def send_offsets_to_transaction(
        self,
        offsets: Mapping[TopicPartition, Any],
        group_metadata: Any,
    ) -> None:
        """Commit consumer offsets (TopicPartition -> offset or OffsetAndMetadata) with
        the transaction. ``group_metadata`` is a group id or a consumer's
        ``group_metadata()`` (generation and member id, so zombies are fenced)."""
        txn = self._txn
        txn.require(TxnState.IN_TRANSACTION, action="send_offsets_to_transaction")
        group = _group_dict(group_metadata)
        try:
            await add_offsets(self.client, txn, group["group_id"])
            txn.offsets_group = group["group_id"]
            await txn_offset_commit(
                self.client, txn, group, {tp: _offset(v) for tp, v in offsets.items()}
            )
        except ProducerFencedError as exc:
            raise txn.fatal(exc) from None
        except KafkaError as exc:
            raise txn.abortable(exc) from None

    async def commit_transaction(self) -> None:
        """Flush the transaction's records, then commit it (EndTxn). After a commit that
        failed with a retriable error or a timeout, call it again (as in Kafka)."""
        txn = self._txn
        txn.require(
            TxnState.IN_TRANSACTION,
            TxnState.ABORTABLE_ERROR,
            TxnState.COMMITTING,
            action="commit_transaction",
        )
        await self.flush()
        txn.begin_end(commit=True)
        await self._end(True)

    async def abort_transaction(self) -> None:
        """Drop the records not yet sent, wait for those in flight, then abort (EndTxn)."""
        txn = self._txn
        txn.begin_end(commit=False)
        aborted = KafkaError(ErrorCode.TRANSACTION_ABORTABLE, "the transaction was aborted")
        self._sender.fail_queued(aborted)
        await self._sender.wait_in_flight()
        if txn.state == TxnState.ABORTABLE_ERROR:
            txn.state = TxnState.ABORTING
        await self._end(False)

    async def _end(self, commit: bool) -> None:
        txn = self._txn
        try:  # with nothing added to the transaction there is nothing to end
            if txn.partitions_in_txn or txn.offsets_group is not None:
                await end_txn(self.client, txn, commit)
        except ProducerFencedError as exc:
            raise txn.fatal(exc) from None
        txn.end_completed()


def _group_dict(group_metadata: Any) -> dict[str, Any]:
    if isinstance(group_metadata, str):
        return {"group_id": group_metadata}
    if isinstance(group_metadata, Mapping):
        return dict(group_metadata)
    return {
        "group_id": group_metadata.group_id,
        "generation_id": getattr(group_metadata, "generation_id", -1),
        "member_id": getattr(group_metadata, "member_id", ""),
        "group_instance_id": getattr(group_metadata, "group_instance_id", None),
    }
