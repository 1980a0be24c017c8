"""Idempotence and transaction bookkeeping of one producer (sans-IO).

Idempotence: the producer holds a producer id and epoch (InitProducerId) and a
next sequence per partition. A batch gets its base sequence the first time it
is drained and keeps it through every retry, so the broker drops resends it
already has (DUPLICATE_SEQUENCE_NUMBER, or the original offset). A partition's
*unresolved* sequences are those sent or waiting for a retry; a retried batch
may leave only when it is the oldest unresolved one, which keeps a partition's
batches in order with up to ``max.in.flight.requests.per.connection`` (<= 5)
requests in flight. OUT_OF_ORDER_SEQUENCE_NUMBER on a batch that is not the
oldest unresolved one means an earlier batch failed: it is retried. A
sequenced batch that finally fails leaves a gap: a non-transactional producer
then takes a new producer id (sequences restart at 0), as Kafka does.

Transactions (Kafka's TransactionManager states):
UNINITIALIZED -> INITIALIZING -> READY -> IN_TRANSACTION -> COMMITTING|ABORTING
-> READY; an error inside a transaction -> ABORTABLE_ERROR (abort to go on);
fencing -> FATAL_ERROR (close the producer).
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from strom.common.types import TopicPartition
from strom.protocol.errors import ErrorCode, KafkaError, is_retriable

MAX_SEQUENCE = 0x7FFFFFFF

FATAL_CODES = frozenset(
    {
        ErrorCode.PRODUCER_FENCED,
        ErrorCode.INVALID_PRODUCER_EPOCH,
        ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
        ErrorCode.CLUSTER_AUTHORIZATION_FAILED,
        ErrorCode.INVALID_PRODUCER_ID_MAPPING,
        ErrorCode.UNSUPPORTED_VERSION,
        ErrorCode.UNSUPPORTED_FOR_MESSAGE_FORMAT,
    }
)


class TxnState(Enum):
    """Kafka's TransactionManager states (the values are Kafka's names)."""

    UNINITIALIZED = "UNINITIALIZED"
    INITIALIZING = "INITIALIZING"
    READY = "READY"
    IN_TRANSACTION = "IN_TRANSACTION"
    COMMITTING = "COMMITTING_TRANSACTION"
    ABORTING = "ABORTING_TRANSACTION"
    ABORTABLE_ERROR = "ABORTABLE_ERROR"
    FATAL_ERROR = "FATAL_ERROR"


class Outcome(Enum):
    """What a Produce error code means for a batch: success, retry or failure."""

    SUCCESS = "success"  # includes DUPLICATE_SEQUENCE_NUMBER
    RETRY = "retry"
    FAIL = "fail"


class TransactionManager:
    """One producer's producer id and epoch, sequences per partition and
    transaction state."""

    def __init__(self, transactional_id: str | None, idempotent: bool) -> None:
        self.transactional_id = transactional_id
        self.idempotent = idempotent or transactional_id is not None
        self.producer_id = -1
        self.producer_epoch = -1
        self.state = TxnState.UNINITIALIZED
        self.last_error: KafkaError | None = None
        self.needs_new_producer_id = False
        self._next_sequence: dict[TopicPartition, int] = {}
        self._unresolved: dict[TopicPartition, set[int]] = {}
        self.partitions_in_txn: set[TopicPartition] = set()
        self.pending_partitions: set[TopicPartition] = set()
        self.offsets_group: str | None = None

    @property
    def transactional(self) -> bool:
        """True when the producer has a transactional.id."""
        return self.transactional_id is not None

    @property
    def has_producer_id(self) -> bool:
        """True once InitProducerId gave a producer id."""
        return self.producer_id >= 0

    def set_producer_id(self, producer_id: int, producer_epoch: int) -> None:
        """A new id or epoch: every partition's sequence starts again at 0."""
        self.producer_id = producer_id
        self.producer_epoch = producer_epoch
        self._next_sequence.clear()
        self._unresolved.clear()
        self.needs_new_producer_id = False
        if self.state in (TxnState.UNINITIALIZED, TxnState.INITIALIZING):
            self.state = TxnState.READY

    # -- sequences -----------------------------------------------------------

    def stamp(self, batch: Any) -> None:
        """Give a first-time batch its producer fields and base sequence."""
        if not self.idempotent or batch.base_sequence >= 0:
            return
        tp = batch.tp
        seq = self._next_sequence.get(tp, 0)
        batch.set_producer_state(self.producer_id, self.producer_epoch, seq, self.transactional)
        self._next_sequence[tp] = (seq + batch.record_count) & MAX_SEQUENCE
        self._unresolved.setdefault(tp, set()).add(seq)

    def can_send(self, batch: Any) -> bool:
        """False while a transactional partition is not yet added, or while an
        older batch of the partition is unresolved (for a retry)."""
        if self.transactional and batch.tp not in self.partitions_in_txn:
            return False
        if not self.idempotent or batch.base_sequence < 0:
            return True
        if batch.producer_id != self.producer_id:
            return True  # restamped below by the sender
        pending = self._unresolved.get(batch.tp)
        return not pending or batch.base_sequence == min(pending)

    def is_stale(self, batch: Any) -> bool:
        """The batch carries an older producer id/epoch than the current one."""
        return (
            self.idempotent
            and batch.base_sequence >= 0
            and (
                batch.producer_id != self.producer_id or batch.producer_epoch != self.producer_epoch
            )
        )

    def restamp(self, batch: Any) -> None:
        """After a producer id reset, a queued batch takes a fresh sequence."""
        batch.set_producer_state(-1, -1, -1, False)
        self.stamp(batch)

    def split(self, batch: Any, pieces: list[Any]) -> None:
        """``batch`` was split into ``pieces`` that took over its sequence range."""
        if self._resolve(batch):
            self._unresolved.setdefault(batch.tp, set()).update(p.base_sequence for p in pieces)

    def classify(self, batch: Any, code: int) -> Outcome:
        """What a Produce error code means for this batch."""
        if code == ErrorCode.NONE or (
            self.idempotent and code == ErrorCode.DUPLICATE_SEQUENCE_NUMBER
        ):
            return Outcome.SUCCESS
        if code in FATAL_CODES:
            return Outcome.FAIL
        if self.idempotent and code in (
            ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
            ErrorCode.UNKNOWN_PRODUCER_ID,
        ):
            pending = self._unresolved.get(batch.tp)
            if pending and batch.base_sequence > min(pending):
                return Outcome.RETRY
            return Outcome.FAIL
        return Outcome.RETRY if is_retriable(code) else Outcome.FAIL

    def completed(self, batch: Any) -> None:
        """The batch was acknowledged: its sequence is resolved."""
        self._resolve(batch)

    def failed(self, batch: Any, error: KafkaError) -> None:
        """A batch failed for good: a sequence gap or a transaction to abort."""
        had_sequence = self._resolve(batch)
        if error.code in FATAL_CODES and self.transactional:
            self.state = TxnState.FATAL_ERROR
            self.last_error = error
        elif self.transactional and self.state == TxnState.IN_TRANSACTION:
            self.state = TxnState.ABORTABLE_ERROR
            self.last_error = error
        elif had_sequence and not self.transactional:
            self.needs_new_producer_id = True

    def _resolve(self, batch: Any) -> bool:
        if not self.idempotent or batch.base_sequence < 0:
            return False
        if batch.producer_id != self.producer_id or batch.producer_epoch != self.producer_epoch:
            return False
        pending = self._unresolved.get(batch.tp)
        if pending is not None:
            pending.discard(batch.base_sequence)
        return True

    # -- transactions --------------------------------------------------------

    def require(self, *states: TxnState, action: str) -> None:
        """Raise unless the state is one of ``states``: the fatal error in FATAL_ERROR,
        else KafkaError INVALID_TXN_STATE (also without a transactional.id)."""
        if self.state == TxnState.FATAL_ERROR and self.last_error is not None:
            raise self.last_error
        if not self.transactional:
            raise KafkaError(
                ErrorCode.INVALID_TXN_STATE,
                f"{action}: the producer has no transactional.id",
            )
        if self.state not in states:
            expected = " or ".join(s.value for s in states)
            raise KafkaError(
                ErrorCode.INVALID_TXN_STATE,
                f"{action}: invalid transition from {self.state.value} (expected {expected})",
            )

    def begin(self) -> None:
        """READY -> IN_TRANSACTION; KafkaError INVALID_TXN_STATE from another state."""
        self.require(TxnState.READY, action="begin_transaction")
        self.state = TxnState.IN_TRANSACTION

    def maybe_add_partition(self, tp: TopicPartition) -> None:
        """Queue ``tp`` for AddPartitionsToTxn unless the transaction holds it already."""
        if self.transactional and tp not in self.partitions_in_txn:
            self.pending_partitions.add(tp)

    def partitions_added(self, tps: set[TopicPartition]) -> None:
        """AddPartitionsToTxn added ``tps`` to the transaction."""
        self.partitions_in_txn |= tps
        self.pending_partitions -= tps

    def begin_end(self, commit: bool) -> None:
        """Enter COMMITTING or ABORTING before EndTxn. A commit in ABORTABLE_ERROR raises
        the pending error (abort instead); a state the transition does not allow raises
        KafkaError INVALID_TXN_STATE."""
        if commit:
            if self.state == TxnState.ABORTABLE_ERROR and self.last_error is not None:
                raise KafkaError(
                    self.last_error.code,
                    f"cannot commit: the transaction must be aborted ({self.last_error})",
                )
            self.require(TxnState.IN_TRANSACTION, TxnState.COMMITTING, action="commit_transaction")
            self.state = TxnState.COMMITTING
        else:
            self.require(
                TxnState.IN_TRANSACTION,
                TxnState.ABORTABLE_ERROR,
                TxnState.ABORTING,
                action="abort_transaction",
            )
            self.state = TxnState.ABORTING

    def end_completed(self) -> None:
        """EndTxn is done: READY again, with no partitions, offsets group or error."""
        self.state = TxnState.READY
        self.partitions_in_txn.clear()
        self.pending_partitions.clear()
        self.last_error = None
        self.offsets_group = None

    def fatal(self, error: KafkaError) -> KafkaError:
        """Record a fencing (or other fatal) error and return it to raise."""
        self.state = TxnState.FATAL_ERROR
        self.last_error = error
        return error

    def abortable(self, error: KafkaError) -> KafkaError:
        """Record ``error`` as making the transaction abortable (unless it is fatal already)
        and return it to raise."""
        if self.state != TxnState.FATAL_ERROR:
            self.state = TxnState.ABORTABLE_ERROR
            self.last_error = error
        return error
