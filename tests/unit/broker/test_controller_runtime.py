"""The controller's runtime (its job thread) on the ZooKeeper model through the kazoo
store: what happens when a job's ZooKeeper call fails with an unknown outcome, and
when /controller names this broker with no active controller behind it. Both were
found by the simulation (seeds 12627 and 2802)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from strom.broker.controller_runtime import ControllerRuntime
from strom.common.config import BrokerConfig
from strom.common.errors import MetadataUnavailableError
from strom.common.types import TopicPartition
from strom.metadata.zk import controller_store as zcs
from strom.metadata.zk import data as zd
from strom.testing.sim.zk import NONE_SESSION
from tests.unit.controller.harness import NOW, Harness, alter_partition
from tests.unit.metadata.kazoo_fake import FakeSession

T0 = TopicPartition("t", 0)


class FlakySession(FakeSession):
    """Commits reach ZooKeeper, but the answer of the next ``lose_answers`` is lost (the
    connection dropped after the request was sent): the outcome is unknown to the caller."""

    lose_answers = 0

    def commit(self, tx: Any) -> list[Any]:
        results = super().commit(tx)
        if self.lose_answers:
            self.lose_answers -= 1
            raise MetadataUnavailableError("ConnectionLoss, the outcome is unknown")
        return results


class ModelZk:
    """The part of ZkMetadataStore the runtime uses."""

    def __init__(self, session: FakeSession) -> None:
        self.session = session

    def controller_id(self) -> int:
        if self.session.exists(zd.CONTROLLER) is None:
            return -1
        return zd.decode_controller(self.session.get(zd.CONTROLLER)[0])


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    # the channel's sends are queued on it; it never runs
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def _runtime(
    h: Harness, broker_id: int, loop: asyncio.AbstractEventLoop, monkeypatch: Any
) -> tuple[ControllerRuntime, FlakySession]:
    monkeypatch.setattr(zcs.ZkControllerStore, "watch", lambda self, on_event: None)
    session = FlakySession(h.model, h.model.open_session(6000, NOW))
    broker = SimpleNamespace(
        node_id=broker_id, config=BrokerConfig({}), inter_broker_listener_name="PLAINTEXT"
    )
    rt = ControllerRuntime(broker, ModelZk(session))  # type: ignore[arg-type]
    rt._loop = loop
    return rt, session


def _run_jobs(rt: ControllerRuntime, *jobs: Any) -> None:
    """Run jobs on the runtime's job loop (in this thread), as its thread would."""
    for job in jobs:
        rt._jobs.put(job)
    rt._jobs.put(None)
    rt._run()


def _state(h: Harness) -> Any:
    raw, stat = h.model.get(NONE_SESSION, zd.partition_state_path(T0))
    return zd.decode_partition_state(raw, stat.version)


def test_a_write_with_a_lost_answer_makes_the_controller_reload_from_zookeeper(
    loop: asyncio.AbstractEventLoop, monkeypatch: Any
) -> None:
    h = Harness()
    h.create_topic("t", {0: (1, 2, 3)})
    rt, session = _runtime(h, 1, loop, monkeypatch)
    _run_jobs(rt, rt._check_controller)
    assert rt.controller is not None
    before = _state(h)
    answers: list[Any] = []

    def shrink() -> None:
        c = rt.controller
        assert c is not None
        answers.append(
            alter_partition(
                c, 1, T0, [1, 2], before.leader_epoch, before.zk_version, h.broker_epoch(1)
            )
        )

    session.lose_answers = 1
    # the ISR change reaches ZooKeeper but its answer is lost; the leader sends it again
    _run_jobs(rt, shrink, shrink)
    after = _state(h)
    assert after.isr == (1, 2) and after.zk_version == before.zk_version + 1
    (resent,) = answers  # the first one failed with the lost answer
    part = resent.topics[0].partitions[0]
    # answered with the state ZooKeeper has (Kafka's equalsAllowStalePartitionEpoch),
    # not refused by a controller whose memory still holds the old partition epoch
    assert (part.error_code, part.partition_epoch, list(part.isr)) == (0, after.zk_version, [1, 2])
    assert rt.controller is not None and rt.controller.ctx.states[T0].zk_version == after.zk_version


def test_a_controller_znode_of_this_broker_with_no_controller_behind_it_is_freed(
    loop: asyncio.AbstractEventLoop, monkeypatch: Any
) -> None:
    h = Harness()
    rt, session = _runtime(h, 2, loop, monkeypatch)
    # left behind: elected on this session, then resigned (a session loss handled late)
    assert zcs.elect(session, 2) == (1, 1)
    assert rt.controller is None
    _run_jobs(rt, rt._check_controller)
    assert rt.controller is not None and rt.cstore is not None
    assert rt.cstore.epoch == 2  # a new election, not the stale znode
    assert zd.decode_controller(h.model.get(NONE_SESSION, zd.CONTROLLER)[0]) == 2


def test_a_controller_znode_of_another_broker_is_left_alone(
    loop: asyncio.AbstractEventLoop, monkeypatch: Any
) -> None:
    h = Harness()
    rt, _session = _runtime(h, 2, loop, monkeypatch)
    other = FakeSession(h.model, h.model.open_session(6000, NOW))
    assert zcs.elect(other, 3) == (1, 1)
    _run_jobs(rt, rt._check_controller)
    assert rt.controller is None
    assert zd.decode_controller(h.model.get(NONE_SESSION, zd.CONTROLLER)[0]) == 3
