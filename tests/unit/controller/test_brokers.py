"""Failover, broker loss and return, unclean elections, controlled shutdown."""

from __future__ import annotations

from strom.common.types import TopicPartition
from strom.controller.controller import ControllerConfig
from strom.protocol.errors import ErrorCode
from strom.protocol.generated.leader_and_isr import LeaderAndIsrRequest
from strom.protocol.generated.update_metadata import UpdateMetadataRequest
from tests.unit.controller.harness import Harness, channel

T0 = TopicPartition("t", 0)
T1 = TopicPartition("t", 1)


def started(brokers=(1, 2, 3), topic=None, configs=None):
    h = Harness(brokers)
    h.create_topic("t", topic or {0: (1, 2, 3), 1: (2, 3, 1)}, configs)
    c = h.elect(1)
    c.on_topic_change()
    channel(c).clear()
    return h, c


# -- failover --------------------------------------------------------------------------
def test_failover_initialises_new_partitions_and_tells_every_broker():
    h = Harness()
    h.create_topic("t", {0: (1, 2, 3), 1: (2, 3, 1)})
    c = h.elect(1)
    assert h.state("t", 0).leader == 1 and h.state("t", 0).isr == (1, 2, 3)
    assert h.state("t", 1).leader == 2 and h.state("t", 1).leader_epoch == 0
    ch = channel(c)
    assert set(ch.brokers) == {1, 2, 3}
    for b in (1, 2, 3):
        lai = ch.leader_and_isr(b)
        assert set(lai) == {T0, T1} and lai[T0].is_new
        # a full UpdateMetadata: every partition and every live broker
        um = ch.of(UpdateMetadataRequest, b)
        assert um and {x.id for x in um[0].request.live_brokers} == {1, 2, 3}
        assert set(ch.update_metadata(b)) == {T0, T1}
        assert um[0].request.broker_epoch == h.broker_epoch(b)
    lai1 = ch.of(LeaderAndIsrRequest, 1)[0].request
    assert lai1.controller_epoch == c.ctx.epoch == 1
    assert lai1.broker_epoch == h.broker_epoch(1)


def test_failover_loads_states_elects_offline_and_cleans_isrs():
    h = Harness((1, 2, 3, 4))
    h.create_topic("t", {0: (1, 2, 3), 1: (2, 3, 1), 2: (4, 1, 2)})
    first = h.elect(4)
    first.on_topic_change()
    assert h.state("t", 2).leader == 4
    # the controller and broker 2 die together; broker 1 takes over
    h.resign(4)
    h.stop_broker(4)
    h.stop_broker(2)
    c = h.elect(1)
    assert c.ctx.epoch == 2
    # states loaded: t-0 untouched leader but broker 2 leaves its ISR
    s0 = h.state("t", 0)
    assert s0.leader == 1 and s0.isr == (1, 3) and s0.leader_epoch == 1
    # t-1 (led by dead 2) and t-2 (led by dead 4) get new leaders from their ISR
    s1, s2 = h.state("t", 1), h.state("t", 2)
    assert s1.leader == 3 and s1.isr == (3, 1) and s1.leader_epoch == 1
    assert s2.leader == 1 and s2.isr == (1,) and s2.leader_epoch == 1
    assert s2.controller_epoch == 2
    ch = channel(c)
    assert set(ch.brokers) == {1, 3}
    # LeaderAndIsr for every partition to every live replica, with the new states
    lai3 = ch.leader_and_isr(3)
    assert set(lai3) == {T0, T1}
    assert lai3[T1].leader == 3 and lai3[T1].leader_epoch == 1
    assert ch.leader_and_isr(1)[TopicPartition("t", 2)].leader == 1
    assert not ch.leader_and_isr(2) and not ch.leader_and_isr(4)
    um = ch.update_metadata(3)
    assert um[TopicPartition("t", 2)].offline_replicas == [4, 2]


# -- broker loss -----------------------------------------------------------------------
def test_broker_loss_moves_leadership_with_a_new_epoch_and_shrinks_isrs():
    h, c = started()
    before = h.state("t", 0)
    h.stop_broker(2)
    c.on_broker_change()
    s0, s1 = h.state("t", 0), h.state("t", 1)
    # t-0 keeps its leader: only the ISR shrinks (leader epoch bumped by the change)
    assert s0.leader == 1 and s0.isr == (1, 3)
    assert s0.zk_version > before.zk_version
    # t-1 was led by 2: the next replica of its ISR in assignment order leads
    assert s1.leader == 3 and s1.isr == (3, 1) and s1.leader_epoch == 1
    ch = channel(c)
    assert ch.leader_and_isr(3)[T1].leader == 3
    assert ch.leader_and_isr(1)[T1].leader_epoch == 1
    assert 2 not in ch.brokers
    assert all(s.broker_id != 2 for s in ch.sent)


