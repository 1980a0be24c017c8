"""New topics and partitions, deletion, AlterPartition."""

from __future__ import annotations

from strom.common.types import TopicPartition
from strom.controller.controller import ControllerConfig
from strom.metadata.zk import data as zd
from strom.protocol.errors import ErrorCode
from strom.protocol.generated.update_metadata import UpdateMetadataRequest
from strom.testing.sim import store as zs
from tests.unit.controller.harness import Harness, alter_partition, channel

T0 = TopicPartition("t", 0)
T1 = TopicPartition("t", 1)


def test_new_topic_gets_states_and_leader_and_isr():
    h = Harness()
    c = h.elect(1)
    channel(c).clear()
    h.create_topic("t", {0: (2, 3), 1: (3, 1)})
    c.on_topic_change()
    assert h.state("t", 0).leader == 2 and h.state("t", 0).isr == (2, 3)
    assert h.state("t", 1).leader == 3 and h.state("t", 1).zk_version == 0
    ch = channel(c)
    assert set(ch.leader_and_isr(2)) == {T0}
    assert ch.leader_and_isr(2)[T0].is_new
    assert set(ch.leader_and_isr(1)) == {T1}
    assert set(ch.update_metadata(1)) == {T0, T1}  # every broker learns both


def test_new_topic_with_a_dead_first_replica_starts_on_a_live_one():
    h = Harness()
    h.stop_broker(2)
    c = h.elect(1)
    h.create_topic("t", {0: (2, 3), 1: (2,)})
    c.on_topic_change()
    assert h.state("t", 0).leader == 3 and h.state("t", 0).isr == (3,)
    assert T1 not in c.ctx.states  # no live replica: waits
    h.start_broker(2)
    c.on_broker_change()
    assert h.state("t", 1).leader == 2


def test_added_partitions_are_started():
    h = Harness()
    h.create_topic("t", {0: (1, 2)})
    c = h.elect(1)
    channel(c).clear()
    zs.add_partitions(h.model, "t", {1: (3, 1)})
    c.on_partition_modification("t")
    assert h.state("t", 1).leader == 3
    assert set(channel(c).leader_and_isr(3)) == {T1}


# -- deletion --------------------------------------------------------------------------
def test_deletion_stops_replicas_and_removes_znodes_when_all_answered():
    h = Harness()
    h.create_topic("t", {0: (1, 2), 1: (2, 3)})
    c = h.elect(1)
    channel(c).clear()
    zs.request_deletion(h.model, "t")
    c.on_topic_deletion()
    ch = channel(c)
    assert ch.stop_replica(1) == {T0: True}
    assert ch.stop_replica(2) == {T0: True, T1: True}
    um = ch.update_metadata(3)
    assert um[T0].leader == -2 and um[T1].leader == -2
    ch.answer_stop_replicas(1)
    ch.answer_stop_replicas(2)
    assert zd.topic_path("t") in h.model.nodes  # broker 3 has not answered
    ch.answer_stop_replicas(3)
    for path in (zd.topic_path("t"), zd.config_path("topics", "t"), f"{zd.DELETE_TOPICS}/t"):
        assert path not in h.model.nodes
    assert "t" not in c.ctx.topic_ids and T0 not in c.ctx.states


def test_deletion_waits_for_offline_replicas():
    h = Harness()
    h.create_topic("t", {0: (1, 2)})
    c = h.elect(1)
    h.stop_broker(2)
    c.on_broker_change()
    channel(c).clear()
    zs.request_deletion(h.model, "t")
    c.on_topic_deletion()
    assert not channel(c).stop_replica(1)  # waits: broker 2 is down
    assert zd.topic_path("t") in h.model.nodes
    h.start_broker(2)
    c.on_broker_change()
    ch = channel(c)
    assert ch.stop_replica(1) == {T0: True} and ch.stop_replica(2) == {T0: True}
    ch.answer_stop_replicas(1)
    ch.answer_stop_replicas(2)
    assert zd.topic_path("t") not in h.model.nodes


def test_failed_stop_replica_keeps_the_topic():
    h = Harness((1, 2))
    h.create_topic("t", {0: (1, 2)})
    c = h.elect(1)
    zs.request_deletion(h.model, "t")
    c.on_topic_deletion()
    channel(c).answer_stop_replicas(1, error_code=ErrorCode.KAFKA_STORAGE_ERROR)
    channel(c).answer_stop_replicas(2)
    assert zd.topic_path("t") in h.model.nodes


def test_deletion_disabled_keeps_the_request():
    h = Harness()
    h.create_topic("t", {0: (1, 2)})
    c = h.elect(1, ControllerConfig(delete_topic_enable=False))
    zs.request_deletion(h.model, "t")
    c.on_topic_deletion()
    assert not channel(c).stop_replica(1)
    assert "t" not in c.ctx.topics_to_delete


def test_deletion_resumes_after_failover():
    h = Harness()
    h.create_topic("t", {0: (2, 3)})
    zs.request_deletion(h.model, "t")
    c = h.elect(1)
    ch = channel(c)
    assert ch.stop_replica(2) == {T0: True}
    ch.answer_stop_replicas(2)
    ch.answer_stop_replicas(3)
    assert zd.topic_path("t") not in h.model.nodes


# -- AlterPartition --------------------------------------------------------------------
def _one_partition():
    h = Harness()
    h.create_topic("t", {0: (1, 2, 3)})
    c = h.elect(1)
    return h, c


def _error(resp) -> int:
    if resp.error_code:
        return int(resp.error_code)
    return int(resp.topics[0].partitions[0].error_code)


