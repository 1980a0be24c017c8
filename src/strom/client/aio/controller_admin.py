"""The controller's operations, mixed into AIOAdmin: leader elections (ElectLeaders)
and partition reassignments (AlterPartitionReassignments, ListPartitionReassignments).

They go to the controller that Metadata names. A broker that is not (or no longer)
the controller answers NOT_CONTROLLER; the request then goes again, after a metadata
refresh, to the controller named next, until request.timeout.ms has passed (as
Kafka's admin client retries). Per-partition outcomes are returned as KafkaError
values (None: success); a request-level error raises.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from strom.client.admin_types import ElectionType, PartitionReassignment
from strom.client.aio.client import AIOClient
from strom.client.errors import KafkaConnectionError, error_for, raise_for
from strom.client.wait_log import WaitLog
from strom.common.types import TopicPartition
from strom.protocol.api_versions import ApiKey
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.generated.alter_partition_reassignments import (
    AlterPartitionReassignmentsRequest,
    AlterPartitionReassignmentsResponse,
)
from strom.protocol.generated.elect_leaders import ElectLeadersRequest, ElectLeadersResponse
from strom.protocol.generated.list_partition_reassignments import (
    ListPartitionReassignmentsRequest,
    ListPartitionReassignmentsResponse,
)

log = logging.getLogger(__name__)

_APR = AlterPartitionReassignmentsRequest
_LPR = ListPartitionReassignmentsRequest


def _by_topic(partitions: Iterable[TopicPartition]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = defaultdict(list)
    for tp in sorted(set(partitions)):
        out[tp.topic].append(tp.partition)
    return out


def _outcomes(
    results: Iterable[tuple[TopicPartition, int, str | None]],
) -> dict[TopicPartition, KafkaError | None]:
    """Each partition's error (None: none) from (partition, error code, message)."""
    return {tp: error_for(code, f"partition {tp}", message) for tp, code, message in results}


