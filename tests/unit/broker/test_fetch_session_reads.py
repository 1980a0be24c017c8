"""Incremental fetches on a real (in-process) broker: the shortcut that leaves a consumer's
unchanged session partitions unread answers exactly what reading them would.

The same seeded scenario (appends, high watermark and log start moves, offsets the
consumer moves on, partitions forgotten and added back, a deleted topic) runs twice,
with and without the shortcut; every answer must be the same."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import pytest

from strom.broker import fetch as fetch_module
from strom.broker.broker import Broker
from strom.common.config import BrokerConfig
from strom.common.types import FakeClock, TopicPartition
from strom.mypyc_build import is_compiled
from strom.protocol.frame import RequestHeader
from strom.protocol.generated.create_topics import CreateTopicsRequest
from strom.protocol.generated.fetch import FetchRequest
from strom.protocol.records import build_batch
from strom.testing.inprocess import open_broker

PARTITIONS = 6


def _broker(path: Path) -> Broker:
    config = BrokerConfig({"listeners": "PLAINTEXT://127.0.0.1:9092", "log.dirs": str(path)})
    broker = open_broker(config, FakeClock(1_700_000_000_000))
    broker.fetch_sessions._random = random.Random(7)
    return broker


async def _create(broker: Broker, name: str) -> None:
    topic = CreateTopicsRequest.CreatableTopic(
        name=name, num_partitions=PARTITIONS, replication_factor=1
    )
    header = RequestHeader(19, 7, 1, "test")
    await broker.handle(header, CreateTopicsRequest(topics=[topic], timeout_ms=1000))
    for _ in range(100):
        if sum(tp.topic == name for tp in broker.replicas.partitions) == PARTITIONS:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("topic not created")


async def _fetch(broker: Broker, req: FetchRequest, version: int = 12) -> Any:
    return await broker.handle(RequestHeader(1, version, 1, "test"), req)


def _summary(resp: Any) -> list[tuple[Any, ...]]:
    return [
        (
            p.partition_index,
            p.error_code,
            p.high_watermark,
            p.last_stable_offset,
            p.log_start_offset,
            bytes(p.records or b""),
        )
        for t in resp.responses
        for p in t.partitions
    ] + [("error", resp.error_code)]


async def _scenario(broker: Broker, seed: int, isolation: int) -> list[list[tuple[Any, ...]]]:
    rng = random.Random(seed)
    await _create(broker, "t")
    now = broker.now_ms()
    positions = [0] * PARTITIONS
    answers = []

    def part(p: int) -> FetchRequest.FetchPartition:
        return FetchRequest.FetchPartition(
            partition=p, fetch_offset=positions[p], partition_max_bytes=10_000
        )

    full = FetchRequest(
        session_id=0,
        session_epoch=0,
        isolation_level=isolation,
        topics=[
            FetchRequest.FetchTopic(topic="t", partitions=[part(p) for p in range(PARTITIONS)])
        ],
    )
    resp = await _fetch(broker, full)
    answers.append(_summary(resp))
    session_id, epoch = resp.session_id, 1
    in_session = set(range(PARTITIONS))
    for step in range(60):
        action = rng.random()
        tp = TopicPartition("t", rng.randrange(PARTITIONS))
        changed: list[int] = []
        forget: list[int] = []
        if action < 0.4:
            batch = build_batch([(None, b"v%d" % step, (), now)])
            broker.replicas.append(tp, batch, 1, now)
        elif action < 0.5:
            log = broker.replicas.partitions[tp].log
            log.delete_records_before(min(log.high_watermark, log.log_start_offset + 1), now)
        elif action < 0.75:
            p = tp.partition  # the consumer read up to the end: its position moves
            positions[p] = broker.replicas.partitions[tp].log.high_watermark
            changed.append(p)
        elif action < 0.85 and len(in_session) > 1:
            forget.append(tp.partition)
            in_session.discard(tp.partition)
        else:
            if tp.partition not in in_session:
                in_session.add(tp.partition)
                changed.append(tp.partition)
        # a position behind the log start is out of range: the consumer resets it
        for p in range(PARTITIONS):
            start = broker.replicas.partitions[TopicPartition("t", p)].log.log_start_offset
            if positions[p] < start:
                positions[p] = start
                if p in in_session and p not in changed:
                    changed.append(p)
        req = FetchRequest(
            session_id=session_id,
            session_epoch=epoch,
            isolation_level=isolation,
            topics=[FetchRequest.FetchTopic(topic="t", partitions=[part(p) for p in changed])]
            if changed
            else [],
            forgotten_topics_data=[FetchRequest.ForgottenTopic("t", bytes(16), forget)]
            if forget
            else [],
        )
        resp = await _fetch(broker, req)
        assert resp.error_code == 0 and resp.session_id == session_id
        epoch += 1
        answers.append(_summary(resp))
    broker.stop_replicas("t", delete=True)  # the topic goes away under the session
    resp = await _fetch(broker, FetchRequest(session_id=session_id, session_epoch=epoch))
    answers.append(_summary(resp))
    return answers


@pytest.mark.skipif(
    is_compiled("strom.broker.fetch"),
    reason="patches strom.broker.fetch._unchanged, which the compiled module calls directly",
)
@pytest.mark.parametrize("isolation", [0, 1])
@pytest.mark.parametrize("seed", range(4))
def test_the_shortcut_answers_what_reading_would(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int, isolation: int
) -> None:
    async def run(path: Path) -> list[list[tuple[Any, ...]]]:
        broker = _broker(path)
        try:
            return await _scenario(broker, seed, isolation)
        finally:
            broker.shutdown()

    original = fetch_module._unchanged
    taken: list[bool] = []

    def counted(*args: Any) -> bool:
        result = original(*args)
        taken.append(result)
        return result

    monkeypatch.setattr(fetch_module, "_unchanged", counted)
    shortcut = asyncio.run(run(tmp_path / "shortcut"))
    assert any(taken) and not all(taken)  # both ways were taken
    monkeypatch.setattr(fetch_module, "_unchanged", lambda *args: False)
    read = asyncio.run(run(tmp_path / "read"))
    assert shortcut == read
