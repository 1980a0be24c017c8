"""ZkConfigs writes a config znode the way KafkaZkClient.setOrCreateEntityConfigs does:
set, else create, else set again when another writer created it in between (two brokers
creating __consumer_offsets for their first FindCoordinator at once: that second
writer's NodeExistsError was answered UNKNOWN_SERVER_ERROR)."""

from __future__ import annotations

from typing import Any

from strom.metadata.store import TOPICS
from strom.metadata.zk import data as zd
from strom.metadata.zk.config_store import ZkConfigs
from strom.testing.sim import zk
from tests.unit.metadata.kazoo_fake import FakeSession


class RacedSession(FakeSession):
    """Another session creates ``path`` (with its own data) just before this one does."""

    def __init__(self, model: zk.ZkModel, session_id: int, path: str, other: FakeSession):
        super().__init__(model, session_id)
        self.path, self.other, self.creates = path, other, 0

    def create(self, path: str, value: bytes = b"", **kwargs: Any) -> str:
        if path == self.path:
            self.creates += 1
            self.other.create(path, zd.encode_config({"other": "writer"}), makepath=True)
        return super().create(path, value, **kwargs)


def configs_on(session: FakeSession) -> ZkConfigs:
    return ZkConfigs(session, submit=lambda fn: fn(), refresh_user=lambda user: None)


def test_a_topic_config_created_by_another_broker_in_between_is_overwritten() -> None:
    model = zk.ZkModel()
    path = zd.config_path(TOPICS, "__consumer_offsets")
    other = FakeSession(model, model.open_session(6000, 0))
    session = RacedSession(model, model.open_session(6000, 0), path, other)
    configs = configs_on(session)
    configs.create_topic_configs("__consumer_offsets", {"cleanup.policy": "compact"})
    assert session.creates == 1  # the race happened
    assert zd.decode_config(session.get(path)[0]) == {"cleanup.policy": "compact"}
    assert configs.topic_configs("__consumer_offsets") == {"cleanup.policy": "compact"}


def test_a_config_is_set_when_it_exists_and_created_when_it_does_not() -> None:
    model = zk.ZkModel()
    session = FakeSession(model, model.open_session(6000, 0))
    configs = configs_on(session)
    path = zd.config_path(TOPICS, "t")
    configs.create_topic_configs("t", {"retention.ms": "1"})
    assert zd.decode_config(session.get(path)[0]) == {"retention.ms": "1"}
    configs.create_topic_configs("t", {"retention.ms": "2"})
    assert zd.decode_config(session.get(path)[0]) == {"retention.ms": "2"}
