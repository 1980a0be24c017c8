"""ListOffsets, OffsetForLeaderEpoch and DeleteRecords."""

from __future__ import annotations

import asyncio

from strom.broker.broker import Broker
from strom.broker.handlers import handles
from strom.common.types import TopicPartition
from strom.protocol.api_versions import ApiKey
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.frame import RequestHeader
from strom.protocol.generated.delete_records import DeleteRecordsRequest, DeleteRecordsResponse
from strom.protocol.generated.list_offsets import ListOffsetsRequest, ListOffsetsResponse
from strom.protocol.generated.offset_for_leader_epoch import (
    OffsetForLeaderEpochRequest,
    OffsetForLeaderEpochResponse,
)
from strom.replication.partition import READ_COMMITTED
from strom.storage.checkpoint import LOG_START_OFFSET_CHECKPOINT

LATEST = -1
EARLIEST = -2
MAX_TIMESTAMP = -3
EARLIEST_LOCAL = -4  # KIP-405: the local log start; without tiered storage, the log start
LATEST_TIERED = -5  # KIP-1005: nothing is tiered here, so offset -1

ListPartition = ListOffsetsResponse.ListOffsetsPartitionResponse
EpochEndOffset = OffsetForLeaderEpochResponse.EpochEndOffset


def _list_partition(
    broker: Broker, tp: TopicPartition, p: ListOffsetsRequest.ListOffsetsPartition, isolation: int
) -> ListPartition:
    out = ListPartition(partition_index=tp.partition, timestamp=-1, offset=-1, leader_epoch=-1)
    try:
        part = broker.replicas.leader_partition(tp, p.current_leader_epoch)
        log_start, hw, lso = part.offset_snapshot()
        upper = lso if isolation == READ_COMMITTED else hw
        ts = p.timestamp
        # Kafka's epochs: the leader's for LATEST, the log start's for EARLIEST, the
        # found batch's for a timestamp; -1 with offset -1 when nothing matches.
        if ts == LATEST:
            out.offset, out.leader_epoch = upper, part.leader_epoch
        elif ts in (EARLIEST, EARLIEST_LOCAL):
            out.offset, out.leader_epoch = log_start, part.log.earliest().leader_epoch
        elif ts == LATEST_TIERED:
            pass  # offset -1, epoch -1: Kafka's answer without remote storage
        elif ts < 0 and ts != MAX_TIMESTAMP:
            raise KafkaError(ErrorCode.UNSUPPORTED_VERSION, f"timestamp {ts}")
        else:
            hit = (
                part.log.max_timestamp_offset()
                if ts == MAX_TIMESTAMP
                else part.log.fetch_offset_by_timestamp(ts)
            )
            if hit is not None and hit.offset < upper:
                out.timestamp, out.offset, out.leader_epoch = (
                    hit.timestamp,
                    hit.offset,
                    (hit.leader_epoch),
                )
    except KafkaError as e:
        out.error_code = e.code
        out.leader_epoch = -1
    except OSError:
        out.error_code = ErrorCode.KAFKA_STORAGE_ERROR
    return out


@handles(ApiKey.LIST_OFFSETS)
async def handle_list_offsets(
    broker: Broker, header: RequestHeader, req: ListOffsetsRequest
) -> ListOffsetsResponse:
    topics = []
    for t in req.topics:
        parts = [
            _list_partition(
                broker, TopicPartition(t.name, p.partition_index), p, req.isolation_level
            )
            for p in t.partitions
        ]
        topics.append(ListOffsetsResponse.ListOffsetsTopicResponse(name=t.name, partitions=parts))
    return ListOffsetsResponse(throttle_time_ms=0, topics=topics)


