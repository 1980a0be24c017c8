"""Reassignment (KIP-455), elections on request, auto rebalance, stale controllers."""

from __future__ import annotations

import pytest

from strom.common.errors import ControllerMovedError
from strom.common.types import TopicPartition
from strom.controller.controller import ControllerConfig
from strom.controller.reassign import PREFERRED, UNCLEAN
from strom.metadata.zk import data as zd
from strom.protocol.errors import ErrorCode
from tests.unit.controller.harness import Harness, alter_partition, channel

T0 = TopicPartition("t", 0)
T1 = TopicPartition("t", 1)


def cluster(replicas=None, brokers=(1, 2, 3, 4), config=None):
    h = Harness(brokers)
    h.create_topic("t", replicas or {0: (1, 2, 3)})
    c = h.elect(brokers[0], config)
    channel(c).clear()
    return h, c


def join_isr(h, c, tp, isr):
    st = h.state(tp.topic, tp.partition)
    resp = alter_partition(
        c, st.leader, tp, isr, st.leader_epoch, st.zk_version, h.broker_epoch(st.leader)
    )
    assert resp.topics[0].partitions[0].error_code == 0


# -- reassignment ----------------------------------------------------------------------
def test_reassignment_adds_replicas_then_completes_when_they_are_in_sync():
    h, c = cluster()
    before = h.state("t", 0)
    out = c.alter_reassignments({T0: (1, 2, 4)})
    assert out == {T0: (ErrorCode.NONE, None)}
    # phase 1: the assignment holds old and new replicas; a new leader epoch; 4 learns
    a = h.assignment("t")
    assert a.replicas[0] == (1, 2, 4, 3) and a.adding[0] == (4,) and a.removing[0] == (3,)
    st = h.state("t", 0)
    assert st.leader == 1 and st.leader_epoch == before.leader_epoch + 1
    lai = channel(c).leader_and_isr(4)[T0]
    assert lai.replicas == [1, 2, 4, 3] and lai.adding_replicas == [4]
    assert c.list_reassignments(None)[T0].target == (1, 2, 4)
    # 4 catches up: the leader adds it to the ISR; the reassignment completes
    channel(c).clear()
    join_isr(h, c, T0, [1, 2, 3, 4])
    a = h.assignment("t")
    assert a.replicas[0] == (1, 2, 4) and not a.adding and not a.removing
    st = h.state("t", 0)
    assert st.isr == (1, 2, 4) and st.leader == 1
    assert channel(c).stop_replica(3) == {T0: True}
    assert not c.list_reassignments(None)


def test_reassignment_moves_leadership_into_the_target():
    h, c = cluster()
    c.alter_reassignments({T0: (4, 2)})
    epoch = h.state("t", 0).leader_epoch
    join_isr(h, c, T0, [1, 2, 3, 4])
    st = h.state("t", 0)
    assert st.leader == 4 and st.isr == (2, 4) and st.leader_epoch == epoch + 1
    assert channel(c).stop_replica(1) == {T0: True}
    assert channel(c).stop_replica(3) == {T0: True}
    assert channel(c).leader_and_isr(2)[T0].leader == 4


def test_reassignment_of_replicas_already_in_sync_completes_at_once():
    h, c = cluster()
    c.alter_reassignments({T0: (2, 3)})
    assert h.assignment("t").replicas[0] == (2, 3)
    assert h.state("t", 0).leader == 2


def test_reassignment_cancel_restores_the_original_replicas():
    h, c = cluster()
    c.alter_reassignments({T0: (1, 2, 4)})
    channel(c).clear()
    out = c.alter_reassignments({T0: None})
    assert out[T0] == (ErrorCode.NONE, None)
    assert h.assignment("t").replicas[0] == (1, 2, 3) and not h.assignment("t").adding
    assert channel(c).stop_replica(4) == {T0: True}
    assert c.alter_reassignments({T0: None})[T0][0] == ErrorCode.NO_REASSIGNMENT_IN_PROGRESS


