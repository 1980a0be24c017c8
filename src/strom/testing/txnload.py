"""Transactional producers for fault tests: one thread writing transactions of
``txn_size`` unique values round robin over the partitions, committing them and, on
purpose, aborting every ``abort_every``-th one; every transaction's outcome goes into
the :class:`~strom.testing.history.History` as the producer knows it.

A failure inside a transaction aborts it (outcome ABORTED when the abort returns);
a failed commit is retried while its error is retriable; a producer that cannot go
on (fenced, or its abort failed) is replaced by a new one with the same
transactional.id, and the transaction it was in is OPEN (never committed) or, when
the commit had been sent, UNKNOWN (the checker then wants all of it or none).
"""

from __future__ import annotations

import functools
import time
from typing import Any

from strom.testing.history import TxnOutcome, Write
from strom.testing.load import ProducerLoad

TXN_CLIENTS = ("confluent-kafka", "kafka-python")
TIMEOUT_S = 30.0
COMMIT_ATTEMPTS = 3


class ProducerGone(Exception):
    """The producer cannot go on; the transaction it was in ended with ``outcome``."""

    def __init__(self, outcome: TxnOutcome) -> None:
        super().__init__(str(outcome))
        self.outcome = outcome


class TxnLoad(ProducerLoad):
    def __init__(
        self,
        bootstrap: str,
        topic: str,
        client: str,
        partitions: int,
        *,
        transactional_id: str,
        txn_size: int = 10,
        abort_every: int = 5,
        transaction_timeout_ms: int = 10_000,
        **kwargs: Any,
    ) -> None:
        if client not in TXN_CLIENTS:
            raise ValueError(f"client must be one of {TXN_CLIENTS}")
        kwargs.setdefault("writer", f"txn-{client}")
        super().__init__(bootstrap, topic, client, partitions, **kwargs)
        self.transactional_id = transactional_id
        self.txn_size = txn_size
        self.abort_every = abort_every
        self.transaction_timeout_ms = transaction_timeout_ms
        self.producers = 0  # how many producers this load created (fencings and failures)

    def _run(self) -> None:
        started, n, k = time.monotonic(), 0, 0
        p: Any = None
        while not self._stop.is_set():
            if p is None:
                p = self._new_producer()
                if p is None:
                    continue
            txn = f"{self.writer}#{k}"
            k += 1
            self.history.begin(txn)
            try:
                outcome = self._transaction(p, txn, n, abort=k % self.abort_every == 0)
            except ProducerGone as gone:
                outcome = gone.outcome
                self._close(p)
                p = None
            self.history.ended(txn, outcome)
            n += self.txn_size
            self._pace(started, n)
        self.sent = n
        if p is not None:
            self._close(p)

    def _new_producer(self) -> Any:
        """A producer that has initialised its transactions (None when it could not)."""
        self.producers += 1
        try:
            if self.client == "confluent-kafka":
                return self._confluent()
            return self._kafka_python()
        except Exception as exc:  # the cluster may be down for a while: try again
            self.errors.append(f"init_transactions: {exc}")
            self._stop.wait(1.0)
            return None

    def _transaction(self, p: Any, txn: str, n: int, abort: bool) -> TxnOutcome:
        committing = False
        try:
            self._call(p, "begin_transaction")
            for i in range(self.txn_size):
                self._produce(p, self._send(n + i, txn))
            if abort:
                self._call(p, "abort_transaction")
                return TxnOutcome.ABORTED
            committing = True
            self._commit(p)
            return TxnOutcome.COMMITTED
        except Exception as exc:
            self.errors.append(f"{txn}: {exc}")
            if self._fatal(exc):
                raise ProducerGone(self._unfinished(committing)) from exc
            try:
                self._call(p, "abort_transaction")
            except Exception as abort_exc:
                raise ProducerGone(self._unfinished(committing)) from abort_exc
            return TxnOutcome.ABORTED

    @staticmethod
    def _unfinished(committing: bool) -> TxnOutcome:
        return TxnOutcome.UNKNOWN if committing else TxnOutcome.OPEN

    def _commit(self, p: Any) -> None:
        for attempt in range(COMMIT_ATTEMPTS):
            try:
                self._call(p, "commit_transaction")
                return
            except Exception as exc:
                if not self._retriable(exc) or attempt == COMMIT_ATTEMPTS - 1:
                    raise

    # -- the client libraries -------------------------------------------------------------
    def _confluent(self) -> Any:
        from confluent_kafka import Producer

        p = Producer(
            {
                "bootstrap.servers": self.bootstrap,
                "transactional.id": self.transactional_id,
                "transaction.timeout.ms": self.transaction_timeout_ms,
                "message.timeout.ms": self.transaction_timeout_ms,
                "linger.ms": 5,
            }
        )
        p.init_transactions(TIMEOUT_S)
        return p

    def _kafka_python(self) -> Any:
        from kafka import KafkaProducer

        p = KafkaProducer(
            bootstrap_servers=self.bootstrap,
            transactional_id=self.transactional_id,
            transaction_timeout_ms=self.transaction_timeout_ms,
            enable_idempotence=True,
            acks="all",
            linger_ms=5,
            max_block_ms=int(TIMEOUT_S * 1000),
        )
        p.init_transactions()
        return p

    def _call(self, p: Any, method: str) -> None:
        if self.client == "confluent-kafka" and method != "begin_transaction":
            getattr(p, method)(TIMEOUT_S)
        else:
            getattr(p, method)()

    def _produce(self, p: Any, w: Write) -> None:
        if self.client == "kafka-python":
            fut = p.send(self.topic, w.value, self.key, partition=w.partition)
            fut.add_callback(lambda md, w=w: self._ack(w, md.offset))
            fut.add_errback(lambda exc, w=w: self._fail(w, exc))
            return
        while True:
            try:
                on_delivery = functools.partial(self._confluent_done, w)
                p.produce(
                    self.topic, w.value, self.key, partition=w.partition, on_delivery=on_delivery
                )
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)

    def _confluent_done(self, w: Write, err: Any, msg: Any) -> None:
        if err is not None:
            self._fail(w, err)
        else:
            self._ack(w, msg.offset())

    def _fatal(self, exc: Exception) -> bool:
        if self.client == "confluent-kafka":
            err = exc.args[0] if exc.args else None
            return bool(getattr(err, "fatal", lambda: True)())
        from kafka.errors import ProducerFencedError

        return isinstance(exc, ProducerFencedError)

    def _retriable(self, exc: Exception) -> bool:
        if self.client == "confluent-kafka":
            err = exc.args[0] if exc.args else None
            return bool(getattr(err, "retriable", lambda: False)())
        return bool(getattr(exc, "retriable", False))

    def _close(self, p: Any) -> None:
        try:
            if self.client == "confluent-kafka":
                p.flush(5)
            else:
                p.close(timeout=5)
        except Exception as exc:
            self.errors.append(f"close: {exc}")
