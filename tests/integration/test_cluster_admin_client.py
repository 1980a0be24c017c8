"""strom's admin client against a 3-broker cluster: elections and reassignments go to
the controller, found again after NOT_CONTROLLER (stale metadata) and after the
controller dies; per-partition errors come back as Kafka's error codes."""

from __future__ import annotations

import asyncio
import time

import pytest

from strom.client.admin_types import ElectionType
from strom.client.aio.admin import AIOAdmin
from strom.client.sync import Admin
from strom.common.types import TopicPartition
from strom.protocol.errors import KafkaError
from tests.integration.cluster_helpers import NO_REBALANCE, ClusterFactory, create, serving

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("require_strom")]


def codes(outcome: dict[TopicPartition, KafkaError | None]) -> dict[TopicPartition, str]:
    return {tp: "NONE" if err is None else err.code.name for tp, err in outcome.items()}


def test_controller_operations_find_the_controller(
    cluster_factory: ClusterFactory, topic_name: str
) -> None:
    cluster = serving(cluster_factory(3, NO_REBALANCE, session_timeout_ms=4000))
    create(cluster, topic_name, {0: [0, 1]})
    controller = cluster.controller_id()
    other = next(i for i in (0, 1, 2) if i != controller)
    tp0, tp5, unknown = (
        TopicPartition(topic_name, 0),
        TopicPartition(topic_name, 5),
        TopicPartition(f"{topic_name}-none", 0),
    )

    async def with_stale_metadata() -> None:
        async with AIOAdmin({"bootstrap.servers": cluster.broker(other).bootstrap}) as admin:
            # metadata naming a broker that is not the controller: NOT_CONTROLLER, refresh
            admin.client.cluster.controller_id = other
            assert await admin.list_partition_reassignments() == {}
            assert admin.client.cluster.controller_id == controller
            admin.client.cluster.controller_id = other
            outcome = await admin.alter_partition_reassignments(
                {tp0: None, unknown: [0], tp5: [0, 0]}
            )
            assert codes(outcome) == {
                tp0: "NO_REASSIGNMENT_IN_PROGRESS",
                unknown: "UNKNOWN_TOPIC_OR_PARTITION",
                tp5: "UNKNOWN_TOPIC_OR_PARTITION",
            }
            duplicate = await admin.alter_partition_reassignments({tp0: [0, 0]})
            assert codes(duplicate) == {tp0: "INVALID_REPLICA_ASSIGNMENT"}
            admin.client.cluster.controller_id = other
            elected = await admin.elect_leaders(ElectionType.PREFERRED, [tp0, tp5])
            assert codes(elected) == {
                tp0: "ELECTION_NOT_NEEDED",
                tp5: "UNKNOWN_TOPIC_OR_PARTITION",
            }
            # every partition: those that need no election are left out
            assert await admin.elect_leaders(ElectionType.PREFERRED) == {}
            unclean = await admin.elect_leaders(ElectionType.UNCLEAN, [tp0])
            assert codes(unclean) == {tp0: "ELECTION_NOT_NEEDED"}
            assert await admin.list_partition_reassignments([]) == {}

    asyncio.run(with_stale_metadata())

    with Admin({"bootstrap.servers": cluster.bootstrap}) as admin:
        started = admin.alter_partition_reassignments({tp0: [1, 2]})
        assert codes(started) == {tp0: "NONE"}
        cluster.wait_for(
            "the reassignment to complete",
            lambda: admin.list_partition_reassignments([tp0]) == {},
        )
        assert cluster.partition(topic_name).replica_nodes == [1, 2]
        # the controller the client knows dies: the request goes to the next one
        cluster.broker(controller).kill()
        began = time.monotonic()
        assert admin.list_partition_reassignments() == {}
        assert admin.describe_cluster().controller_id not in (controller, -1)
        assert time.monotonic() - began < 25