def test_alter_partition_shrink_succeeds_with_a_new_partition_epoch():
    h, c = _one_partition()
    st = h.state("t", 0)
    channel(c).clear()
    resp = alter_partition(c, 1, T0, [1, 3], st.leader_epoch, st.zk_version, h.broker_epoch(1))
    p = resp.topics[0].partitions[0]
    assert p.error_code == 0 and p.isr == [1, 3] and p.leader_id == 1
    assert p.partition_epoch == st.zk_version + 1
    assert p.leader_epoch == st.leader_epoch  # an ISR change keeps the leader epoch
    assert h.state("t", 0).isr == (1, 3)
    assert channel(c).update_metadata(2)[T0].isr == [1, 3]
    assert not channel(c).leader_and_isr(1)  # the leader learns from the answer


def test_alter_partition_by_name_before_version_2():
    h, c = _one_partition()
    st = h.state("t", 0)
    resp = alter_partition(c, 1, T0, [1, 2], st.leader_epoch, st.zk_version, -1, version=1)
    assert _error(resp) == 0 and h.state("t", 0).isr == (1, 2)


def test_alter_partition_stale_broker_epoch():
    h, c = _one_partition()
    st = h.state("t", 0)
    resp = alter_partition(c, 1, T0, [1], st.leader_epoch, st.zk_version, h.broker_epoch(1) + 99)
    assert resp.error_code == ErrorCode.STALE_BROKER_EPOCH
    assert h.state("t", 0).isr == (1, 2, 3)


def test_alter_partition_fenced_leader_epoch():
    h, c = _one_partition()
    h.stop_broker(3)
    c.on_broker_change()  # the ISR loses 3: a new leader epoch
    st = h.state("t", 0)
    resp = alter_partition(c, 1, T0, [1], st.leader_epoch - 1, st.zk_version, h.broker_epoch(1))
    assert _error(resp) == ErrorCode.FENCED_LEADER_EPOCH
    assert h.state("t", 0).isr == (1, 2)


def test_alter_partition_invalid_update_version():
    h, c = _one_partition()
    st = h.state("t", 0)
    ok = alter_partition(c, 1, T0, [1, 2], st.leader_epoch, st.zk_version, h.broker_epoch(1))
    assert _error(ok) == 0
    resp = alter_partition(c, 1, T0, [1], st.leader_epoch, st.zk_version, h.broker_epoch(1))
    assert _error(resp) == ErrorCode.INVALID_UPDATE_VERSION
    assert h.state("t", 0).isr == (1, 2)


def test_alter_partition_ineligible_replicas():
    h, c = _one_partition()
    st = h.state("t", 0)
    resp = alter_partition(c, 1, T0, [1, 2], st.leader_epoch, st.zk_version, h.broker_epoch(1))
    st = h.state("t", 0)
    # not a replica
    resp = alter_partition(c, 1, T0, [1, 2, 7], st.leader_epoch, st.zk_version, h.broker_epoch(1))
    assert _error(resp) == ErrorCode.INELIGIBLE_REPLICA
    # a replica that is not live
    h.stop_broker(3)
    c.on_broker_change()
    st = h.state("t", 0)
    resp = alter_partition(c, 1, T0, [1, 2, 3], st.leader_epoch, st.zk_version, h.broker_epoch(1))
    assert _error(resp) == ErrorCode.INELIGIBLE_REPLICA
    # a replica shutting down may not join
    st = h.state("t", 0)
    alter_partition(c, 1, T0, [1], st.leader_epoch, st.zk_version, h.broker_epoch(1))
    c.controlled_shutdown(2, h.broker_epoch(2))
    st = h.state("t", 0)
    resp = alter_partition(c, 1, T0, [1, 2], st.leader_epoch, st.zk_version, h.broker_epoch(1))
    assert _error(resp) == ErrorCode.INELIGIBLE_REPLICA
    assert h.state("t", 0).isr == (1,)


def test_alter_partition_from_a_non_leader():
    h, c = _one_partition()
    st = h.state("t", 0)
    resp = alter_partition(c, 2, T0, [2], st.leader_epoch, st.zk_version, h.broker_epoch(2))
    assert _error(resp) == ErrorCode.NOT_LEADER_OR_FOLLOWER


def test_alter_partition_unknown_partition():
    h, c = _one_partition()
    resp = alter_partition(c, 1, TopicPartition("t", 5), [1], 0, 0, h.broker_epoch(1))
    assert _error(resp) == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION


def test_isr_change_notification_rereads_states():
    h, c = _one_partition()
    channel(c).clear()
    h.model.create(
        0,
        f"{zd.ISR_CHANGES}/{zd.ISR_CHANGE_PREFIX}",
        zd.encode_partitions(1, [T0]),
        sequential=True,
    )
    c.on_isr_change_notification()
    assert channel(c).of(UpdateMetadataRequest)
    assert h.model.children(0, zd.ISR_CHANGES) == []


def test_alter_partition_retried_after_success_answers_the_current_state():
    """A leader whose AlterPartition was applied but whose answer was lost sends it
    again: Kafka answers the current state (equalsAllowStalePartitionEpoch) before it
    checks the partition epoch; INVALID_UPDATE_VERSION would leave the leader with a
    stale partition epoch and no further ISR change would ever be accepted."""
    h, c = _one_partition()
    st = h.state("t", 0)
    args = (1, T0, [1, 3], st.leader_epoch, st.zk_version, h.broker_epoch(1))
    first = alter_partition(c, *args)
    again = alter_partition(c, *args)
    assert _error(again) == 0
    p = again.topics[0].partitions[0]
    assert p.isr == [1, 3] and p.partition_epoch == first.topics[0].partitions[0].partition_epoch
    assert h.state("t", 0).zk_version == st.zk_version + 1  # not written twice
