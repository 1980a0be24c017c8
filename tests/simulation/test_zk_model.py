"""The ZooKeeper model the controller tests and the simulation stand on."""

from __future__ import annotations

import pytest

from strom.testing.sim import zk
from strom.testing.sim.zk import Check, Create, Delete, SetData, WatchedEvent, ZkModel


@pytest.fixture
def model() -> ZkModel:
    m = ZkModel()
    m.ensure_path(zk.NONE_SESSION, "/a")
    return m


def test_versions_and_conditional_writes(model: ZkModel) -> None:
    s = model.open_session(1000, 0)
    model.create(s, "/a/x", b"1")
    assert model.get(s, "/a/x")[1].version == 0
    assert model.set(s, "/a/x", b"2", 0).version == 1
    with pytest.raises(zk.BadVersion):
        model.set(s, "/a/x", b"3", 0)
    with pytest.raises(zk.BadVersion):
        model.delete(s, "/a/x", 0)
    with pytest.raises(zk.NodeExists):
        model.create(s, "/a/x")
    with pytest.raises(zk.NoNode):
        model.create(s, "/b/x")
    with pytest.raises(zk.NotEmpty):
        model.delete(s, "/a")
    model.delete(s, "/a/x", 1)
    assert model.exists(s, "/a/x") is None


def test_czxid_grows_and_sequential_names(model: ZkModel) -> None:
    s = model.open_session(1000, 0)
    first = model.create(s, "/a/n-", sequential=True)
    second = model.create(s, "/a/n-", sequential=True)
    assert (first, second) == ("/a/n-0000000000", "/a/n-0000000001")
    assert model.get(s, second)[1].czxid > model.get(s, first)[1].czxid
    model.create(s, "/p/q/r", makepath=True)
    assert model.children(s, "/p/q") == ["r"]


def test_ephemerals_go_with_their_session(model: ZkModel) -> None:
    s = model.open_session(1000, 0)
    model.create(s, "/a/e", ephemeral=True)
    with pytest.raises(zk.NoChildrenForEphemerals):
        model.create(s, "/a/e/child")
    model.touch(s, 900)
    assert model.expire_sessions(1900) == []
    assert model.expire_sessions(1901) == [s]
    assert model.exists(zk.NONE_SESSION, "/a/e") is None
    with pytest.raises(zk.SessionExpired):
        model.get(s, "/a")
    assert not model.touch(s, 2000)


def test_watches_are_one_shot_and_per_session(model: ZkModel) -> None:
    s1, s2 = model.open_session(1000, 0), model.open_session(1000, 0)
    model.children(s1, "/a", watch=True)
    model.exists(s2, "/a/x", watch=True)
    model.create(zk.NONE_SESSION, "/a/x")
    assert model.take_events(s1) == [WatchedEvent("child", "/a")]
    assert model.take_events(s2) == [WatchedEvent("created", "/a/x")]
    model.create(zk.NONE_SESSION, "/a/y")
    assert model.take_events(s1) == []  # fired once: must be set again
    model.get(s1, "/a/x", watch=True)
    model.set(zk.NONE_SESSION, "/a/x", b"v")
    model.set(zk.NONE_SESSION, "/a/x", b"w")
    assert model.take_events(s1) == [WatchedEvent("changed", "/a/x")]
    model.get(s2, "/a/x", watch=True)
    model.close_session(s2)  # an expired session's watches are gone
    model.delete(zk.NONE_SESSION, "/a/x")
    assert model.sessions_with_events() == []


def test_multi_is_all_or_nothing(model: ZkModel) -> None:
    s = model.open_session(1000, 0)
    model.create(s, "/a/v", b"0")
    model.children(s, "/a", watch=True)
    ops = [Check("/a/v", 0), Create("/a/new"), SetData("/a/v", b"1", 5), Delete("/a/v")]
    results = model.multi(s, ops)
    assert isinstance(results[0], zk.RolledBack) and isinstance(results[1], zk.RolledBack)
    assert isinstance(results[2], zk.BadVersion)
    assert isinstance(results[3], zk.RuntimeInconsistency)
    assert model.exists(s, "/a/new") is None and model.get(s, "/a/v") == (
        b"0",
        model.get(s, "/a/v")[1],
    )
    assert model.take_events(s) == []  # nothing happened: no watch fired
    zxid = model.zxid
    ok = model.multi(s, [Check("/a/v", 0), Create("/a/new"), SetData("/a/v", b"1", 0)])
    assert ok[0] is None and ok[1] == "/a/new" and ok[2].version == 1
    assert model.zxid == zxid + 2
    assert model.take_events(s) == [WatchedEvent("child", "/a")]