def _epoch_end_offset(
    broker: Broker, tp: TopicPartition, p: OffsetForLeaderEpochRequest.OffsetForLeaderPartition
) -> EpochEndOffset:
    """Kafka's lastOffsetForLeaderEpoch: the largest epoch <= the requested one and the
    offset where it ended (the log end offset for the current epoch); -1/-1 when the
    log holds no such epoch."""
    out = EpochEndOffset(partition=p.partition, leader_epoch=-1, end_offset=-1)
    try:
        part = broker.replicas.leader_partition(tp, p.current_leader_epoch)
        out.leader_epoch, out.end_offset = part.log.end_offset_for_epoch(p.leader_epoch)
    except KafkaError as e:
        out.error_code, out.leader_epoch, out.end_offset = e.code, -1, -1
    except OSError:
        out.error_code = ErrorCode.KAFKA_STORAGE_ERROR
    return out


@handles(ApiKey.OFFSET_FOR_LEADER_EPOCH)
async def handle_offset_for_leader_epoch(
    broker: Broker, header: RequestHeader, req: OffsetForLeaderEpochRequest
) -> OffsetForLeaderEpochResponse:
    topics = [
        OffsetForLeaderEpochResponse.OffsetForLeaderTopicResult(
            topic=t.topic,
            partitions=[
                _epoch_end_offset(broker, TopicPartition(t.topic, p.partition), p)
                for p in t.partitions
            ],
        )
        for t in req.topics
    ]
    return OffsetForLeaderEpochResponse(throttle_time_ms=0, topics=topics)


DeletePartition = DeleteRecordsResponse.DeleteRecordsPartitionResult


def _delete_one(broker: Broker, tp: TopicPartition, offset: int, out: DeletePartition) -> int:
    """Move the leader's log start offset; the offset the followers must reach (-1:
    none to wait for); the error goes into ``out``."""
    try:
        part = broker.replicas.leader_partition(tp)
        if offset == -1:
            offset = part.log.high_watermark
        if offset < 0:
            raise KafkaError(ErrorCode.OFFSET_OUT_OF_RANGE)
        part.log.delete_records_before(offset, broker.now_ms())
        out.low_watermark = part.log.log_start_offset
        broker.replicas.on_high_watermark(tp)  # followers' fetches return the new start
        return offset if part.followers else -1
    except KafkaError as e:
        out.error_code = e.code
    except OSError:
        out.error_code = ErrorCode.KAFKA_STORAGE_ERROR
    return -1


async def _wait_for_followers(
    broker: Broker, waiting: list[tuple[TopicPartition, DeletePartition, int]], timeout_ms: int
) -> None:
    """Kafka's delayed DeleteRecords: answered once every in-sync replica's log start
    offset reached the new one (REQUEST_TIMED_OUT after the request's timeout)."""
    for tp, out, offset in waiting:
        code = await broker.replicas.wait_for_low_watermark(tp, offset, timeout_ms / 1000)
        part = broker.replicas.partitions.get(tp)
        if code != ErrorCode.NONE:
            out.error_code = code
        elif part is not None:
            out.low_watermark = part.low_watermark()


@handles(ApiKey.DELETE_RECORDS)
async def handle_delete_records(
    broker: Broker, header: RequestHeader, req: DeleteRecordsRequest
) -> DeleteRecordsResponse:
    topics = []
    waiting: list[tuple[TopicPartition, DeletePartition, int]] = []
    for t in req.topics:
        parts = []
        for p in t.partitions:
            out = DeletePartition(partition_index=p.partition_index, low_watermark=-1)
            tp = TopicPartition(t.name, p.partition_index)
            offset = _delete_one(broker, tp, p.offset, out)
            if offset >= 0:
                waiting.append((tp, out, offset))
            parts.append(out)
        topics.append(DeleteRecordsResponse.DeleteRecordsTopicResult(name=t.name, partitions=parts))
    # The new log start offsets reach the disk before the answer: a crash after it cannot
    # bring deleted records back.
    offsets = broker.logs.checkpoint_offsets(LOG_START_OFFSET_CHECKPOINT)
    await asyncio.to_thread(broker.logs.write_checkpoint, LOG_START_OFFSET_CHECKPOINT, offsets)
    await _wait_for_followers(broker, waiting, req.timeout_ms)
    return DeleteRecordsResponse(throttle_time_ms=0, topics=topics)
