"""A checked workload: idempotent producers of every client library (and
transactional ones when asked) writing into one History, then everything read back
and analysed by the checker. Used by the fault scenarios and ``strom verify``.

    with Workload(bootstrap, topic, 3, txn_clients=["confluent-kafka"]) as load:
        ...  # inject faults; load.history.event("kill broker 1")
    report = load.check()  # stops the producers if they still run
"""

from __future__ import annotations

from collections.abc import Iterable
from types import TracebackType
from typing import Any, Self

from strom.protocol.generated.metadata import MetadataRequest
from strom.testing.checker import DEFAULT_GAP_S, Report, analyse
from strom.testing.history import History
from strom.testing.load import CLIENTS, ProducerLoad
from strom.testing.readback import read_back
from strom.testing.txnload import TxnLoad
from strom.testing.wire import RawClient


class Workload:
    def __init__(
        self,
        bootstrap: str,
        topic: str,
        partitions: int,
        *,
        rate: float = 100.0,
        clients: Iterable[str] = CLIENTS,
        txn_clients: Iterable[str] = (),
        transaction_timeout_ms: int = 10_000,
    ) -> None:
        """``rate``: records per second of each producer."""
        self.bootstrap = bootstrap
        self.topic = topic
        self.partitions = partitions
        self.history = History()
        h = self.history
        self.loads: list[ProducerLoad] = [
            ProducerLoad(bootstrap, topic, c, partitions, rate=rate, history=h) for c in clients
        ]
        for i, c in enumerate(txn_clients):
            suffix = f"-{i}" if i else ""  # a library may be listed twice
            txn = TxnLoad(
                bootstrap,
                topic,
                c,
                partitions,
                rate=rate,
                history=h,
                writer=f"txn-{c}{suffix}",
                transactional_id=f"{topic}-{c}{suffix}",
                transaction_timeout_ms=transaction_timeout_ms,
            )
            self.loads.append(txn)
        self._stopped = False

    def start(self) -> Self:
        for load in self.loads:
            load.start()
        return self

    def stop(self) -> None:
        """Stop producing and wait for every outstanding acknowledgement."""
        if self._stopped:
            return
        self._stopped = True
        ended = self.history.now()  # what follows is flushing, not production
        for load in self.loads:
            load.request_stop()
        for load in self.loads:
            load.stop()
        self.history.production_ended(ended)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def check(self, gap_s: float = DEFAULT_GAP_S, bootstrap: str | None = None) -> Report:
        """Stop, read every partition back (at both isolation levels), analyse."""
        self.stop()
        read_back(self.history, bootstrap or self.bootstrap, self.topic, self.partitions)
        return analyse(self.history, gap_s)

    def errors(self) -> list[str]:
        return [f"{load.writer}: {e}" for load in self.loads for e in load.errors]


def partitions_of(bootstrap: str, topic: str) -> list[Any]:
    """The topic's partitions in a Metadata (v12) answer of the first broker that
    answers (leader_id, leader_epoch, replica_nodes, isr_nodes)."""
    last: Exception | None = None
    for address in bootstrap.split(","):
        try:
            with RawClient(address, timeout_s=5) as c:
                req = MetadataRequest(
                    topics=[MetadataRequest.MetadataRequestTopic(name=topic)],
                    allow_auto_topic_creation=False,
                )
                md = c.request(req, 12)
            return sorted(md.topics[0].partitions, key=lambda p: p.partition_index)
        except (OSError, IndexError) as exc:
            last = exc
    raise RuntimeError(f"no broker of {bootstrap} answered Metadata: {last}")


def controller_of(bootstrap: str) -> int:
    for address in bootstrap.split(","):
        try:
            with RawClient(address, timeout_s=5) as c:
                md = c.request(MetadataRequest(topics=[], allow_auto_topic_creation=False), 12)
            return int(md.controller_id)
        except OSError:
            continue
    return -1
