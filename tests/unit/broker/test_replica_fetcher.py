"""The replica fetcher drops an answer made for a fetch state that has changed while the
request was in flight (Kafka's AbstractFetcherThread checks the fetch offset and the
fetch state of each partition before it processes the partition's data)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from strom.broker.replica_fetcher import ReplicaFetcher
from strom.common.config import BrokerConfig
from strom.protocol.generated.fetch import FetchRequest, FetchResponse
from tests.unit.replication.helpers import TP, batch, partition, state

TOPIC_ID = bytes(range(16))


class InFlight:
    """A connection whose answer arrives after ``meanwhile`` ran (the request was in
    flight while the broker's state changed); the answer carries ``records`` at the
    offset the request asked for."""

    def __init__(self, meanwhile: Any, records: bytes) -> None:
        self.meanwhile = meanwhile
        self.records = records
        self.requests: list[FetchRequest] = []

    async def send(self, req: FetchRequest) -> FetchResponse:
        self.requests.append(req)
        self.meanwhile()
        data = FetchResponse.PartitionData(
            partition_index=TP.partition, high_watermark=1, records=self.records
        )
        return FetchResponse(
            responses=[FetchResponse.FetchableTopicResponse(TP.topic, TOPIC_ID, [data])]
        )


def _fetcher(tmp_path: Path) -> tuple[ReplicaFetcher, Any]:
    image = SimpleNamespace(topic=lambda name: SimpleNamespace(topic_id=TOPIC_ID))
    broker = SimpleNamespace(
        config=BrokerConfig({}),
        image=image,
        node_id=2,
        cluster=None,
        now_ms=lambda: 1_700_000_000_000,
        replicas=SimpleNamespace(on_high_watermark=lambda tp: None),
    )
    fetcher = ReplicaFetcher(broker, leader_id=1, index=0)  # type: ignore[arg-type]
    part = partition(tmp_path, 2)
    part.make_follower(state(1, 0, (1, 2)))
    fetcher.add(TP, part)
    fetcher.partitions[TP].truncating = False  # truncation done: ready to fetch
    return fetcher, part


def test_an_answer_for_a_replaced_fetch_state_is_dropped(tmp_path: Path) -> None:
    fetcher, part = _fetcher(tmp_path)

    def new_leader_epoch() -> None:  # a LeaderAndIsr arrives while the fetch is in flight
        part.make_follower(state(1, 1, (1, 2)))
        fetcher.add(TP, part)

    conn = InFlight(new_leader_epoch, batch("a"))
    assert asyncio.run(fetcher._fetch(conn))  # type: ignore[arg-type]
    assert conn.requests and part.log.log_end_offset == 0  # nothing appended
    assert fetcher.partitions[TP].truncating  # the new epoch truncates first, as it must


def test_an_answer_for_the_current_fetch_state_is_appended(tmp_path: Path) -> None:
    fetcher, part = _fetcher(tmp_path)
    conn = InFlight(lambda: None, batch("a"))
    assert asyncio.run(fetcher._fetch(conn))  # type: ignore[arg-type]
    assert part.log.log_end_offset == 1
