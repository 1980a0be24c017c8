"""Consumer-group admin operations, mixed into :class:`AIOAdmin`.

Every group request goes to the group's coordinator (FindCoordinator, batched
with v4+). Coordinator errors (NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE,
COORDINATOR_LOAD_IN_PROGRESS) and broken coordinator connections are retried,
finding the coordinator again, until ``request.timeout.ms`` has passed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from strom.client.admin_types import OffsetAndTimestamp, OffsetSpec
from strom.client.aio.client import AIOClient
from strom.client.aio.connection import BrokerConnection
from strom.client.aio.consumer_group_describe import (
    describe_consumer_groups,
    supports_consumer_group_describe,
)
from strom.client.errors import KafkaConnectionError, error_for, raise_for
from strom.client.group_types import (
    CONSUMER_PROTOCOL_TYPE,
    GROUP_STATES,
    ConsumerGroupLag,
    GroupDescription,
    GroupListing,
    MemberDescription,
    OffsetAndMetadata,
    decode_assignment,
    group_partitions,
    lag_rows,
)
from strom.client.metadata import BrokerMetadata
from strom.client.wait_log import WaitLog
from strom.common.types import TopicPartition
from strom.protocol.api_versions import ApiKey
from strom.protocol.errors import DecodeError, ErrorCode, KafkaError
from strom.protocol.generated.delete_groups import DeleteGroupsRequest, DeleteGroupsResponse
from strom.protocol.generated.describe_groups import DescribeGroupsRequest, DescribeGroupsResponse
from strom.protocol.generated.find_coordinator import FindCoordinatorRequest
from strom.protocol.generated.list_groups import ListGroupsRequest, ListGroupsResponse
from strom.protocol.generated.offset_commit import OffsetCommitRequest, OffsetCommitResponse
from strom.protocol.generated.offset_delete import OffsetDeleteRequest, OffsetDeleteResponse
from strom.protocol.generated.offset_fetch import OffsetFetchRequest, OffsetFetchResponse

log = logging.getLogger(__name__)
T = TypeVar("T")
# (final error code, result) per group; the code is never a coordinator error.
_Batch = Callable[[BrokerConnection, list[str]], Awaitable[dict[str, tuple[int, T]]]]

COORDINATOR_ERRORS = frozenset(
    {
        ErrorCode.NOT_COORDINATOR,
        ErrorCode.COORDINATOR_NOT_AVAILABLE,
        ErrorCode.COORDINATOR_LOAD_IN_PROGRESS,
    }
)
_OC = OffsetCommitRequest
_OF = OffsetFetchRequest
_OD = OffsetDeleteRequest


class GroupAdminMixin:
    """Group operations; the host class provides ``client``, ``_timeout_ms``,
    ``_coordinators`` and ``list_offsets``."""

    client: AIOClient
    _timeout_ms: int
    _coordinators: dict[str, BrokerMetadata]

    if TYPE_CHECKING:

        async def list_offsets(
            self, specs: Mapping[TopicPartition, int], *, isolation_level: int = 0
        ) -> dict[TopicPartition, OffsetAndTimestamp]:
            """ListOffsets, provided by the host class (:meth:`AIOAdmin.list_offsets`)."""

    # -- coordinators --------------------------------------------------------

    async def find_coordinator(self, group: str) -> BrokerMetadata:
        """FindCoordinator for one group: its coordinator (see :meth:`find_coordinators`)."""
        return (await self.find_coordinators([group]))[group]

    async def find_coordinators(self, groups: Iterable[str]) -> dict[str, BrokerMetadata]:
        """The coordinator of each group (cached until it answers NOT_COORDINATOR)."""
        wanted = list(dict.fromkeys(groups))
        deadline = time.monotonic() + self._timeout_ms / 1000
        notice = WaitLog()
        while True:
            missing = [g for g in wanted if g not in self._coordinators]
            if not missing:
                return {g: self._coordinators[g] for g in wanted}
            failures = await self._lookup_coordinators(missing)
            if failures and time.monotonic() >= deadline:
                group, code = next(iter(failures.items()))
                raise_for(code, f"coordinator of group {group!r}")
            if failures:
                if notice.due():
                    group, code = next(iter(failures.items()))
                    log.warning(
                        f"Waiting for the coordinator of group {group!r} "
                        f"({ErrorCode(code).name}); retrying for up to {self._timeout_ms} ms."
                    )
                await asyncio.sleep(self.client.config.retry_backoff_ms / 1000)

    async def _lookup_coordinators(self, groups: list[str]) -> dict[str, int]:
        """Ask any broker; cache the answers; return the retriable failures."""
        conn = await self.client.any_connection()
        answers: list[tuple[str, int, str | None, int, str, int]] = []
        if conn.versions.get(ApiKey.FIND_COORDINATOR, -1) >= 4:
            response = await conn.send(FindCoordinatorRequest(key_type=0, coordinator_keys=groups))
            answers = [
                (c.key, c.error_code, c.error_message, c.node_id, c.host, c.port)
                for c in response.coordinators
            ]
        else:
            for group in groups:
                r = await conn.send(FindCoordinatorRequest(key=group, key_type=0))
                answers.append((group, r.error_code, r.error_message, r.node_id, r.host, r.port))
        # a group the answer left out is retried like a coordinator that is not available
        failures: dict[str, int] = {g: ErrorCode.COORDINATOR_NOT_AVAILABLE for g in groups}
        for group, code, message, node_id, host, port in answers:
            failures.pop(group, None)
            if code == ErrorCode.NONE:
                self._coordinators[group] = BrokerMetadata(node_id, host, port)
            elif code in COORDINATOR_ERRORS:
                failures[group] = code
            else:
                raise_for(code, f"coordinator of group {group!r}", message)
        return failures

    async def _per_coordinator(self, groups: Iterable[str], batch: _Batch[T]) -> dict[str, T]:
        """Run ``batch`` once per coordinator for its groups, retrying groups whose
        coordinator moved or is loading. Other error codes raise, naming the group."""
        pending = list(dict.fromkeys(groups))
        out: dict[str, T] = {}
        deadline = time.monotonic() + self._timeout_ms / 1000
        while pending:
            coordinators = await self.find_coordinators(pending)
            by_node: dict[tuple[str, int], list[str]] = defaultdict(list)
            for g in pending:
                by_node[(coordinators[g].host, coordinators[g].port)].append(g)
            retry: dict[str, int] = {}
            for (host, port), node_groups in by_node.items():
                results = await self._on_node(host, port, node_groups, batch)
                for g in node_groups:
                    entry = results.get(g)
                    if entry is None or entry[0] in COORDINATOR_ERRORS:
                        code = ErrorCode.COORDINATOR_NOT_AVAILABLE if entry is None else entry[0]
                        retry[g] = code
                        if code != ErrorCode.COORDINATOR_LOAD_IN_PROGRESS:
                            self._coordinators.pop(g, None)
                    else:
                        raise_for(entry[0], f"group {g!r}")
                        out[g] = entry[1]
            pending = list(retry)
            if pending and time.monotonic() >= deadline:
                raise_for(retry[pending[0]], f"group {pending[0]!r}")
            if pending:
                await asyncio.sleep(self.client.config.retry_backoff_ms / 1000)
        return out

    async def _on_node(
        self, host: str, port: int, groups: list[str], batch: _Batch[T]
    ) -> dict[str, tuple[int, T]]:
        """``batch`` on one coordinator; {} when the connection fails (then retried)."""
        try:
            conn = await self.client.connect(host, port)
            return await batch(conn, groups)
        except KafkaConnectionError:
            return {}

    # -- groups --------------------------------------------------------------

    async def list_groups(
        self, states: Iterable[str] | None = None, types: Iterable[str] | None = None
    ) -> list[GroupListing]:
        """Groups of every broker, sorted by id; ``states`` filters (ListGroups v4+),
        matched case-insensitively against Kafka's state names; ``types`` ("classic",
        "consumer") filters by group type (ListGroups v5+)."""
        wanted = [_canonical_state(s) for s in states or ()]
        kinds = [t.strip().lower() for t in types or ()]
        await self.client.refresh_metadata([])
        out: dict[str, GroupListing] = {}
        for node_id in sorted(self.client.cluster.brokers):
            conn = await self.client.node_connection(node_id)
            version = conn.versions.get(ApiKey.LIST_GROUPS, -1)
            if wanted and version < 4:
                raise KafkaError(
                    ErrorCode.UNSUPPORTED_VERSION,
                    f"the broker supports ListGroups v{version}, but v4 or newer is needed "
                    "to list groups by state",
                )
            if kinds and version < 5:
                raise KafkaError(
                    ErrorCode.UNSUPPORTED_VERSION,
                    f"the broker supports ListGroups v{version}, but v5 or newer is needed "
                    "to list groups by type",
                )
            request = ListGroupsRequest(states_filter=wanted, types_filter=kinds)
            response: ListGroupsResponse = await conn.send(request)
            raise_for(response.error_code, f"list groups on broker {node_id}")
            for g in response.groups:
                state = g.group_state if version >= 4 else None
                if wanted and state not in wanted:
                    continue
                kind = g.group_type if version >= 5 and g.group_type else None
                out[g.group_id] = GroupListing(g.group_id, g.protocol_type, state, kind)
        return [out[k] for k in sorted(out)]

    async def describe_groups(self, groups: Iterable[str]) -> dict[str, GroupDescription]:
        """Descriptions; a group that does not exist has state ``Dead`` and no members."""

        async def batch(
            conn: BrokerConnection, names: list[str]
        ) -> dict[str, tuple[int, GroupDescription]]:
            """ConsumerGroupDescribe, then DescribeGroups for the rest, on one coordinator;
            GROUP_ID_NOT_FOUND becomes state ``Dead``."""
            node = self._coordinators.get(names[0], BrokerMetadata(-1, conn.host, conn.port))
            results: dict[str, tuple[int, GroupDescription]] = {}
            if supports_consumer_group_describe(conn):
                results = await describe_consumer_groups(conn, names, node)
                names = [n for n in names if n not in results]
                if not names:
                    return results
            response: DescribeGroupsResponse = await conn.send(DescribeGroupsRequest(groups=names))
            for g in response.groups:
                code = g.error_code
                if code == ErrorCode.GROUP_ID_NOT_FOUND:
                    code, g.group_state, g.members = ErrorCode.NONE, "Dead", []
                results[g.group_id] = (code, _description(g, node))
            return results

        return await self._per_coordinator(groups, batch)

    async def delete_groups(self, groups: Iterable[str]) -> dict[str, KafkaError | None]:
        """Delete groups; returns each group's error (None: deleted) instead of raising,
        e.g. NON_EMPTY_GROUP for a group with members, GROUP_ID_NOT_FOUND."""

        async def batch(
            conn: BrokerConnection, names: list[str]
        ) -> dict[str, tuple[int, KafkaError | None]]:
            """DeleteGroups on one coordinator; only coordinator errors stay as codes."""
            response: DeleteGroupsResponse = await conn.send(DeleteGroupsRequest(names))
            return {
                r.group_id: (
                    r.error_code if r.error_code in COORDINATOR_ERRORS else ErrorCode.NONE,
                    error_for(r.error_code, f"group {r.group_id!r}"),
                )
                for r in response.results
            }

        return await self._per_coordinator(groups, batch)

    # -- offsets -------------------------------------------------------------

    async def list_group_offsets(
        self,
        group: str,
        partitions: Iterable[TopicPartition] | None = None,
        *,
        require_stable: bool = False,
    ) -> dict[TopicPartition, OffsetAndMetadata]:
        """Committed offsets of ``group`` (None: every partition it committed);
        partitions without a committed offset are left out."""
        specs = {group: None if partitions is None else list(partitions)}
        return (await self.list_groups_offsets(specs, require_stable=require_stable))[group]

    async def list_groups_offsets(
        self,
        groups: Mapping[str, Iterable[TopicPartition] | None],
        *,
        require_stable: bool = False,
    ) -> dict[str, dict[TopicPartition, OffsetAndMetadata]]:
        """Committed offsets of several groups; one OffsetFetch per coordinator with v8+."""
        specs = {g: None if tps is None else list(tps) for g, tps in groups.items()}

        async def batch(
            conn: BrokerConnection, names: list[str]
        ) -> dict[str, tuple[int, dict[TopicPartition, OffsetAndMetadata]]]:
            """OffsetFetch on one coordinator: one request on v8+, else one per group."""
            if conn.versions.get(ApiKey.OFFSET_FETCH, -1) >= 8:
                groups_req = [
                    _OF.OffsetFetchRequestGroup(group_id=g, topics=_fetch_topics(specs[g], True))
                    for g in names
                ]
                request = _OF(groups=groups_req, require_stable=require_stable)
                response: OffsetFetchResponse = await conn.send(request)
                return {
                    r.group_id: _fetched(r.group_id, r.error_code, r.topics)
                    for r in response.groups
                }
            results = {}
            for g in names:
                if specs[g] is None and conn.versions.get(ApiKey.OFFSET_FETCH, -1) < 2:
                    raise KafkaError(ErrorCode.UNSUPPORTED_VERSION, "OffsetFetch v2+ is needed")
                topics = _fetch_topics(specs[g], False)
                req = _OF(group_id=g, topics=topics, require_stable=require_stable)
                resp: OffsetFetchResponse = await conn.send(req)
                results[g] = _fetched(g, resp.error_code, resp.topics)
            return results

        return await self._per_coordinator(specs, batch)

    async def alter_group_offsets(
        self, group: str, offsets: Mapping[TopicPartition, OffsetAndMetadata | int]
    ) -> None:
        """Commit offsets as Kafka's admin does (generation -1, no member id): the
        coordinator accepts it only while the group is empty (or unknown)."""
        by_topic: dict[str, list[_OC.OffsetCommitRequestPartition]] = defaultdict(list)
        for tp, value in offsets.items():
            om = value if isinstance(value, OffsetAndMetadata) else OffsetAndMetadata(value)
            by_topic[tp.topic].append(
                _OC.OffsetCommitRequestPartition(
                    partition_index=tp.partition,
                    committed_offset=om.offset,
                    committed_leader_epoch=om.leader_epoch,
                    committed_metadata=om.metadata,
                )
            )
        request = _OC(
            group_id=group,
            generation_id_or_member_epoch=-1,
            member_id="",
            topics=[_OC.OffsetCommitRequestTopic(t, ps) for t, ps in by_topic.items()],
        )

        async def batch(
            conn: BrokerConnection, names: list[str]
        ) -> dict[str, tuple[int, OffsetCommitResponse]]:
            """OffsetCommit; a partition's coordinator error marks the group for retry."""
            response: OffsetCommitResponse = await conn.send(request)
            codes = [p.error_code for t in response.topics for p in t.partitions]
            moved = next((c for c in codes if c in COORDINATOR_ERRORS), ErrorCode.NONE)
            return {group: (moved, response)}

        response = (await self._per_coordinator([group], batch))[group]
        for t in response.topics:
            for p in t.partitions:
                hint = None
                if p.error_code == ErrorCode.UNKNOWN_MEMBER_ID:
                    hint = f"offsets can only be altered while group '{group}' is empty"
                raise_for(
                    p.error_code, f"group {group!r} partition {t.name}-{p.partition_index}", hint
                )

    async def delete_group_offsets(
        self, group: str, partitions: Iterable[TopicPartition]
    ) -> dict[TopicPartition, KafkaError | None]:
        """OffsetDelete; a group-level error raises, partition errors are returned
        (e.g. GROUP_SUBSCRIBED_TO_TOPIC while members consume the topic)."""
        tps = list(partitions)
        request = _OD(
            group_id=group,
            topics=[
                _OD.OffsetDeleteRequestTopic(t, [_OD.OffsetDeleteRequestPartition(p) for p in ps])
                for t, ps in group_partitions(tps).items()
            ],
        )

        async def batch(
            conn: BrokerConnection, names: list[str]
        ) -> dict[str, tuple[int, OffsetDeleteResponse]]:
            """OffsetDelete; its group-level error code decides between retry and raise."""
            response: OffsetDeleteResponse = await conn.send(request)
            return {group: (response.error_code, response)}

        response = (await self._per_coordinator([group], batch))[group]
        out: dict[TopicPartition, KafkaError | None] = {}
        for t in response.topics:
            for p in t.partitions:
                tp = TopicPartition(t.name, p.partition_index)
                out[tp] = error_for(p.error_code, f"partition {tp}")
        return out

    # -- lag -----------------------------------------------------------------

    async def log_end_offsets(
        self, partitions: Iterable[TopicPartition], *, isolation_level: int | None = None
    ) -> dict[TopicPartition, int]:
        """Log end offsets: the high watermark, or the last stable offset with
        isolation_level 1 (read_committed; None: the client's isolation.level).
        Partitions that do not exist or have no leader are left out."""
        if isolation_level is None:
            isolation_level = self.client.config.isolation_level
        tps = sorted(set(partitions))
        if not tps:
            return {}
        await self.client.refresh_metadata(sorted({tp.topic for tp in tps}))
        known = [tp for tp in tps if self.client.cluster.leader_for(tp) is not None]
        specs = dict.fromkeys(known, int(OffsetSpec.LATEST))
        found = await self.list_offsets(specs, isolation_level=isolation_level)
        return {tp: r.offset for tp, r in found.items() if r.offset >= 0}

    async def consumer_group_lag(
        self, group: str, *, isolation_level: int | None = None
    ) -> ConsumerGroupLag:
        """Per partition: committed offset, log end offset and lag = end - committed
        (None when nothing is committed), with the owning member if any."""
        description = (await self.describe_groups([group]))[group]
        committed = await self.list_group_offsets(group)
        tps = set(committed)
        for member in description.members:
            tps.update(member.assignment)
        ends = await self.log_end_offsets(tps, isolation_level=isolation_level)
        return ConsumerGroupLag(description, lag_rows(description, committed, ends))