class ControllerAdminMixin:
    """Elections and reassignments; the host class provides ``client``."""

    client: AIOClient

    async def _send_to_controller(
        self, request: Any, error_code: Callable[[Any], int], *, min_version: int = 0
    ) -> Any:
        """Send ``request`` to the controller; on NOT_CONTROLLER (or a lost connection)
        refresh metadata and send it to the controller named then, until
        request.timeout.ms has passed. ``min_version``: the request needs at least it."""
        config = self.client.config
        deadline = time.monotonic() + config.request_timeout_ms / 1000
        notice = WaitLog()
        name = ApiKey(request.API_KEY).name
        while True:
            try:
                conn = await self.client.controller_connection()
                if conn.versions.get(request.API_KEY, -1) < min_version:
                    raise KafkaError(
                        ErrorCode.UNSUPPORTED_VERSION,
                        f"the broker does not support {name} v{min_version}",
                    )
                response = await conn.send(request)
                if error_code(response) != ErrorCode.NOT_CONTROLLER:
                    return response
                last = f"{conn.host}:{conn.port} is not the controller"
            except KafkaConnectionError as exc:
                last = str(exc)
            if time.monotonic() >= deadline:
                raise KafkaError(
                    ErrorCode.NOT_CONTROLLER,
                    f"{name}: no controller answered within request.timeout.ms "
                    f"({config.request_timeout_ms} ms); last: {last}",
                )
            if notice.due():
                log.warning(
                    f"[clientId={config.client_id}] {name}: {last}; looking for the "
                    f"controller until request.timeout.ms ({config.request_timeout_ms} ms) "
                    "has passed."
                )
            await asyncio.sleep(config.retry_backoff_ms / 1000)
            try:
                await self.client.refresh_metadata([])
            except KafkaConnectionError as exc:
                last = str(exc)

    async def elect_leaders(
        self,
        election_type: ElectionType | int,
        partitions: Iterable[TopicPartition] | None = None,
    ) -> dict[TopicPartition, KafkaError | None]:
        """ElectLeaders on the controller: elect the preferred replica (PREFERRED) or,
        for partitions without a leader, any live replica (UNCLEAN) of ``partitions``
        (None: every partition; the answer then leaves out those whose leader is
        already valid). Each partition's outcome: None when elected, else its
        KafkaError (ELECTION_NOT_NEEDED when a valid leader is already elected,
        PREFERRED_LEADER_NOT_AVAILABLE, ELIGIBLE_LEADERS_NOT_AVAILABLE,
        UNKNOWN_TOPIC_OR_PARTITION). A request error (e.g. CLUSTER_AUTHORIZATION_FAILED)
        raises."""
        kind = ElectionType(election_type)
        wanted = None if partitions is None else _by_topic(partitions)
        request = ElectLeadersRequest(
            election_type=int(kind),
            topic_partitions=None
            if wanted is None
            else [ElectLeadersRequest.TopicPartitions(t, ps) for t, ps in wanted.items()],
            timeout_ms=self.client.config.request_timeout_ms,
        )
        # v0 has no election type: it always elects the preferred replica
        response: ElectLeadersResponse = await self._send_to_controller(
            request, lambda r: r.error_code, min_version=0 if kind == ElectionType.PREFERRED else 1
        )
        raise_for(response.error_code, f"elect leaders ({kind.name})")
        return _outcomes(
            (TopicPartition(t.topic, p.partition_id), p.error_code, p.error_message)
            for t in response.replica_election_results
            for p in t.partition_result
        )

    async def alter_partition_reassignments(
        self, reassignments: Mapping[TopicPartition, Sequence[int] | None]
    ) -> dict[TopicPartition, KafkaError | None]:
        """AlterPartitionReassignments on the controller: move each partition to its
        target replicas (the first is the preferred leader), or cancel its ongoing
        reassignment (None). Each partition's outcome: None when started (or
        cancelled), else its KafkaError (INVALID_REPLICA_ASSIGNMENT,
        UNKNOWN_TOPIC_OR_PARTITION, NO_REASSIGNMENT_IN_PROGRESS). A request error
        raises."""
        by_topic: dict[str, list[_APR.ReassignablePartition]] = defaultdict(list)
        for tp, target in sorted(reassignments.items()):
            replicas = None if target is None else list(target)
            by_topic[tp.topic].append(_APR.ReassignablePartition(tp.partition, replicas))
        if not by_topic:
            return {}
        request = _APR(
            timeout_ms=self.client.config.request_timeout_ms,
            topics=[_APR.ReassignableTopic(name, parts) for name, parts in by_topic.items()],
        )
        response: AlterPartitionReassignmentsResponse = await self._send_to_controller(
            request, lambda r: r.error_code
        )
        raise_for(response.error_code, "alter partition reassignments", response.error_message)
        return _outcomes(
            (TopicPartition(t.name, p.partition_index), p.error_code, p.error_message)
            for t in response.responses
            for p in t.partitions
        )

    async def list_partition_reassignments(
        self, partitions: Iterable[TopicPartition] | None = None
    ) -> dict[TopicPartition, PartitionReassignment]:
        """ListPartitionReassignments on the controller: the ongoing reassignments of
        ``partitions`` (None: all of them); partitions with none are left out. A
        request error raises."""
        wanted = None if partitions is None else _by_topic(partitions)
        if wanted is not None and not wanted:
            return {}
        request = _LPR(
            timeout_ms=self.client.config.request_timeout_ms,
            topics=None
            if wanted is None
            else [_LPR.ListPartitionReassignmentsTopics(t, ps) for t, ps in wanted.items()],
        )
        response: ListPartitionReassignmentsResponse = await self._send_to_controller(
            request, lambda r: r.error_code
        )
        raise_for(response.error_code, "list partition reassignments", response.error_message)
        return {
            TopicPartition(t.name, p.partition_index): PartitionReassignment(
                tuple(p.replicas), tuple(p.adding_replicas), tuple(p.removing_replicas)
            )
            for t in response.topics
            for p in t.partitions
        }
