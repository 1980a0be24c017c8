"""The transaction coordinator, sans IO (Kafka's TransactionCoordinator + state manager).

Every request returns a :class:`TxnResult`: the error and producer id/epoch
for the response, plus the records to append to one partition of
``__transaction_state``. The caller appends them and then calls
:meth:`TransactionCoordinator.replay` with each record (the same method that
rebuilds the state when a partition is loaded), or
:meth:`TransactionCoordinator.write_failed` when the append failed.

A transaction in PrepareCommit or PrepareAbort has markers to write: the
caller gets them from :meth:`marker_job`, writes one control batch to every
partition, then appends the record of :meth:`complete_txn`. Markers are
idempotent, so after a crash the loaded Prepare* transactions are simply
sent again (:meth:`complete_load` lists them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from strom.common.hashing import coordinator_partition
from strom.common.types import TopicPartition
from strom.coordinator.txn.log_records import TxnRecord
from strom.coordinator.txn.state import (
    EXPIRATION_ALLOWED,
    NO_PRODUCER_EPOCH,
    NO_PRODUCER_ID,
    PREPARED,
    TransactionMetadata,
    TxnState,
    TxnTransit,
    is_epoch_exhausted,
)
from strom.protocol.errors import ErrorCode

E = ErrorCode


@dataclass(frozen=True, slots=True)
class TxnConfig:
    num_partitions: int = 50
    max_timeout_ms: int = 900_000
    id_expiration_ms: int = 604_800_000


@dataclass(slots=True)
class TxnResult:
    transactional_id: str
    error: ErrorCode = E.NONE
    records: list[TxnRecord] = field(default_factory=list)
    partition: int = -1  # of __transaction_state, where ``records`` go
    producer_id: int = NO_PRODUCER_ID
    producer_epoch: int = NO_PRODUCER_EPOCH


@dataclass(frozen=True, slots=True)
class MarkerJob:
    """Control batches to write: one per partition of a prepared transaction."""

    transactional_id: str
    producer_id: int
    producer_epoch: int
    commit: bool
    coordinator_epoch: int
    partitions: frozenset[TopicPartition]


class TransactionCoordinator:
    def __init__(self, config: TxnConfig, generate_producer_id: Callable[[], int]) -> None:
        self.config = config
        self._generate_producer_id = generate_producer_id
        self.transactions: dict[str, TransactionMetadata] = {}
        self.owned: dict[int, int] = {}  # partition -> coordinator epoch
        self.loading: set[int] = set()

    def partition_for(self, transactional_id: str) -> int:
        return coordinator_partition(transactional_id, self.config.num_partitions)

    # -- loading and replay ----------------------------------------------------
    def begin_load(self, partition: int) -> None:
        self.unload(partition)
        self.loading.add(partition)

    def replay(self, record: TxnRecord) -> None:
        """Apply one record of ``__transaction_state``: live after an append, or on load."""
        txn_id = record.transactional_id
        if record.value is None:
            self.transactions.pop(txn_id, None)
            return
        metadata = self.transactions.get(txn_id)
        if metadata is None:
            self.transactions[txn_id] = TransactionMetadata.from_transit(txn_id, record.value)
        else:
            metadata.apply(record.value)

    def complete_load(self, partition: int, coordinator_epoch: int) -> list[MarkerJob]:
        """Start serving ``partition``; return the markers its prepared transactions still need."""
        self.loading.discard(partition)
        self.owned[partition] = coordinator_epoch
        jobs = []
        for txn_id in sorted(self.transactions):
            if self.partition_for(txn_id) == partition:
                job = self.marker_job(txn_id)
                if job is not None:
                    jobs.append(job)
        return jobs

    def unload(self, partition: int) -> None:
        self.owned.pop(partition, None)
        self.loading.discard(partition)
        for txn_id in [t for t in self.transactions if self.partition_for(t) == partition]:
            del self.transactions[txn_id]

    def _lookup(self, txn_id: str) -> tuple[ErrorCode, TransactionMetadata | None]:
        partition = self.partition_for(txn_id)
        if partition in self.loading:
            return E.COORDINATOR_LOAD_IN_PROGRESS, None
        if partition not in self.owned:
            return E.NOT_COORDINATOR, None
        return E.NONE, self.transactions.get(txn_id)

    def _result(self, txn_id: str, transit: TxnTransit, error: ErrorCode = E.NONE) -> TxnResult:
        return TxnResult(
            txn_id,
            error,
            [TxnRecord(txn_id, transit)],
            self.partition_for(txn_id),
            transit.producer_id,
            transit.producer_epoch,
        )

    def write_failed(self, result: TxnResult) -> None:
        """The records of ``result`` were not appended: forget the pending transitions."""
        for record in result.records:
            metadata = self.transactions.get(record.transactional_id)
            if metadata is not None:
                metadata.abort_pending()

    # -- InitProducerId ------------------------------------------------------------
    def init_producer_id(
        self,
        txn_id: str,
        txn_timeout_ms: int,
        expected: tuple[int, int] | None,
        now_ms: int,
    ) -> TxnResult:
        """``expected`` is the (producer_id, producer_epoch) of a KIP-360 re-initialisation."""
        if not txn_id:
            return TxnResult(txn_id, E.INVALID_REQUEST)
        if not 0 < txn_timeout_ms <= self.config.max_timeout_ms:
            return TxnResult(txn_id, E.INVALID_TRANSACTION_TIMEOUT)
        error, metadata = self._lookup(txn_id)
        if error:
            return TxnResult(txn_id, error)
        if metadata is None:
            metadata = TransactionMetadata(
                txn_id,
                self._generate_producer_id(),
                txn_timeout_ms=txn_timeout_ms,
                txn_last_update_timestamp=now_ms,
            )
            self.transactions[txn_id] = metadata
        if metadata.pending_transition_in_progress:
            return TxnResult(txn_id, E.CONCURRENT_TRANSACTIONS)
        if expected is not None and not _valid_expected_producer(metadata, *expected):
            return TxnResult(txn_id, E.PRODUCER_FENCED)
        state = metadata.state
        if state in PREPARED:
            return TxnResult(txn_id, E.CONCURRENT_TRANSACTIONS)
        if state == TxnState.ONGOING:
            # Abort the open transaction with a bumped epoch (fencing the old producer);
            # the client retries and gets a second bump once the abort completed.
            transit = metadata.prepare_epoch_fence_abort(now_ms)
            return self._result(txn_id, transit, E.CONCURRENT_TRANSACTIONS)
        return self._bump_epoch(metadata, txn_timeout_ms, expected, now_ms)

    def _bump_epoch(
        self,
        metadata: TransactionMetadata,
        txn_timeout_ms: int,
        expected: tuple[int, int] | None,
        now_ms: int,
    ) -> TxnResult:
        """InitProducerId on a completed transaction: a new epoch, or a new producer id."""
        txn_id = metadata.transactional_id
        expected_epoch = None if expected is None else expected[1]
        if is_epoch_exhausted(metadata.producer_epoch) and expected_epoch in (
            None,
            metadata.producer_epoch,
        ):
            transit = metadata.prepare_producer_id_rotation(
                self._generate_producer_id(), txn_timeout_ms, now_ms, expected is not None
            )
            return self._result(txn_id, transit)
        bumped = metadata.prepare_increment_producer_epoch(txn_timeout_ms, expected_epoch, now_ms)
        if bumped is None:
            return TxnResult(txn_id, E.PRODUCER_FENCED)
        return self._result(txn_id, bumped)

    # -- AddPartitionsToTxn / AddOffsetsToTxn --------------------------------------
    def _check_producer(
        self, txn_id: str, producer_id: int, producer_epoch: int
    ) -> tuple[ErrorCode, TransactionMetadata | None]:
        if not txn_id:
            return E.INVALID_REQUEST, None
        error, metadata = self._lookup(txn_id)
        if error:
            return error, None
        if metadata is None or metadata.producer_id != producer_id:
            return E.INVALID_PRODUCER_ID_MAPPING, None
        if metadata.producer_epoch != producer_epoch:
            return E.PRODUCER_FENCED, None
        return E.NONE, metadata

    def add_partitions(
        self,
        txn_id: str,
        producer_id: int,
        producer_epoch: int,
        partitions: Iterable[TopicPartition],
        now_ms: int,
    ) -> TxnResult:
        error, metadata = self._check_producer(txn_id, producer_id, producer_epoch)
        if metadata is None:
            return TxnResult(txn_id, error)
        if metadata.pending_transition_in_progress or metadata.state in PREPARED:
            return TxnResult(txn_id, E.CONCURRENT_TRANSACTIONS)
        added = frozenset(partitions)
        if metadata.state == TxnState.ONGOING and added <= metadata.partitions:
            return TxnResult(txn_id, E.NONE)
        return self._result(txn_id, metadata.prepare_add_partitions(added, now_ms))

    def verify_partitions(
        self,
        txn_id: str,
        producer_id: int,
        producer_epoch: int,
        partitions: Iterable[TopicPartition],
    ) -> dict[TopicPartition, ErrorCode]:
        """KIP-890 verification: is each partition part of the producer's open transaction?"""
        wanted = list(partitions)
        error, metadata = self._check_producer(txn_id, producer_id, producer_epoch)
        if metadata is not None and metadata.state in PREPARED:
            error = E.CONCURRENT_TRANSACTIONS
        if error or metadata is None:
            return dict.fromkeys(wanted, error)
        return {tp: E.NONE if tp in metadata.partitions else E.INVALID_TXN_STATE for tp in wanted}

    # -- EndTxn ----------------------------------------------------------------------
    def end_txn(
        self, txn_id: str, producer_id: int, producer_epoch: int, commit: bool, now_ms: int
    ) -> TxnResult:
        error, metadata = self._check_producer(txn_id, producer_id, producer_epoch)
        if metadata is None:
            return TxnResult(txn_id, error)
        if metadata.pending_transition_in_progress:
            return TxnResult(txn_id, E.CONCURRENT_TRANSACTIONS)
        state = metadata.state
        if state == TxnState.ONGOING:
            return self._result(txn_id, metadata.prepare_abort_or_commit(commit, now_ms))
        wanted_complete = TxnState.COMPLETE_COMMIT if commit else TxnState.COMPLETE_ABORT
        wanted_prepare = TxnState.PREPARE_COMMIT if commit else TxnState.PREPARE_ABORT
        if state == wanted_complete:
            return TxnResult(txn_id, E.NONE)  # a retry of a completed EndTxn
        if state == wanted_prepare:
            return TxnResult(txn_id, E.CONCURRENT_TRANSACTIONS)
        return TxnResult(txn_id, E.INVALID_TXN_STATE)

    # -- markers -----------------------------------------------------------------------
    def marker_job(self, txn_id: str) -> MarkerJob | None:
        metadata = self.transactions.get(txn_id)
        if metadata is None or metadata.state not in PREPARED:
            return None
        epoch = self.owned.get(self.partition_for(txn_id), 0)
        return MarkerJob(
            txn_id,
            metadata.producer_id,
            metadata.producer_epoch,
            metadata.state == TxnState.PREPARE_COMMIT,
            epoch,
            frozenset(metadata.partitions),
        )

    def complete_txn(self, job: MarkerJob, now_ms: int) -> TxnResult:
        """Every marker of ``job`` is written: CompleteCommit / CompleteAbort."""
        txn_id = job.transactional_id
        error, metadata = self._lookup(txn_id)
        if metadata is None:
            return TxnResult(txn_id, error or E.INVALID_PRODUCER_ID_MAPPING)
        if (metadata.producer_id, metadata.producer_epoch) != (job.producer_id, job.producer_epoch):
            return TxnResult(txn_id, E.PRODUCER_FENCED)
        if metadata.pending_transition_in_progress:
            return TxnResult(txn_id, E.CONCURRENT_TRANSACTIONS)
        if metadata.state not in PREPARED:
            return TxnResult(txn_id, E.INVALID_TXN_STATE)
        return self._result(txn_id, metadata.prepare_complete(now_ms))

    # -- timeouts and expiration -----------------------------------------------------
    def timed_out(self, now_ms: int) -> list[str]:
        return [
            txn_id
            for txn_id, m in self.transactions.items()
            if m.state == TxnState.ONGOING
            and not m.pending_transition_in_progress
            and m.txn_start_timestamp + m.txn_timeout_ms < now_ms
            and self.partition_for(txn_id) in self.owned
        ]

    def abort_timed_out(self, txn_id: str, now_ms: int) -> TxnResult:
        """Abort an expired transaction, bumping the epoch so that its producer is fenced."""
        error, metadata = self._lookup(txn_id)
        if metadata is None or metadata.state != TxnState.ONGOING:
            return TxnResult(txn_id, error or E.INVALID_TXN_STATE)
        if metadata.pending_transition_in_progress:
            return TxnResult(txn_id, E.CONCURRENT_TRANSACTIONS)
        return self._result(txn_id, metadata.prepare_epoch_fence_abort(now_ms))

    def expire_transactional_ids(self, now_ms: int) -> list[TxnResult]:
        """Tombstones for ids idle longer than transactional.id.expiration.ms, by partition."""
        by_partition: dict[int, TxnResult] = {}
        deadline = now_ms - self.config.id_expiration_ms
        for txn_id, m in list(self.transactions.items()):
            partition = self.partition_for(txn_id)
            if (
                partition in self.owned
                and m.state in EXPIRATION_ALLOWED
                and not m.pending_transition_in_progress
                and m.txn_last_update_timestamp <= deadline
            ):
                m.prepare_dead()
                result = by_partition.setdefault(partition, TxnResult("", partition=partition))
                result.records.append(TxnRecord(txn_id, None))
        return list(by_partition.values())

    # -- describe and list -------------------------------------------------------------
    def describe(self, txn_id: str) -> tuple[ErrorCode, TransactionMetadata | None]:
        if not txn_id:
            return E.INVALID_REQUEST, None
        error, metadata = self._lookup(txn_id)
        if error:
            return error, None
        if metadata is None or metadata.state == TxnState.DEAD:
            return E.TRANSACTIONAL_ID_NOT_FOUND, None
        return E.NONE, metadata

    def list_transactions(
        self,
        states: set[TxnState],
        producer_ids: set[int],
        min_duration_ms: int,
        now_ms: int,
    ) -> tuple[ErrorCode, list[TransactionMetadata]]:
        if self.loading:
            return E.COORDINATOR_LOAD_IN_PROGRESS, []
        out = []
        for txn_id, m in sorted(self.transactions.items()):
            if self.partition_for(txn_id) not in self.owned or m.state == TxnState.DEAD:
                continue
            if producer_ids and m.producer_id not in producer_ids:
                continue
            if states and m.state not in states:
                continue
            if min_duration_ms >= 0 and now_ms - m.txn_start_timestamp <= min_duration_ms:
                continue
            out.append(m)
        return E.NONE, out


def _valid_expected_producer(metadata: TransactionMetadata, producer_id: int, epoch: int) -> bool:
    """KIP-360: may a producer that knows (producer_id, epoch) re-initialise?"""
    return (
        metadata.producer_epoch == NO_PRODUCER_EPOCH
        or producer_id == metadata.producer_id
        or (producer_id == metadata.last_producer_id and is_epoch_exhausted(epoch))
    )