def test_reassignment_refusals():
    h, c = cluster()
    h.stop_broker(4)
    c.on_broker_change()
    assert c.alter_reassignments({T0: (1, 4)})[T0][0] == ErrorCode.INVALID_REPLICA_ASSIGNMENT
    assert c.alter_reassignments({T0: (1, 1)})[T0][0] == ErrorCode.INVALID_REPLICA_ASSIGNMENT
    assert c.alter_reassignments({T0: ()})[T0][0] == ErrorCode.INVALID_REPLICA_ASSIGNMENT
    unknown = TopicPartition("u", 0)
    assert (
        c.alter_reassignments({unknown: (1,)})[unknown][0] == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    )


def test_legacy_reassignment_znode_is_emptied_on_completion():
    h, c = cluster()
    h.model.create(0, zd.REASSIGN_PARTITIONS, zd.encode_reassignment({T0: (1, 2, 4)}))
    c.on_reassignment_znode()
    assert h.assignment("t").adding[0] == (4,)
    assert zd.REASSIGN_PARTITIONS in h.model.nodes
    join_isr(h, c, T0, [1, 2, 3, 4])
    assert zd.REASSIGN_PARTITIONS not in h.model.nodes


def test_reassignment_resumes_after_failover():
    h, c = cluster()
    c.alter_reassignments({T0: (1, 2, 4)})
    h.resign(1)
    c2 = h.elect(2)
    assert c2.list_reassignments(None)[T0].adding == (4,)
    join_isr(h, c2, T0, [1, 2, 3, 4])
    assert h.assignment("t").replicas[0] == (1, 2, 4)


# -- elections on request --------------------------------------------------------------
def test_preferred_election_moves_leadership_back():
    h, c = cluster({0: (1, 2, 3), 1: (2, 3, 1)})
    h.stop_broker(1)
    c.on_broker_change()
    assert h.state("t", 0).leader == 2
    assert c.elect_leaders([T0], PREFERRED)[T0][0] == ErrorCode.PREFERRED_LEADER_NOT_AVAILABLE
    h.start_broker(1)
    c.on_broker_change()
    # back, but not in the ISR yet: not eligible
    assert c.elect_leaders([T0], PREFERRED)[T0][0] == ErrorCode.PREFERRED_LEADER_NOT_AVAILABLE
    join_isr(h, c, T0, [1, 2, 3])
    assert c.elect_leaders([T0], PREFERRED)[T0] == (ErrorCode.NONE, None)
    assert h.state("t", 0).leader == 1
    assert c.elect_leaders([T1], PREFERRED)[T1][0] == ErrorCode.ELECTION_NOT_NEEDED


def test_unclean_election_on_request():
    h, c = cluster({0: (1, 2)})
    join_isr(h, c, T0, [1])
    h.stop_broker(1)
    c.on_broker_change()
    assert h.state("t", 0).leader == -1
    assert c.elect_leaders([T0], UNCLEAN)[T0] == (ErrorCode.NONE, None)
    assert h.state("t", 0).leader == 2 and h.state("t", 0).isr == (2,)
    assert c.elect_leaders([T0], UNCLEAN)[T0][0] == ErrorCode.ELECTION_NOT_NEEDED


def test_legacy_preferred_election_znode():
    h, c = cluster({0: (1, 2, 3)})
    h.stop_broker(1)
    c.on_broker_change()
    h.start_broker(1)
    c.on_broker_change()
    join_isr(h, c, T0, [1, 2, 3])
    h.model.create(0, zd.PREFERRED_ELECTION, zd.encode_partitions(1, [T0]))
    c.on_preferred_election_znode()
    assert h.state("t", 0).leader == 1
    assert zd.PREFERRED_ELECTION not in h.model.nodes


def _imbalanced(config=None):
    h, c = cluster({0: (1, 2), 1: (1, 2), 2: (2, 1)}, brokers=(1, 2, 3), config=config)
    h.stop_broker(1)
    c.on_broker_change()
    h.start_broker(1)
    c.on_broker_change()
    for tp in (T0, T1):
        join_isr(h, c, tp, [1, 2] if h.state("t", tp.partition).leader == 2 else [2, 1])
    return h, c


def test_auto_rebalance_moves_leaders_to_preferred_replicas():
    h, c = _imbalanced()
    assert h.state("t", 0).leader == 2 and h.state("t", 1).leader == 2
    assert c.on_auto_rebalance() == 2
    assert h.state("t", 0).leader == 1 and h.state("t", 1).leader == 1
    assert c.on_auto_rebalance() == 0