def _canonical_state(name: str) -> str:
    lowered = name.strip().lower()
    return next((s for s in GROUP_STATES if s.lower() == lowered), name.strip())


def _description(
    g: DescribeGroupsResponse.DescribedGroup, node: BrokerMetadata
) -> GroupDescription:
    consumer = g.protocol_type in ("", CONSUMER_PROTOCOL_TYPE)
    members = tuple(
        MemberDescription(
            m.member_id,
            m.group_instance_id,
            m.client_id,
            m.client_host,
            _assignment(m.member_assignment) if consumer else (),
        )
        for m in g.members
    )
    return GroupDescription(
        g.group_id, g.group_state, g.protocol_type, g.protocol_data, members, node
    )


def _assignment(data: bytes) -> tuple[TopicPartition, ...]:
    try:
        return decode_assignment(data)
    except DecodeError:
        return ()  # not the standard consumer protocol layout: show no partitions


def _fetch_topics(tps: list[TopicPartition] | None, grouped: bool) -> Any:
    if tps is None:
        return None
    cls = _OF.OffsetFetchRequestTopics if grouped else _OF.OffsetFetchRequestTopic
    return [cls(t, ps) for t, ps in group_partitions(tps).items()]


def _fetched(
    group: str, code: int, topics: Iterable[Any]
) -> tuple[int, dict[TopicPartition, OffsetAndMetadata]]:
    """(error code, offsets) of one group's OffsetFetch answer. Before v2 a coordinator
    error (NOT_COORDINATOR, loading) comes per partition: it becomes the group's code,
    so the caller retries; other partition errors raise."""
    out: dict[TopicPartition, OffsetAndMetadata] = {}
    if code:
        return code, out
    for t in topics:
        for p in t.partitions:
            tp = TopicPartition(t.name, p.partition_index)
            if p.error_code in COORDINATOR_ERRORS:
                return p.error_code, {}
            raise_for(p.error_code, f"group {group!r} partition {tp}")
            if p.committed_offset >= 0:
                out[tp] = OffsetAndMetadata(
                    p.committed_offset, p.metadata, p.committed_leader_epoch
                )
    return 0, out
