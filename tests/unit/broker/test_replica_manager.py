"""ReplicaManager.apply_partition_state: which state changes reach the coordinators.

Kafka calls the group and transaction coordinators' onElection only when a broker
becomes leader (and onResignation when it stops): a leader-epoch bump while it stays
leader (an ISR shrink at a follower's controlled shutdown, a reassignment) must not
reload a coordinator's partition, which would fail its pending joins and syncs."""

from __future__ import annotations

from pathlib import Path

from strom.broker.replica_manager import LeadershipChange, ReplicaManager
from strom.common.config import BrokerConfig
from strom.metadata.image import PartitionInfo, TopicInfo
from strom.storage.config import LogConfig
from strom.storage.log_manager import LogManager

NOW = 1_700_000_000_000
TOPIC_ID = bytes(range(16))


def _manager(tmp_path: Path, node_id: int = 1) -> ReplicaManager:
    return ReplicaManager(BrokerConfig({}), LogManager([tmp_path], LogConfig(), NOW), node_id)


def _topic(state: PartitionInfo) -> TopicInfo:
    return TopicInfo("__consumer_offsets", TOPIC_ID, (state,), internal=True)


def _apply(rm: ReplicaManager, state: PartitionInfo) -> LeadershipChange | None:
    return rm.apply_partition_state(_topic(state), state, NOW)


def test_new_leadership_is_reported_once(tmp_path: Path) -> None:
    rm = _manager(tmp_path)
    first = PartitionInfo(0, leader=1, leader_epoch=3, replicas=(1, 2, 3), isr=(1, 2, 3))
    assert _apply(rm, first) == LeadershipChange(True)
    # the controller shrinks the ISR and bumps the leader epoch; broker 1 stays leader
    bumped = PartitionInfo(0, leader=1, leader_epoch=4, replicas=(1, 2, 3), isr=(1, 3))
    assert _apply(rm, bumped) is None
    assert rm.partitions[next(iter(rm.partitions))].leader_epoch == 4


def test_losing_and_regaining_leadership_is_reported(tmp_path: Path) -> None:
    rm = _manager(tmp_path)
    assert _apply(rm, PartitionInfo(0, 1, 3, (1, 2), (1, 2))) == LeadershipChange(True)
    assert _apply(rm, PartitionInfo(0, 2, 4, (1, 2), (1, 2))) == LeadershipChange(False)
    assert _apply(rm, PartitionInfo(0, 2, 5, (1, 2), (2,))) is None
    assert _apply(rm, PartitionInfo(0, 1, 6, (1, 2), (1, 2))) == LeadershipChange(True)


def test_a_new_follower_replica_is_reported(tmp_path: Path) -> None:
    # the coordinators drop whatever they held for the partition
    rm = _manager(tmp_path)
    assert _apply(rm, PartitionInfo(0, 2, 1, (1, 2), (1, 2))) == LeadershipChange(False)
