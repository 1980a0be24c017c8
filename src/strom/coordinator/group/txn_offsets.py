"""TxnOffsetCommit: offsets committed inside a transaction (KIP-98, KIP-447).

The offsets are written to ``__consumer_offsets`` as a transactional batch of
the producer (the caller builds it from :meth:`TxnOffsetOps.txn_offset_records`)
and held as pending per producer id; they become the group's committed
offsets only when the COMMIT marker of the transaction reaches the partition,
and are dropped on ABORT (:meth:`TxnOffsetOps.complete_txn`). Replay at load
does the same from the log: records of transactional batches go to
:meth:`TxnOffsetOps.replay_txn`, markers to ``complete_txn``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from strom.coordinator.group.base import OffsetAndMetadata, ShardBase
from strom.coordinator.group.consumer.admin import commit_error
from strom.coordinator.group.offsets import OffsetCommit
from strom.coordinator.group.records import (
    CoordinatorRecord,
    offset_commit_record,
)
from strom.coordinator.group.state import ClassicGroup
from strom.protocol.errors import ErrorCode
from strom.protocol.group_records import (
    OffsetCommitKey,
    OffsetCommitValue,
    decode_key,
    decode_offset_commit_value,
)

TopicPartitionKey = tuple[str, int]
GroupOffsets = dict[str, dict[TopicPartitionKey, OffsetAndMetadata]]


class TxnOffsetOps(ShardBase):
    def _pending(self) -> dict[int, GroupOffsets]:
        pending: dict[int, GroupOffsets] = self.pending_txn_offsets
        return pending

    def txn_commit_error(
        self,
        group_id: str,
        generation_id: int,
        member_id: str,
        group_instance_id: str | None,
        now_ms: int,
    ) -> ErrorCode | None:
        """Kafka's checks of a TxnOffsetCommit; an unknown group is created (Empty)."""
        consumer_group = self.consumer_groups.get(group_id)
        if consumer_group is not None:
            return commit_error(consumer_group, member_id, generation_id, 9, transactional=True)
        group = self.groups.get(group_id)
        if group is None:
            self.groups[group_id] = ClassicGroup(group_id, state_timestamp_ms=now_ms)
            return None
        return self.classic_commit_error(
            group, generation_id, member_id, group_instance_id, transactional=True
        )

    def txn_offset_records(
        self,
        group_id: str,
        offsets: Sequence[OffsetCommit],
        now_ms: int,
        partition_exists: Callable[[str, int], bool] = lambda topic, partition: True,
    ) -> tuple[
        dict[TopicPartitionKey, ErrorCode],
        dict[TopicPartitionKey, OffsetAndMetadata],
        list[CoordinatorRecord],
    ]:
        """(errors of refused partitions, offsets to hold as pending, records to write)."""
        errors: dict[TopicPartitionKey, ErrorCode] = {}
        pending: dict[TopicPartitionKey, OffsetAndMetadata] = {}
        for o in offsets:
            key = (o.topic, o.partition)
            metadata = o.metadata if o.metadata is not None else ""
            if not partition_exists(o.topic, o.partition):
                errors[key] = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
            elif len(metadata) > self.config.offset_metadata_max_bytes:
                errors[key] = ErrorCode.OFFSET_METADATA_TOO_LARGE
            else:
                pending[key] = OffsetAndMetadata(o.offset, o.leader_epoch, metadata, now_ms)
        records = [
            offset_commit_record(
                group_id,
                key[0],
                key[1],
                OffsetCommitValue(v.offset, v.leader_epoch, v.metadata, v.commit_timestamp_ms),
            )
            for key, v in pending.items()
        ]
        return errors, pending, records

    def add_pending_txn_offsets(
        self,
        producer_id: int,
        group_id: str,
        offsets: dict[TopicPartitionKey, OffsetAndMetadata],
    ) -> None:
        """The transactional batch of ``offsets`` was appended."""
        self._pending().setdefault(producer_id, {}).setdefault(group_id, {}).update(offsets)

    def replay_txn(self, producer_id: int, key: bytes, value: bytes | None) -> None:
        """A record of a transactional batch (at load): an offset commit still pending."""
        decoded = decode_key(key)
        if not isinstance(decoded, OffsetCommitKey) or value is None:
            return
        v = decode_offset_commit_value(value)
        offset = OffsetAndMetadata(
            v.offset, v.leader_epoch, v.metadata, v.commit_timestamp, v.expire_timestamp
        )
        tp = (decoded.topic, decoded.partition)
        self.add_pending_txn_offsets(producer_id, decoded.group, {tp: offset})

    def complete_txn(self, producer_id: int, commit: bool) -> None:
        """A transaction marker of ``producer_id``: materialise (COMMIT) or drop (ABORT)."""
        by_group = self._pending().pop(producer_id, None)
        if not commit or not by_group:
            return
        for group_id, offsets in by_group.items():
            if group_id not in self.consumer_groups:
                self.groups.setdefault(group_id, ClassicGroup(group_id))
            self.offsets.setdefault(group_id, {}).update(offsets)

    def has_pending_txn_offsets(self, group_id: str, tp: TopicPartitionKey) -> bool:
        """KIP-447: an OffsetFetch with require_stable answers UNSTABLE_OFFSET_COMMIT then."""
        return any(tp in by_group.get(group_id, {}) for by_group in self._pending().values())
