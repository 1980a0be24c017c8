"""TxnOffsetCommit: a transactional producer commits a consumer group's offsets.

The offsets go to the group's partition of ``__consumer_offsets`` as a
transactional batch of the producer (no sequence, like Kafka's coordinator
writes) and stay pending in the group coordinator until the transaction's
marker reaches that partition (``TxnRuntime.write_marker`` completes them).
The partition must have been added to the transaction (AddOffsetsToTxn):
KIP-890 verification as for Produce.
"""

from __future__ import annotations

from strom.broker.broker import Broker
from strom.broker.handlers import handles
from strom.broker.txn_verification import verify_partition
from strom.common.names import OFFSETS_TOPIC
from strom.common.types import TopicPartition
from strom.coordinator.group.offsets import OffsetCommit
from strom.coordinator.group.result import map_store_error
from strom.protocol.api_versions import ApiKey
from strom.protocol.append_origin import AppendOrigin
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.frame import RequestHeader
from strom.protocol.generated.txn_offset_commit import (
    TxnOffsetCommitRequest,
    TxnOffsetCommitResponse,
)
from strom.protocol.records import build_batch

R = TxnOffsetCommitResponse
Key = tuple[str, int]

# Verification answers a TxnOffsetCommit client retries (NOT_ENOUGH_REPLICAS is for Produce).
_VERIFY_RETRY = frozenset({ErrorCode.NOT_ENOUGH_REPLICAS})


def _response(keys: list[Key], errors: dict[Key, ErrorCode]) -> TxnOffsetCommitResponse:
    by_topic: dict[str, list[R.TxnOffsetCommitResponsePartition]] = {}
    for topic, partition in keys:
        by_topic.setdefault(topic, []).append(
            R.TxnOffsetCommitResponsePartition(partition, errors[(topic, partition)])
        )
    return R(topics=[R.TxnOffsetCommitResponseTopic(t, ps) for t, ps in by_topic.items()])


def _exists(broker: Broker, topic: str, partition: int) -> bool:
    info = broker.topic(topic)
    return info is not None and 0 <= partition < len(info.partitions)


async def _commit(
    broker: Broker, header: RequestHeader, req: TxnOffsetCommitRequest
) -> dict[Key, ErrorCode]:
    offsets = [
        OffsetCommit(
            t.name,
            p.partition_index,
            p.committed_offset,
            p.committed_leader_epoch,
            p.committed_metadata,
        )
        for t in req.topics
        for p in t.partitions
    ]
    keys = [(o.topic, o.partition) for o in offsets]
    try:
        partition, shard = broker.groups.shard(req.group_id)
    except KafkaError as e:
        return dict.fromkeys(keys, ErrorCode(e.code))
    tp = TopicPartition(OFFSETS_TOPIC, partition)
    verified = await verify_partition(
        broker, req.transactional_id, tp, req.producer_id, req.producer_epoch
    )
    if verified:
        if verified in _VERIFY_RETRY:
            verified = ErrorCode.COORDINATOR_LOAD_IN_PROGRESS
        return dict.fromkeys(keys, verified)
    now = broker.now_ms()
    v3 = header.api_version >= 3
    error = shard.txn_commit_error(
        req.group_id,
        req.generation_id if v3 else -1,
        req.member_id if v3 else "",
        req.group_instance_id if v3 else None,
        now,
    )
    if error is not None:
        return dict.fromkeys(keys, error)
    errors, pending, records = shard.txn_offset_records(
        req.group_id, offsets, now, lambda t, p: _exists(broker, t, p)
    )
    if not records:
        return errors
    batch = build_batch(
        [(r.key, r.value, (), now) for r in records],
        producer_id=req.producer_id,
        producer_epoch=req.producer_epoch,
        is_transactional=True,
    )
    try:
        broker.replicas.append(tp, batch, -1, now, origin=AppendOrigin.COORDINATOR)
        code = ErrorCode.NONE
    except KafkaError as e:
        code = ErrorCode(e.code)
        if code != ErrorCode.INVALID_PRODUCER_EPOCH:
            code = map_store_error(code, offsets=True)
    if code == ErrorCode.NONE:
        shard.add_pending_txn_offsets(req.producer_id, req.group_id, pending)
    errors.update(dict.fromkeys(pending, code))
    return errors


@handles(ApiKey.TXN_OFFSET_COMMIT)
async def handle_txn_offset_commit(
    broker: Broker, header: RequestHeader, req: TxnOffsetCommitRequest
) -> TxnOffsetCommitResponse:
    errors = await _commit(broker, header, req)
    keys = [(t.name, p.partition_index) for t in req.topics for p in t.partitions]
    return _response(keys, errors)
