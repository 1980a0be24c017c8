"""Consumer-group offsets admin operations (OffsetFetch, OffsetCommit, OffsetDelete),
mixed into :class:`AIOAdmin` through :class:`GroupAdminMixin`; each request goes to
the group's coordinator (see group_coordinators.py)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from strom.client.aio.connection import BrokerConnection
from strom.client.aio.group_coordinators import COORDINATOR_ERRORS, GroupCoordinatorsMixin
from strom.client.errors import error_for, raise_for
from strom.client.group_types import OffsetAndMetadata, group_partitions
from strom.common.types import TopicPartition
from strom.protocol.api_versions import ApiKey
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.generated.offset_commit import OffsetCommitRequest, OffsetCommitResponse
from strom.protocol.generated.offset_delete import OffsetDeleteRequest, OffsetDeleteResponse
from strom.protocol.generated.offset_fetch import OffsetFetchRequest, OffsetFetchResponse

_OC = OffsetCommitRequest
_OF = OffsetFetchRequest
_OD = OffsetDeleteRequest


class GroupOffsetsAdminMixin(GroupCoordinatorsMixin):
    """Committed offsets of groups: listed, altered and deleted."""

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