def test_auto_rebalance_disabled_or_within_the_imbalance_ratio():
    h, c = _imbalanced(ControllerConfig(auto_leader_rebalance=False))
    assert c.on_auto_rebalance() == 0
    h, c = _imbalanced(ControllerConfig(leader_imbalance_percentage=100))
    assert c.on_auto_rebalance() == 0
    assert h.state("t", 0).leader == 2


# -- a stale controller is fenced ------------------------------------------------------
def test_a_deposed_controller_writes_nothing():
    h, c = cluster({0: (1, 2, 3), 1: (2, 3, 1)})
    # the controller's session expires (a long pause); broker 2 becomes controller;
    # the old one's ZooKeeper client reconnects with a new session (as kazoo does)
    h.resign(1)
    c2 = h.elect(2)
    assert c2.ctx.epoch == c.ctx.epoch + 1
    c.store.session = h.model.open_session(6000, 0)
    # the old controller wakes up and acts on a broker loss: every write is refused
    h.stop_broker(3)
    nodes_before = {p: (n.data, n.version) for p, n in h.model.nodes.items()}
    with pytest.raises(ControllerMovedError):
        c.on_broker_change()
    assert {p: (n.data, n.version) for p, n in h.model.nodes.items()} == nodes_before
    st = h.state("t", 0)
    with pytest.raises(ControllerMovedError):
        alter_partition(c, 1, T0, [1], st.leader_epoch, st.zk_version, h.broker_epoch(1))
    with pytest.raises(ControllerMovedError):
        c.alter_reassignments({T0: (1, 2)})
    with pytest.raises(ControllerMovedError):
        h.create_topic("u", {0: (1, 2)})
        c.on_topic_change()
    assert zd.partition_state_path(TopicPartition("u", 0)) not in h.model.nodes
    # the new controller still works
    c2.on_broker_change()
    assert h.state("t", 1).leader == 2


def test_requests_carry_the_controller_epoch():
    h, _c = cluster()
    h.resign(1)
    c2 = h.elect(2)
    sent = channel(c2).sent
    assert sent and all(s.request.controller_epoch == c2.ctx.epoch for s in sent)


def test_a_new_reassignment_drops_replicas_the_previous_one_was_adding():
    """Found by the simulation (seed 1499): 3,1,2 was being reassigned to 1,3,4 (4 added
    and in sync, 1 not yet) when a new request moved it back to 3,1,2. Broker 4 stayed in
    the ISR although no longer a replica, and was never stopped. Kafka's
    updateCurrentReassignment takes such unneeded replicas out of the ISR and deletes
    them."""
    h, c = cluster({0: (3, 1, 2)})
    c.alter_reassignments({T0: (1, 3, 4)})
    st = h.state("t", 0)
    alter_partition(c, 3, T0, [3, 4], st.leader_epoch, st.zk_version, h.broker_epoch(3))
    assert c.list_reassignments(None)[T0].adding == (4,)  # 1 is not in sync: not done
    channel(c).clear()
    c.alter_reassignments({T0: (3, 1, 2)})
    assert h.state("t", 0).isr == (3,) and h.state("t", 0).leader == 3
    assert h.assignment("t").replicas[0] == (3, 1, 2) and not c.list_reassignments(None)
    assert channel(c).stop_replica(4) == {T0: True}
    assert 4 not in channel(c).leader_and_isr(3)[T0].replicas


def test_a_new_reassignment_moves_leadership_off_an_unneeded_replica():
    h, c = cluster({0: (1, 2)})
    c.alter_reassignments({T0: (3, 4)})
    st = h.state("t", 0)
    alter_partition(c, 1, T0, [1, 2, 3], st.leader_epoch, st.zk_version, h.broker_epoch(1))
    assert c.elect_leaders([T0], PREFERRED)[T0] == (ErrorCode.NONE, None)
    assert h.state("t", 0).leader == 3  # an adding replica leads
    c.alter_reassignments({T0: (1, 2)})
    st = h.state("t", 0)
    assert st.leader == 1 and st.isr == (1, 2)
    assert channel(c).stop_replica(3) == {T0: True}
