"""The fencing of controller requests (LeaderAndIsr, UpdateMetadata, StopReplica).

A re-registered broker can receive the new controller's request carrying its new
broker epoch before its own registration call has returned: Kafka accepts a broker
epoch newer than the one the broker knows (KafkaApis.isBrokerEpochStale) and refuses
only older ones."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from strom.broker.control_plane import _fence
from strom.protocol.errors import ErrorCode


def _broker(controller_epoch: int, broker_epoch: int) -> Any:
    return SimpleNamespace(
        cluster=SimpleNamespace(controller_epoch=controller_epoch, broker_epoch=broker_epoch)
    )


def test_older_controller_epoch_is_stale() -> None:
    assert _fence(_broker(5, 100), 4, 100) == ErrorCode.STALE_CONTROLLER_EPOCH


def test_older_broker_epoch_is_stale() -> None:
    assert _fence(_broker(5, 100), 5, 99) == ErrorCode.STALE_BROKER_EPOCH


def test_newer_broker_epoch_is_accepted_and_the_controller_epoch_noted() -> None:
    broker = _broker(5, 100)
    assert _fence(broker, 6, 120) == ErrorCode.NONE
    assert broker.cluster.controller_epoch == 6


def test_unknown_broker_epoch_is_accepted() -> None:
    assert _fence(_broker(5, 100), 5, -1) == ErrorCode.NONE


def test_a_single_node_has_no_controller() -> None:
    assert _fence(SimpleNamespace(cluster=None), 1, -1) == ErrorCode.STALE_CONTROLLER_EPOCH
