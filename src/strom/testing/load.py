"""Background producers for fault tests: one thread per client library, each writing
unique values with acks=all and idempotence, and remembering every acknowledgement.

``ProducerLoad(bootstrap, topic, "confluent-kafka")`` writes ``<writer>:<n>`` values
(key: the writer, by default the client's name) round robin over the partitions, at
most ``rate`` records per second, until :meth:`stop`; ``acked`` then holds every
acknowledged record with its partition and offset, ``errors`` every record that
failed for good, and ``history`` (shared between loads when given) every write with
the time of its acknowledgement or failure, for :func:`strom.testing.checker.analyse`.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from typing import Any, Self

from strom.testing.history import History, Write, writer_value
from strom.testing.records import Rec

CLIENTS = ("confluent-kafka", "kafka-python", "aiokafka")
FLUSH_S = 120.0


class ProducerLoad:
    def __init__(
        self,
        bootstrap: str,
        topic: str,
        client: str,
        partitions: int,
        *,
        rate: float = 200.0,
        history: History | None = None,
        writer: str | None = None,
    ) -> None:
        if client not in CLIENTS:
            raise ValueError(f"client must be one of {CLIENTS}")
        self.bootstrap = bootstrap
        self.topic = topic
        self.client = client
        self.partitions = partitions
        self.rate = rate
        self.history = history if history is not None else History()
        self.writer = writer or client
        self.key = self.writer.encode()
        self.acked: list[Rec] = []
        self.errors: list[str] = []
        self.sent = 0
        self._stop = threading.Event()
        self._held = threading.Event()
        self._held_s = 0.0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"load-{client}", daemon=True)

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop sending, wait for every outstanding acknowledgement (or failure)."""
        self.request_stop()
        self._thread.join(FLUSH_S + 30)
        if self._thread.is_alive():
            raise AssertionError(f"{self.client} producer did not finish flushing")

    def request_stop(self) -> None:
        """Stop sending new records (:meth:`stop` also waits for the outstanding ones)."""
        self._stop.set()

    def _send(self, n: int, txn: str | None = None) -> Write:
        value = writer_value(self.writer, n)
        return self.history.sent(self.writer, n % self.partitions, value, txn)

    def _ack(self, w: Write, offset: int) -> None:
        self.history.acked(w, offset)
        with self._lock:
            self.acked.append(Rec(w.partition, offset, self.key, w.value))

    def _fail(self, w: Write, error: object) -> None:
        self.history.failed(w, str(error))
        with self._lock:
            self.errors.append(f"{w.value!r}: {error}")

    def hold(self) -> None:
        """Send nothing until :meth:`release` (the producer stays open, idle)."""
        self._held.set()

    def release(self) -> None:
        self._held.clear()

    def _ahead(self, started: float, n: int) -> float:
        """Seconds until record ``n`` is due (time held does not count)."""
        return n / self.rate - (time.monotonic() - started - self._held_s)

    def _pace(self, started: float, n: int) -> None:
        if self._held.is_set():
            since = time.monotonic()
            while self._held.is_set() and not self._stop.is_set():
                self._stop.wait(0.05)
            self._held_s += time.monotonic() - since
        ahead = self._ahead(started, n)
        if ahead > 0:
            self._stop.wait(ahead)

    def _run(self) -> None:
        if self.client == "confluent-kafka":
            self._run_confluent()
        elif self.client == "kafka-python":
            self._run_kafka_python()
        else:
            asyncio.run(self._run_aiokafka())

    def _run_confluent(self) -> None:
        from confluent_kafka import Producer

        p = Producer(
            {
                "bootstrap.servers": self.bootstrap,
                "acks": "all",
                "enable.idempotence": True,
                "linger.ms": 5,
                "message.timeout.ms": int(FLUSH_S * 1000),
            }
        )

        def done(w: Write, err: Any, msg: Any) -> None:
            if err is not None:
                self._fail(w, err)
            else:
                self._ack(w, msg.offset())

        started, n = time.monotonic(), 0
        while not self._stop.is_set():
            w = self._send(n)
            while True:
                try:
                    p.produce(
                        self.topic,
                        w.value,
                        self.key,
                        partition=w.partition,
                        on_delivery=functools.partial(done, w),
                    )
                    break
                except BufferError:
                    p.poll(0.05)
            n += 1
            p.poll(0)
            self._pace(started, n)
        self.sent = n
        p.flush(FLUSH_S)

    def _run_kafka_python(self) -> None:
        from kafka import KafkaProducer

        p = KafkaProducer(
            bootstrap_servers=self.bootstrap,
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
            retries=2**31 - 1,
            request_timeout_ms=30000,
            delivery_timeout_ms=int(FLUSH_S * 1000),
        )
        started, n = time.monotonic(), 0
        while not self._stop.is_set():
            w = self._send(n)
            fut = p.send(self.topic, w.value, self.key, partition=w.partition)
            fut.add_callback(lambda md, w=w: self._ack(w, md.offset))
            fut.add_errback(lambda exc, w=w: self._fail(w, exc))
            n += 1
            self._pace(started, n)
        self.sent = n
        p.flush(FLUSH_S)
        p.close(timeout=10)

    async def _run_aiokafka(self) -> None:
        from aiokafka import AIOKafkaProducer

        p = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
            request_timeout_ms=30000,
        )
        await p.start()
        pending: list[Any] = []

        def settle(fut: Any, w: Write) -> None:
            if fut.cancelled() or fut.exception() is not None:
                self._fail(w, fut.exception() if not fut.cancelled() else "cancelled")
            else:
                self._ack(w, fut.result().offset)

        started, n = time.monotonic(), 0
        try:
            while not self._stop.is_set():
                w = self._send(n)
                fut = await p.send(self.topic, w.value, self.key, partition=w.partition)
                fut.add_done_callback(lambda f, w=w: settle(f, w))
                pending.append(fut)
                n += 1
                since = time.monotonic()
                while self._held.is_set() and not self._stop.is_set():
                    await asyncio.sleep(0.05)
                self._held_s += time.monotonic() - since
                await asyncio.sleep(max(self._ahead(started, n), 0))
            self.sent = n
            await asyncio.wait_for(p.flush(), FLUSH_S)
        finally:
            await p.stop()