def test_last_isr_member_lost_leaves_partition_offline_keeping_it_then_it_returns():
    h, c = started(topic={0: (1, 2)})
    h.stop_broker(2)
    c.on_broker_change()
    assert h.state("t", 0).isr == (1,)
    epoch = h.state("t", 0).leader_epoch
    h.stop_broker(1)
    c.on_broker_change()
    s = h.state("t", 0)
    # leader -1, and the ISR is not emptied (Kafka bumps the epoch once more when it
    # takes the offline replica out of an ISR it cannot leave)
    assert s.leader == -1 and s.isr == (1,) and s.leader_epoch > epoch
    epoch = s.leader_epoch
    # broker 2 comes back: not in the ISR, no unclean election, still offline
    h.start_broker(2)
    c.on_broker_change()
    assert h.state("t", 0).leader == -1
    # broker 1 comes back and leads again with a new epoch
    h.start_broker(1)
    channel(c).clear()
    c.on_broker_change()
    s = h.state("t", 0)
    assert s.leader == 1 and s.isr == (1,) and s.leader_epoch == epoch + 1
    assert channel(c).leader_and_isr(1)[T0].leader == 1
    assert channel(c).leader_and_isr(2)[T0].leader == 1


def test_bounced_broker_is_a_failure_and_a_start():
    h, c = started()
    h.stop_broker(2)
    h.start_broker(2)  # back before the controller saw it go: a new broker epoch
    c.on_broker_change()
    assert h.state("t", 1).leader == 3
    assert 2 not in h.state("t", 0).isr
    assert c.ctx.broker_epoch(2) == h.broker_epoch(2)
    lai = channel(c).leader_and_isr(2)
    assert set(lai) == {T0, T1} and lai[T1].leader == 3


# -- unclean elections -----------------------------------------------------------------
def _offline_with_only_2_left(configs=None, default=None, config=None):
    h = Harness((1, 2))
    if default is not None:
        h.set_cluster_default(default)
    h.create_topic("t", {0: (1, 2)}, configs)
    c = h.elect(1, config)
    c.on_topic_change()
    # 2 drops out of the ISR (the leader says so), then 1 dies
    st = h.state("t", 0)
    from tests.unit.controller.harness import alter_partition

    alter_partition(c, 1, T0, [1], st.leader_epoch, st.zk_version, h.broker_epoch(1))
    assert h.state("t", 0).isr == (1,)
    h.stop_broker(1)
    c.on_broker_change()
    return h, c


def test_no_unclean_election_by_default():
    h, _ = _offline_with_only_2_left()
    assert h.state("t", 0).leader == -1


def test_unclean_election_by_topic_config():
    h, _ = _offline_with_only_2_left(configs={"unclean.leader.election.enable": "true"})
    s = h.state("t", 0)
    assert s.leader == 2 and s.isr == (2,)


def test_unclean_election_by_cluster_default_and_topic_config_wins():
    h, _ = _offline_with_only_2_left(default={"unclean.leader.election.enable": "true"})
    assert h.state("t", 0).leader == 2
    h, _ = _offline_with_only_2_left(
        configs={"unclean.leader.election.enable": "false"},
        default={"unclean.leader.election.enable": "true"},
    )
    assert h.state("t", 0).leader == -1


def test_unclean_election_by_static_broker_config():
    h, _ = _offline_with_only_2_left(config=ControllerConfig(unclean_leader_election=True))
    assert h.state("t", 0).leader == 2


# -- controlled shutdown ---------------------------------------------------------------
def test_controlled_shutdown_moves_leaderships_and_leaves_isrs():
    h, c = started(topic={0: (1, 2, 3), 1: (2, 3, 1), 2: (2,)})
    code, remaining = c.controlled_shutdown(2, h.broker_epoch(2))
    assert code == ErrorCode.NONE
    # t-1 moved to 3; t-2 has no other replica: not movable, not reported
    assert h.state("t", 1).leader == 3 and h.state("t", 1).isr == (3, 1)
    assert h.state("t", 2).leader == 2
    assert remaining == []
    # 2 left the ISR of t-0 and got StopReplica (no delete) for it
    assert h.state("t", 0).isr == (1, 3)
    assert channel(c).stop_replica(2) == {T0: False}
    # a shutting-down broker is not elected
    h.stop_broker(1)
    c.on_broker_change()
    assert h.state("t", 0).leader == 3


def test_controlled_shutdown_reports_leaderships_it_could_not_move():
    h, c = started(topic={0: (2, 3)})
    from tests.unit.controller.harness import alter_partition

    st = h.state("t", 0)
    alter_partition(c, 2, T0, [2], st.leader_epoch, st.zk_version, h.broker_epoch(2))
    code, remaining = c.controlled_shutdown(2, h.broker_epoch(2))
    assert code == ErrorCode.NONE and remaining == [T0]
    assert h.state("t", 0).leader == 2


def test_controlled_shutdown_checks_the_broker():
    h, c = started()
    assert c.controlled_shutdown(2, h.broker_epoch(2) - 1)[0] == ErrorCode.STALE_BROKER_EPOCH
    assert c.controlled_shutdown(9, -1)[0] == ErrorCode.BROKER_NOT_AVAILABLE
