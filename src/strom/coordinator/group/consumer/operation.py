"""One operation on a consumer group: the records it writes, applied as they are written.

Every change of a consumer group goes through :meth:`Operation.write`, which encodes
the record for ``__consumer_offsets`` and replays it on the shard at once, so the
state in memory is always what the log replays to. The response waits for the
append (:meth:`Operation.finish`); when the append fails, or the operation raises
half way, the group is put back as it was before the operation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from strom.coordinator.group.consumer.group import ConsumerGroup
from strom.coordinator.group.records import CoordinatorRecord, group_metadata_record
from strom.coordinator.group.result import CoordinatorResult, map_store_error
from strom.protocol import consumer_group_records as cg
from strom.protocol.errors import ErrorCode

if TYPE_CHECKING:
    from strom.coordinator.group.base import ShardBase
    from strom.coordinator.group.state import ClassicGroup


def encode(key: cg.ConsumerGroupKey, value: cg.ConsumerGroupValue | None) -> CoordinatorRecord:
    return CoordinatorRecord(cg.encode_key(key), None if value is None else cg.encode_value(value))


class Operation:
    def __init__(self, shard: ShardBase, group_id: str, now_ms: int = 0) -> None:
        self.shard = shard
        self.group_id = group_id
        self.now_ms = now_ms
        existing = shard.consumer_groups.get(group_id)
        self.before: ConsumerGroup | None = existing.snapshot() if existing is not None else None
        self.classic_before: ClassicGroup | None = shard.groups.get(group_id)
        self.records: list[CoordinatorRecord] = []
        self.side = CoordinatorResult()  # answers to requests the operation ends (parked joins)
        self._new = ConsumerGroup(group_id) if existing is None else None

    @property
    def group(self) -> ConsumerGroup:
        """The group as the records written so far make it (new and empty before any)."""
        current = self.shard.consumer_groups.get(self.group_id)
        if current is None:
            if self._new is None:  # deleted by this operation
                self._new = ConsumerGroup(self.group_id)
            return self._new
        return current

    def write(self, record_type: int, sub_key: str, value: cg.ConsumerGroupValue | None) -> None:
        key = cg.ConsumerGroupKey(record_type, self.group_id, sub_key)
        self.records.append(encode(key, value))
        if value is not None and self.group_id not in self.shard.consumer_groups:
            self.shard.adopt_consumer_group(self.group)
        self.shard.replay_consumer_record(key, value)

    def delete_classic_group(self) -> None:
        """An empty classic group of this id gives way to the consumer group."""
        self.records.append(group_metadata_record(self.group_id, None))
        self.shard.groups.pop(self.group_id, None)

    def rollback(self) -> None:
        groups = self.shard.consumer_groups
        if self.before is None:
            groups.pop(self.group_id, None)
        else:
            groups[self.group_id] = self.before
        if self.classic_before is not None:
            self.shard.groups[self.group_id] = self.classic_before
        else:
            self.shard.groups.pop(self.group_id, None)

    def finish(
        self,
        handle: int | None,
        response: Any,
        on_error: Callable[[ErrorCode], Any],
        on_success: Callable[[], None] = lambda: None,
    ) -> CoordinatorResult:
        """Respond once the records are appended (then ``on_success()``); roll back and
        answer ``on_error(code)`` if the append fails."""
        result = self.side
        if not self.records:
            on_success()
            result.respond(handle, response)
            return result
        result.records = self.records

        def then(error: ErrorCode) -> CoordinatorResult:
            out = CoordinatorResult()
            if error == ErrorCode.NONE:
                on_success()
                out.respond(handle, response)
            else:
                self.rollback()
                out.respond(handle, on_error(map_store_error(error, offsets=False)))
            return out

        result.then.append(then)
        return result
