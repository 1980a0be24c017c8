"""Transaction metadata of one transactional id and its state machine (KIP-98).

The states and their ids are Kafka's (they are stored in ``__transaction_state``
as TransactionStatus). ``VALID_PREVIOUS_STATES`` is the table of allowed
transitions: a state may be entered only from the states listed for it.

A ``prepare_*`` method checks the table, marks the metadata with the pending
state (which blocks any other transition until the record is written) and
returns the target image, a :class:`TxnTransit`. The image becomes the state
only when its record has been appended: ``apply`` (called by the
coordinator's replay) copies it in and clears the pending state.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import IntEnum

from strom.common.types import TopicPartition

NO_PRODUCER_ID = -1
NO_PRODUCER_EPOCH = -1
SHORT_MAX = 32_767


class TxnState(IntEnum):
    EMPTY = 0
    ONGOING = 1
    PREPARE_COMMIT = 2
    PREPARE_ABORT = 3
    COMPLETE_COMMIT = 4
    COMPLETE_ABORT = 5
    DEAD = 6
    PREPARE_EPOCH_FENCE = 7

    @property
    def display_name(self) -> str:
        """The name DescribeTransactions and ListTransactions report."""
        return _NAMES[self]

    @classmethod
    def from_name(cls, name: str) -> TxnState | None:
        for state, n in _NAMES.items():
            if n == name:
                return state
        return None


_NAMES = {
    TxnState.EMPTY: "Empty",
    TxnState.ONGOING: "Ongoing",
    TxnState.PREPARE_COMMIT: "PrepareCommit",
    TxnState.PREPARE_ABORT: "PrepareAbort",
    TxnState.COMPLETE_COMMIT: "CompleteCommit",
    TxnState.COMPLETE_ABORT: "CompleteAbort",
    TxnState.DEAD: "Dead",
    TxnState.PREPARE_EPOCH_FENCE: "PrepareEpochFence",
}

S = TxnState
VALID_PREVIOUS_STATES: dict[TxnState, frozenset[TxnState]] = {
    S.EMPTY: frozenset({S.EMPTY, S.COMPLETE_COMMIT, S.COMPLETE_ABORT}),
    S.ONGOING: frozenset({S.ONGOING, S.EMPTY, S.COMPLETE_COMMIT, S.COMPLETE_ABORT}),
    S.PREPARE_COMMIT: frozenset({S.ONGOING}),
    S.PREPARE_ABORT: frozenset({S.ONGOING, S.PREPARE_EPOCH_FENCE}),
    S.COMPLETE_COMMIT: frozenset({S.PREPARE_COMMIT}),
    S.COMPLETE_ABORT: frozenset({S.PREPARE_ABORT}),
    S.DEAD: frozenset({S.EMPTY, S.COMPLETE_COMMIT, S.COMPLETE_ABORT}),
    S.PREPARE_EPOCH_FENCE: frozenset({S.ONGOING}),
}
EXPIRATION_ALLOWED = frozenset({S.EMPTY, S.COMPLETE_COMMIT, S.COMPLETE_ABORT})
PREPARED = frozenset({S.PREPARE_COMMIT, S.PREPARE_ABORT})


class IllegalTransitionError(Exception):
    """A transition the table does not allow, or one attempted while another is pending."""


def is_epoch_exhausted(producer_epoch: int) -> bool:
    return producer_epoch >= SHORT_MAX - 1


@dataclass(frozen=True, slots=True)
class TxnTransit:
    """The image of a transactional id as written to ``__transaction_state``.

    ``last_producer_epoch`` lives in memory only (Kafka's value schema has no
    field for it); it is -1 after a reload.
    """

    producer_id: int
    producer_epoch: int
    txn_timeout_ms: int
    state: TxnState
    partitions: frozenset[TopicPartition]
    txn_start_timestamp: int
    txn_last_update_timestamp: int
    last_producer_id: int = NO_PRODUCER_ID
    next_producer_id: int = NO_PRODUCER_ID
    last_producer_epoch: int = NO_PRODUCER_EPOCH
    client_transaction_version: int = 0


@dataclass(slots=True)
class TransactionMetadata:
    transactional_id: str
    producer_id: int
    producer_epoch: int = NO_PRODUCER_EPOCH
    txn_timeout_ms: int = 60_000
    state: TxnState = TxnState.EMPTY
    partitions: set[TopicPartition] = field(default_factory=set)
    txn_start_timestamp: int = -1
    txn_last_update_timestamp: int = -1
    last_producer_id: int = NO_PRODUCER_ID
    last_producer_epoch: int = NO_PRODUCER_EPOCH
    pending_state: TxnState | None = None

    # -- images --------------------------------------------------------------
    def image(self) -> TxnTransit:
        return TxnTransit(
            producer_id=self.producer_id,
            producer_epoch=self.producer_epoch,
            txn_timeout_ms=self.txn_timeout_ms,
            state=self.state,
            partitions=frozenset(self.partitions),
            txn_start_timestamp=self.txn_start_timestamp,
            txn_last_update_timestamp=self.txn_last_update_timestamp,
            last_producer_id=self.last_producer_id,
            last_producer_epoch=self.last_producer_epoch,
        )

    def apply(self, transit: TxnTransit) -> None:
        """Make ``transit`` the current state (its record is in the log)."""
        self.producer_id = transit.producer_id
        self.producer_epoch = transit.producer_epoch
        self.txn_timeout_ms = transit.txn_timeout_ms
        self.state = transit.state
        self.partitions = set(transit.partitions)
        self.txn_start_timestamp = transit.txn_start_timestamp
        self.txn_last_update_timestamp = transit.txn_last_update_timestamp
        self.last_producer_id = transit.last_producer_id
        self.last_producer_epoch = transit.last_producer_epoch
        self.pending_state = None

    @classmethod
    def from_transit(cls, transactional_id: str, transit: TxnTransit) -> TransactionMetadata:
        metadata = cls(transactional_id, transit.producer_id)
        metadata.apply(transit)
        return metadata

    # -- transitions ---------------------------------------------------------
    @property
    def pending_transition_in_progress(self) -> bool:
        return self.pending_state is not None

    def _check(self, target: TxnState, source: TxnState | None = None) -> None:
        if self.pending_state is not None:
            raise IllegalTransitionError(
                f"{self.transactional_id}: transition to {self.pending_state.display_name} "
                "is still pending"
            )
        src = self.state if source is None else source
        if src not in VALID_PREVIOUS_STATES[target]:
            raise IllegalTransitionError(
                f"{self.transactional_id}: {src.display_name} -> {target.display_name} "
                "is not a valid transition"
            )

    def _prepare(self, transit: TxnTransit) -> TxnTransit:
        self._check(transit.state)
        self.pending_state = transit.state
        return transit

    def prepare_increment_producer_epoch(
        self, new_timeout_ms: int, expected_epoch: int | None, now_ms: int
    ) -> TxnTransit | None:
        """InitProducerId on a completed transaction; None means the caller is fenced."""
        bumped = self.producer_epoch + 1
        if expected_epoch is None:
            epochs = (bumped, NO_PRODUCER_EPOCH)
        elif self.producer_epoch == NO_PRODUCER_EPOCH or expected_epoch == self.producer_epoch:
            epochs = (bumped, self.producer_epoch)
        elif expected_epoch == self.last_producer_epoch:
            epochs = (self.producer_epoch, self.last_producer_epoch)  # a retried bump
        else:
            return None
        return self._prepare(
            replace(
                self.image(),
                producer_epoch=epochs[0],
                last_producer_epoch=epochs[1],
                txn_timeout_ms=new_timeout_ms,
                state=TxnState.EMPTY,
                partitions=frozenset(),
                txn_start_timestamp=-1,
                txn_last_update_timestamp=now_ms,
            )
        )

    def prepare_producer_id_rotation(
        self, new_producer_id: int, new_timeout_ms: int, now_ms: int, record_last_epoch: bool
    ) -> TxnTransit:
        return self._prepare(
            replace(
                self.image(),
                producer_id=new_producer_id,
                producer_epoch=0,
                last_producer_id=self.producer_id,
                last_producer_epoch=self.producer_epoch if record_last_epoch else -1,
                txn_timeout_ms=new_timeout_ms,
                state=TxnState.EMPTY,
                partitions=frozenset(),
                txn_start_timestamp=-1,
                txn_last_update_timestamp=now_ms,
            )
        )

    def prepare_add_partitions(self, added: frozenset[TopicPartition], now_ms: int) -> TxnTransit:
        starting = self.state in (TxnState.EMPTY, TxnState.COMPLETE_COMMIT, TxnState.COMPLETE_ABORT)
        return self._prepare(
            replace(
                self.image(),
                state=TxnState.ONGOING,
                partitions=frozenset(self.partitions | added),
                txn_start_timestamp=now_ms if starting else self.txn_start_timestamp,
                txn_last_update_timestamp=now_ms,
            )
        )

    def prepare_abort_or_commit(self, commit: bool, now_ms: int) -> TxnTransit:
        target = TxnState.PREPARE_COMMIT if commit else TxnState.PREPARE_ABORT
        return self._prepare(replace(self.image(), state=target, txn_last_update_timestamp=now_ms))

    def prepare_epoch_fence_abort(self, now_ms: int) -> TxnTransit:
        """Ongoing -> (PrepareEpochFence) -> PrepareAbort with the epoch bumped.

        Fences the current producer: its epoch is never handed out, and the
        markers carry the bumped epoch. Used by InitProducerId on an ongoing
        transaction and by the timeout of a transaction.
        """
        if self.producer_epoch >= SHORT_MAX:
            raise IllegalTransitionError("cannot fence a producer whose epoch is Short.MaxValue")
        self._check(TxnState.PREPARE_EPOCH_FENCE)
        self._check(TxnState.PREPARE_ABORT, source=TxnState.PREPARE_EPOCH_FENCE)
        self.pending_state = TxnState.PREPARE_ABORT
        return replace(
            self.image(),
            producer_epoch=self.producer_epoch + 1,
            last_producer_epoch=NO_PRODUCER_EPOCH,
            state=TxnState.PREPARE_ABORT,
            txn_last_update_timestamp=now_ms,
        )

    def prepare_complete(self, now_ms: int) -> TxnTransit:
        target = (
            TxnState.COMPLETE_COMMIT
            if self.state == TxnState.PREPARE_COMMIT
            else TxnState.COMPLETE_ABORT
        )
        return self._prepare(
            replace(
                self.image(),
                state=target,
                partitions=frozenset(),
                txn_last_update_timestamp=now_ms,
            )
        )

    def prepare_dead(self) -> None:
        self._check(TxnState.DEAD)
        self.pending_state = TxnState.DEAD

    def abort_pending(self) -> None:
        """The record of the pending transition could not be written."""
        self.pending_state = None
