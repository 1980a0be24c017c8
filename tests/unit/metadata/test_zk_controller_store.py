"""strom.metadata.zk.controller_store (the kazoo store) on the ZooKeeper model: the
election multi, fenced writes, and the controller's scenarios through it."""

from __future__ import annotations

import pytest

from strom.common.errors import ControllerMovedError
from strom.common.types import TopicPartition
from strom.metadata.image import LeaderAndIsr
from strom.metadata.zk import controller_store as zcs
from strom.metadata.zk import data as zd
from strom.protocol.generated.leader_and_isr import LeaderAndIsrRequest
from tests.unit.controller.harness import Harness, alter_partition, channel
from tests.unit.metadata.kazoo_fake import FakeKazooClient, FakeSession

T0 = TopicPartition("t", 0)


def kazoo_harness(brokers=(1, 2, 3)) -> Harness:
    h = Harness(brokers)

    def store(model, sid, broker_id):
        elected = zcs.elect(FakeSession(model, sid), broker_id)
        assert elected is not None
        return zcs.ZkControllerStore(FakeSession(model, sid), *elected)

    h.store_factory = store
    return h


def test_election_increments_the_epoch_and_only_one_wins():
    h = Harness()
    s1 = FakeSession(h.model, h.model.open_session(6000, 0))
    s2 = FakeSession(h.model, h.model.open_session(6000, 0))
    assert zcs.elect(s1, 1) == (1, 1)
    assert zcs.elect(s2, 2) is None
    assert zd.decode_controller(h.model.nodes[zd.CONTROLLER].data) == 1
    h.model.close_session(s1.session_id)  # the ephemeral /controller goes
    assert zcs.elect(s2, 2) == (2, 2)
    assert h.model.nodes[zd.CONTROLLER].ephemeral_owner == s2.session_id


def test_failover_and_broker_loss_through_kazoo_store():
    h = kazoo_harness()
    h.create_topic("t", {0: (1, 2, 3), 1: (2, 3, 1)})
    c = h.elect(1)
    assert h.state("t", 0) == LeaderAndIsr(1, 0, (1, 2, 3), 1, 0)
    h.stop_broker(2)
    c.on_broker_change()
    assert h.state("t", 1).leader == 3 and h.state("t", 0).isr == (1, 3)
    st = h.state("t", 0)
    resp = alter_partition(c, 1, T0, [1], st.leader_epoch, st.zk_version, h.broker_epoch(1))
    assert resp.topics[0].partitions[0].partition_epoch == st.zk_version + 1


def test_deposed_controller_is_fenced_by_the_kazoo_store():
    h = kazoo_harness()
    h.create_topic("t", {0: (1, 2, 3)})
    c = h.elect(1)
    h.resign(1)
    h.elect(2)
    c.store.session.session_id = h.model.open_session(6000, 0)  # kazoo reconnected
    before = {p: (n.data, n.version) for p, n in h.model.nodes.items()}
    with pytest.raises(ControllerMovedError):
        c.store.update_partition_states(
            {T0: LeaderAndIsr(3, 9, (3,), 1, h.state("t", 0).zk_version)}
        )
    with pytest.raises(ControllerMovedError):
        c.store.delete_topic("t")
    assert {p: (n.data, n.version) for p, n in h.model.nodes.items()} == before


def test_stale_partition_version_is_reported_per_partition():
    h = kazoo_harness()
    h.create_topic("t", {0: (1, 2, 3)})
    c = h.elect(1)
    stale = LeaderAndIsr(2, 5, (2,), 1, 99)
    assert c.store.update_partition_states({T0: stale}) == {T0: None}
    assert c.store.create_partition_states({T0: stale}) == {}
    h.model.create(0, zd.REASSIGN_PARTITIONS, zd.encode_reassignment({T0: (1, 2)}))
    c.store.set_reassignment_request({})
    assert zd.REASSIGN_PARTITIONS not in h.model.nodes


def test_topic_deletion_removes_the_whole_subtree():
    h = kazoo_harness()
    h.create_topic("t", {0: (1, 2, 3)})
    c = h.elect(1)
    h.model.create(0, f"{zd.DELETE_TOPICS}/t")
    c.store.delete_topic("t")
    assert not [p for p in h.model.nodes if "/t" in p and p.endswith(("/t", "state"))]
    assert h.model.children(0, zd.DELETE_TOPICS) == []


def watched_harness() -> tuple[Harness, dict[int, FakeKazooClient]]:
    """Controllers whose stores watch through kazoo's own ChildrenWatch and DataWatch."""
    h = Harness()
    clients: dict[int, FakeKazooClient] = {}

    def store(model, sid, broker_id):
        session = FakeSession(model, sid)
        session.client = clients[broker_id] = FakeKazooClient(model, sid)
        elected = zcs.elect(session, broker_id)
        assert elected is not None
        return zcs.ZkControllerStore(session, *elected)

    h.store_factory = store
    return h, clients


def test_a_broker_that_registered_again_while_the_controller_was_disconnected_is_seen():
    """kazoo re-arms the watches after a connection loss by reading again, and its
    ChildrenWatch calls back only when the children differ: a broker whose session
    expired and who registered again meanwhile has the same id, a new broker epoch.
    Kafka's ZooKeeper client gets a BrokerChange for it (SetWatches); so does the store,
    and the controller treats the broker as bounced: requests carry its new epoch."""
    h, clients = watched_harness()
    h.create_topic("t", {0: (1, 2, 3)})
    c = h.elect(2)
    client = clients[2]
    events: list[str] = []

    def on_event(name: str, _arg: str | None) -> None:
        events.append(name)
        if name == zcs.BROKER_CHANGE:
            c.on_broker_change()

    c.store.watch(on_event)
    h.stop_broker(3)  # a change while connected: the watch works
    client.deliver()
    assert zcs.BROKER_CHANGE in events and not c.ctx.is_live(3)
    old_epoch = c.ctx.broker_epoch(1)
    events.clear()
    channel(c).clear()

    client.suspend()
    h.stop_broker(1)  # its session expires
    new_epoch = h.start_broker(1)  # and it registers again
    client.reconnect()
    client.deliver()
    assert new_epoch != old_epoch
    assert events == [zcs.BROKER_CHANGE]
    assert c.ctx.broker_epoch(1) == new_epoch
    sent = channel(c).of(LeaderAndIsrRequest, 1)
    assert sent and all(s.request.broker_epoch == new_epoch for s in sent)
    assert T0 in channel(c).leader_and_isr(1)

    c.store.close()  # a controller that resigned hears nothing more
    client.suspend()
    client.reconnect()
    assert events == [zcs.BROKER_CHANGE]
