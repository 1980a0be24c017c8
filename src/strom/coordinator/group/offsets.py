"""OffsetCommit, OffsetFetch, OffsetDelete and offset expiry (offsets.retention.minutes).

Committed offsets change only through records: a commit returns its records
and applies them (as replay does) once they are appended, so the state in
memory is always what the log replays to. Metadata strings are stored and
returned exactly; a null metadata is stored as "" (as Kafka does).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from strom.coordinator.group.base import OffsetAndMetadata, ShardBase
from strom.coordinator.group.consumer.admin import commit_error, fetch_error, group_tombstones
from strom.coordinator.group.consumer.operation import Operation
from strom.coordinator.group.records import (
    CoordinatorRecord,
    group_metadata_record,
    offset_commit_record,
)
from strom.coordinator.group.result import CoordinatorResult, map_store_error
from strom.coordinator.group.state import ClassicGroup, GroupState
from strom.protocol.errors import ErrorCode
from strom.protocol.group_records import OffsetCommitValue

S = GroupState
TopicPartitionKey = tuple[str, int]


@dataclass(frozen=True, slots=True)
class OffsetCommit:
    topic: str
    partition: int
    offset: int
    leader_epoch: int = -1
    metadata: str | None = ""
    commit_timestamp_ms: int = -1  # OffsetCommit v1 only; -1: now


@dataclass(frozen=True, slots=True)
class CommitRequest:
    group_id: str
    generation_id: int = -1
    member_id: str = ""
    group_instance_id: str | None = None
    retention_time_ms: int = -1  # OffsetCommit v2-4; -1: broker default
    partitions: Sequence[OffsetCommit] = ()
    api_version: int = 9  # members of consumer groups using the consumer protocol need v9+


CommitErrors = dict[TopicPartitionKey, ErrorCode]


class OffsetOps(ShardBase):
    # -- commit -------------------------------------------------------------------------

    def commit_offsets(
        self,
        handle: int,
        req: CommitRequest,
        now_ms: int,
        partition_exists: Callable[[str, int], bool] = lambda topic, partition: True,
    ) -> CoordinatorResult:
        """Responds with a ``dict[(topic, partition)] -> ErrorCode``."""
        result = CoordinatorResult()
        keys = [(p.topic, p.partition) for p in req.partitions]
        error = self._commit_error(req, now_ms)
        if error is not None:
            result.respond(handle, dict.fromkeys(keys, error))
            return result
        group = self.groups.get(req.group_id)
        if group is not None and req.member_id in group.members:
            self.schedule_heartbeat(group, group.members[req.member_id], now_ms)
        errors, pending = self._commit_partitions(req, now_ms, partition_exists)
        if not pending:
            result.respond(handle, errors)
            return result
        result.records += [self._offset_record(req.group_id, k, v) for k, v in pending.items()]

        def then(write_error: ErrorCode) -> CoordinatorResult:
            out = CoordinatorResult()
            code = map_store_error(write_error, offsets=True)
            if code == ErrorCode.NONE:
                if req.group_id not in self.consumer_groups:
                    self.get_or_create_group(req.group_id, now_ms)
                self.offsets.setdefault(req.group_id, {}).update(pending)
            for key in pending:
                errors[key] = code
            out.respond(handle, {k: errors[k] for k in keys})
            return out

        result.then.append(then)
        return result

    def _commit_partitions(
        self, req: CommitRequest, now_ms: int, partition_exists: Callable[[str, int], bool]
    ) -> tuple[CommitErrors, dict[TopicPartitionKey, OffsetAndMetadata]]:
        """(errors of refused partitions, the offsets to write)."""
        errors: CommitErrors = {}
        pending: dict[TopicPartitionKey, OffsetAndMetadata] = {}
        for p in req.partitions:
            key = (p.topic, p.partition)
            metadata = p.metadata if p.metadata is not None else ""
            if not partition_exists(p.topic, p.partition):
                errors[key] = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
            elif len(metadata) > self.config.offset_metadata_max_bytes:
                errors[key] = ErrorCode.OFFSET_METADATA_TOO_LARGE
            else:
                commit_ts = now_ms if p.commit_timestamp_ms == -1 else p.commit_timestamp_ms
                expire = -1 if req.retention_time_ms == -1 else now_ms + req.retention_time_ms
                pending[key] = OffsetAndMetadata(
                    p.offset, p.leader_epoch, metadata, commit_ts, expire
                )
        return errors, pending

    def _commit_error(self, req: CommitRequest, now_ms: int) -> ErrorCode | None:
        consumer_group = self.consumer_groups.get(req.group_id)
        if consumer_group is not None:
            epoch, member_id = req.generation_id, req.member_id
            return commit_error(consumer_group, member_id, epoch, req.api_version, False)
        group = self.groups.get(req.group_id)
        if group is None:
            if req.generation_id >= 0:
                return ErrorCode.ILLEGAL_GENERATION
            self.get_or_create_group(req.group_id, now_ms)
            return None
        error = self.classic_commit_error(
            group, req.generation_id, req.member_id, req.group_instance_id, transactional=False
        )
        if error is None and group.is_(S.COMPLETING_REBALANCE):
            return ErrorCode.REBALANCE_IN_PROGRESS
        return error

    @staticmethod
    def _offset_record(
        group_id: str, key: TopicPartitionKey, o: OffsetAndMetadata | None
    ) -> CoordinatorRecord:
        value = None
        if o is not None:
            value = OffsetCommitValue(
                o.offset, o.leader_epoch, o.metadata, o.commit_timestamp_ms, o.expire_timestamp_ms
            )
        return offset_commit_record(group_id, key[0], key[1], value)

    # -- fetch --------------------------------------------------------------------------

    def fetch_offsets(
        self, group_id: str, partitions: Sequence[TopicPartitionKey] | None
    ) -> dict[TopicPartitionKey, OffsetAndMetadata | None]:
        """Committed offsets (None: nothing committed); all of the group's when ``partitions``
        is None. Unknown groups have no offsets, whatever their state."""
        exists = self.live_group(group_id) is not None or group_id in self.consumer_groups
        committed = self.offsets.get(group_id, {}) if exists else {}
        if partitions is None:
            return dict(sorted(committed.items()))
        return {key: committed.get(key) for key in partitions}

    def fetch_member_error(
        self, group_id: str, member_id: str | None, member_epoch: int
    ) -> ErrorCode | None:
        """OffsetFetch v9+ from a member of a consumer group: its id and epoch must match."""
        consumer_group = self.consumer_groups.get(group_id)
        if consumer_group is None:
            return None
        return fetch_error(consumer_group, member_id, member_epoch)

    # -- delete ---------------------------------------------------------------------------

    def delete_offsets(
        self, group_id: str, partitions: Sequence[TopicPartitionKey]
    ) -> tuple[ErrorCode, CommitErrors, list[CoordinatorRecord]]:
        """OffsetDelete: (group error, partition errors, tombstones to append)."""
        group = self.live_group(group_id)
        consumer_group = self.consumer_groups.get(group_id)
        if group is None and consumer_group is None:
            return ErrorCode.GROUP_ID_NOT_FOUND, {}, []
        errors: CommitErrors = {}
        eligible: list[TopicPartitionKey] = []
        if consumer_group is not None:
            subscribed = consumer_group.subscribed_topic_names()
            for key in partitions:
                if key[0] in subscribed:
                    errors[key] = ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC
                else:
                    eligible.append(key)
        elif group is None:
            return ErrorCode.GROUP_ID_NOT_FOUND, {}, []
        elif group.is_(S.EMPTY):
            eligible = list(partitions)
        elif group.protocol_type == "consumer":
            subscribed = group.subscribed_topics() or frozenset()
            for key in partitions:
                if key[0] in subscribed:
                    errors[key] = ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC
                else:
                    eligible.append(key)
        else:
            return ErrorCode.NON_EMPTY_GROUP, {}, []
        records = self._remove_offsets(group_id, eligible)
        errors.update(dict.fromkeys(eligible, ErrorCode.NONE))
        return ErrorCode.NONE, errors, records

    def _remove_offsets(
        self, group_id: str, keys: Sequence[TopicPartitionKey]
    ) -> list[CoordinatorRecord]:
        committed = self.offsets.get(group_id, {})
        records = []
        for key in keys:
            if committed.pop(key, None) is not None:
                records.append(self._offset_record(group_id, key, None))
        if not committed:
            self.offsets.pop(group_id, None)
        return records

    def delete_group_records(self, group: ClassicGroup, now_ms: int) -> list[CoordinatorRecord]:
        """Mark ``group`` Dead and forget it: tombstones for its offsets and its metadata."""
        group.transition_to(S.DEAD, now_ms)
        records = self._remove_offsets(group.group_id, list(self.offsets.get(group.group_id, {})))
        records.append(group_metadata_record(group.group_id, None))
        del self.groups[group.group_id]
        return records

    # -- expiry ------------------------------------------------------------------------------

    def expire_offsets(self, now_ms: int, retention_ms: int) -> list[CoordinatorRecord]:
        """Kafka's cleanupGroupMetadata: expire offsets, then drop empty groups without offsets."""
        records: list[CoordinatorRecord] = []
        for group in list(self.groups.values()):
            expired = self._expired_offsets(group, now_ms, retention_ms)
            records += self._remove_offsets(group.group_id, expired)
            if (
                group.is_(S.EMPTY)
                and not group.members
                and not group.pending_members
                and group.group_id not in self.offsets
            ):
                records += self.delete_group_records(group, now_ms)
        for group_id in sorted(self.consumer_groups):
            records += self._expire_consumer_group(group_id, now_ms, retention_ms)
        return records

    def _expire_consumer_group(
        self, group_id: str, now_ms: int, retention_ms: int
    ) -> list[CoordinatorRecord]:
        """Offsets of topics the group no longer subscribes to expire by their commit
        time; an empty consumer group without offsets is then deleted."""
        group = self.consumer_groups[group_id]
        subscribed = group.subscribed_topic_names()
        expired = []
        for key, o in self.offsets.get(group_id, {}).items():
            expire = o.expire_timestamp_ms
            due = (
                now_ms >= expire if expire >= 0 else now_ms - o.commit_timestamp_ms >= retention_ms
            )
            if key[0] not in subscribed and due:
                expired.append(key)
        records = self._remove_offsets(group_id, expired)
        if group.is_empty() and group_id not in self.offsets:
            op = Operation(self, group_id)
            group_tombstones(op)
            records += op.records
        return records

    def _expired_offsets(
        self, group: ClassicGroup, now_ms: int, retention_ms: int
    ) -> list[TopicPartitionKey]:
        committed = self.offsets.get(group.group_id, {})
        if group.protocol_type is not None and not group.is_(S.EMPTY):
            subscribed = group.subscribed_topics()
            if subscribed is None or not group.is_(S.STABLE):
                return []
            base = {
                k: o.commit_timestamp_ms for k, o in committed.items() if k[0] not in subscribed
            }
        elif group.protocol_type is not None:
            since = group.state_timestamp_ms
            base = {k: since if since >= 0 else o.commit_timestamp_ms for k, o in committed.items()}
        else:
            base = {k: o.commit_timestamp_ms for k, o in committed.items()}
        expired = []
        for key, base_ms in base.items():
            expire = committed[key].expire_timestamp_ms
            if (now_ms >= expire) if expire >= 0 else (now_ms - base_ms >= retention_ms):
                expired.append(key)
        return expired
