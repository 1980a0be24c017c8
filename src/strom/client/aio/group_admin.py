"""Consumer-group admin operations, mixed into :class:`AIOAdmin`: groups listed,
described and deleted, and a group's lag. Each group request goes to the group's
coordinator (group_coordinators.py); committed offsets are group_offsets_admin.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from strom.client.admin_types import OffsetAndTimestamp, OffsetSpec
from strom.client.aio.connection import BrokerConnection
from strom.client.aio.consumer_group_describe import (
    describe_consumer_groups,
    supports_consumer_group_describe,
)
from strom.client.aio.group_coordinators import COORDINATOR_ERRORS
from strom.client.aio.group_offsets_admin import GroupOffsetsAdminMixin
from strom.client.errors import error_for, raise_for
from strom.client.group_types import (
    CONSUMER_PROTOCOL_TYPE,
    GROUP_STATES,
    ConsumerGroupLag,
    GroupDescription,
    GroupListing,
    MemberDescription,
    decode_assignment,
    lag_rows,
)
from strom.client.metadata import BrokerMetadata
from strom.common.types import TopicPartition
from strom.protocol.api_versions import ApiKey
from strom.protocol.errors import DecodeError, ErrorCode, KafkaError
from strom.protocol.generated.delete_groups import DeleteGroupsRequest, DeleteGroupsResponse
from strom.protocol.generated.describe_groups import DescribeGroupsRequest, DescribeGroupsResponse
from strom.protocol.generated.list_groups import ListGroupsRequest, ListGroupsResponse


class GroupAdminMixin(GroupOffsetsAdminMixin):
    """Group operations; the host class provides ``client``, ``_timeout_ms``,
    ``_coordinators`` and ``list_offsets``."""

    if TYPE_CHECKING:

        async def list_offsets(
            self, specs: Mapping[TopicPartition, int], *, isolation_level: int = 0
        ) -> dict[TopicPartition, OffsetAndTimestamp]:
            """ListOffsets, provided by the host class (:meth:`AIOAdmin.list_offsets`)."""

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
