"""Fetch: serve file ranges of the log, with long polling.

Sessionless (KIP-227 refusal): full fetch requests are answered with session
id 0, which tells the client no session was created; a request naming a
session gets FETCH_SESSION_ID_NOT_FOUND. The first batch of the first
partition with data is returned whole even above the byte limits (KIP-74).
"""

from __future__ import annotations

import logging

from strom.broker.broker import Broker, handles
from strom.common.types import TopicPartition
from strom.protocol.api_versions import ApiKey
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.frame import RequestHeader
from strom.protocol.generated.fetch import FetchRequest, FetchResponse
from strom.protocol.wire import ChunkedRecords
from strom.replication.partition import READ_COMMITTED, READ_UNCOMMITTED, Partition, ReadResult
from strom.replication.replica_selector import ReplicaView, candidates, select_read_replica
from strom.replication.truncation import diverging

log = logging.getLogger(__name__)
PartitionData = FetchResponse.PartitionData


class _FetchState:
    def __init__(self, req: FetchRequest, version: int, fetch_max_bytes: int) -> None:
        self.req = req
        self.version = version
        self.replica_id = req.replica_state.replica_id if version >= 15 else req.replica_id
        cap = req.max_bytes if req.max_bytes > 0 else 0
        # fetch.max.bytes bounds consumers; followers are bounded by their own request
        self.remaining = cap if self.replica_id >= 0 else min(cap, fetch_max_bytes)
        self.total = 0
        # an error, a diverging epoch or a preferred read replica: answered at once, not
        # held for min_bytes (Kafka's ReplicaManager.fetchMessages)
        self.answer_now = False
        self.leaders: set[int] = set()  # named in current_leader (KIP-951 node endpoints)


def _preferred_replica(
    broker: Broker, st: _FetchState, part: Partition, fp: FetchRequest.FetchPartition
) -> int | None:
    """KIP-392: the replica a consumer in another rack should read from, when it is not
    this leader (None: read here)."""
    if not part.is_leader or st.version < 11 or not broker.read_from_closest_replica:
        return None
    racks = {b.node_id: b.rack for b in broker.image.brokers.values()}
    now = broker.now_ms()
    leader = ReplicaView(broker.node_id, racks.get(broker.node_id), part.log.log_end_offset, 0)
    followers = candidates(fp.fetch_offset, racks, part.follower_positions(), now)
    chosen = select_read_replica(st.req.rack_id, leader, followers)
    return None if chosen == broker.node_id else chosen


def _follower_read(
    broker: Broker, st: _FetchState, tp: TopicPartition, fp: FetchRequest.FetchPartition
) -> ReadResult | tuple[int, int]:
    """A follower's fetch: the diverging epoch when its log went astray (Fetch v12+),
    else the records up to the log end; its fetch position moves the ISR and the
    high watermark."""
    part = broker.replicas.leader_partition(tp, fp.current_leader_epoch)
    div = diverging(fp.last_fetched_epoch, fp.fetch_offset, part.log.end_offset_for_epoch)
    if div is not None:
        return div
    limit = max(min(fp.partition_max_bytes, st.remaining), 0)
    res = part.read_records(
        fp.fetch_offset, limit, READ_UNCOMMITTED, st.total == 0, from_follower=True
    )
    cluster = broker.cluster
    epoch = st.req.replica_state.replica_epoch
    if part.update_follower_fetch_state(
        st.replica_id, fp.fetch_offset, fp.log_start_offset, broker.now_ms(), epoch
    ):
        broker.replicas.on_high_watermark(tp)
    broker.replicas.on_follower_fetch(tp)
    if cluster is not None:
        cluster.alter_partition.submit(part.maybe_expand_isr())
    return ReadResult(
        res.data, part.high_watermark, res.last_stable_offset, res.log_start_offset, []
    )


def _no_records(out: PartitionData, part: Partition) -> PartitionData:
    out.log_start_offset, out.high_watermark, out.last_stable_offset = part.offset_snapshot()
    out.records = b""
    return out


def _consumer_read(
    broker: Broker,
    st: _FetchState,
    tp: TopicPartition,
    fp: FetchRequest.FetchPartition,
    out: PartitionData,
) -> ReadResult | PartitionData:
    """A consumer's fetch: records up to the high watermark, or (KIP-392) the answer
    naming the replica to read from instead."""
    part = broker.replicas.get_partition(tp)
    part.check_leader_epoch(fp.current_leader_epoch)
    preferred = _preferred_replica(broker, st, part, fp)
    if preferred is not None:
        out.preferred_read_replica = preferred
        st.answer_now = True
        return _no_records(out, part)
    limit = min(fp.partition_max_bytes, st.remaining)
    return part.read_records(
        fp.fetch_offset,
        max(limit, 0),
        st.req.isolation_level,
        min_one_message=st.total == 0,
        on_follower=not part.is_leader and st.version >= 11,
    )


def _failed(
    broker: Broker, st: _FetchState, tp: TopicPartition, out: PartitionData, code: int
) -> PartitionData:
    st.answer_now = True
    out.error_code = code
    out.records = b""
    if code == ErrorCode.OFFSET_OUT_OF_RANGE:
        p = broker.replicas.partitions.get(tp)
        if p is not None:
            out.log_start_offset, out.high_watermark, out.last_stable_offset = p.offset_snapshot()
    elif code in (ErrorCode.NOT_LEADER_OR_FOLLOWER, ErrorCode.FENCED_LEADER_EPOCH):
        current = broker.image.partition(tp)  # KIP-951: where to go instead
        if current is not None and current.leader >= 0:
            out.current_leader = FetchResponse.LeaderIdAndEpoch(
                current.leader, current.leader_epoch
            )
            st.leaders.add(current.leader)
    return out


def _read_partition(
    broker: Broker, st: _FetchState, tp: TopicPartition, fp: FetchRequest.FetchPartition
) -> PartitionData:
    out = PartitionData(partition_index=tp.partition, high_watermark=-1, last_stable_offset=-1)
    try:
        if st.replica_id >= 0:
            found = _follower_read(broker, st, tp, fp)
            if isinstance(found, tuple):
                out.diverging_epoch = FetchResponse.EpochEndOffset(*found)
                st.answer_now = True
                return _no_records(out, broker.replicas.partitions[tp])
            res = found
        else:
            read = _consumer_read(broker, st, tp, fp, out)
            if isinstance(read, PartitionData):
                return read
            res = read
    except KafkaError as e:
        return _failed(broker, st, tp, out, e.code)
    except OSError:
        return _failed(broker, st, tp, out, ErrorCode.KAFKA_STORAGE_ERROR)
    out.high_watermark = res.high_watermark
    out.last_stable_offset = res.last_stable_offset
    out.log_start_offset = res.log_start_offset
    if st.req.isolation_level == READ_COMMITTED:
        out.aborted_transactions = [
            FetchResponse.AbortedTransaction(producer_id=a.producer_id, first_offset=a.first_offset)
            for a in res.aborted
        ]
    else:
        out.aborted_transactions = None
    if res.data is not None and res.data.slices:
        out.records = ChunkedRecords(list(res.data.slices))
        size = out.records.length
        st.total += size
        st.remaining -= size
    else:
        out.records = b""
    return out


def _topic_name(broker: Broker, topic_id: bytes) -> str | None:
    info = broker.image.topic_by_id(topic_id)
    return info.name if info is not None else broker.replicas.topic_names.get(topic_id)


def _read_all(broker: Broker, req: FetchRequest, version: int) -> tuple[FetchResponse, _FetchState]:
    st = _FetchState(req, version, broker.config.get_int("fetch.max.bytes"))
    responses: list[FetchResponse.FetchableTopicResponse] = []
    for ft in req.topics:
        name = ft.topic
        topic_error = None
        if version >= 13:
            found = _topic_name(broker, ft.topic_id)
            if found is None:
                topic_error = ErrorCode.UNKNOWN_TOPIC_ID
            else:
                name = found
        parts: list[PartitionData] = []
        for fp in ft.partitions:
            if topic_error is not None:
                st.answer_now = True
                parts.append(
                    PartitionData(
                        partition_index=fp.partition,
                        error_code=topic_error,
                        high_watermark=-1,
                        records=b"",
                    )
                )
                continue
            parts.append(_read_partition(broker, st, TopicPartition(name, fp.partition), fp))
        responses.append(
            FetchResponse.FetchableTopicResponse(topic=name, topic_id=ft.topic_id, partitions=parts)
        )
    endpoints = []
    for node in sorted(st.leaders):
        endpoint = broker.broker_endpoint(node)
        if endpoint is not None:
            host, port = endpoint
            rack = broker.image.brokers[node].rack
            endpoints.append(FetchResponse.NodeEndpoint(node, host, port, rack))
    resp = FetchResponse(
        throttle_time_ms=0,
        error_code=0,
        session_id=0,
        responses=responses,
        node_endpoints=endpoints,
    )
    return resp, st


def _requested(broker: Broker, req: FetchRequest, version: int) -> list[TopicPartition]:
    out: list[TopicPartition] = []
    for ft in req.topics:
        name = ft.topic
        if version >= 13:
            found = _topic_name(broker, ft.topic_id)
            if found is None:
                continue
            name = found
        out.extend(TopicPartition(name, fp.partition) for fp in ft.partitions)
    return out


@handles(ApiKey.FETCH)
async def handle_fetch(broker: Broker, header: RequestHeader, req: FetchRequest) -> FetchResponse:
    version = header.api_version
    if version >= 7 and req.session_id != 0:
        return FetchResponse(error_code=ErrorCode.FETCH_SESSION_ID_NOT_FOUND, session_id=0)
    if version >= 7 and req.session_epoch > 0:
        return FetchResponse(error_code=ErrorCode.INVALID_FETCH_SESSION_EPOCH, session_id=0)
    resp, st = _read_all(broker, req, version)
    if st.total >= req.min_bytes or req.max_wait_ms <= 0 or st.answer_now:
        return resp
    deadline = broker.now_ms() + req.max_wait_ms
    tps = _requested(broker, req, version)
    while True:
        wait_ms = deadline - broker.now_ms()
        if wait_ms <= 0:
            break
        await broker.replicas.wait_for_data(tps, wait_ms / 1000, follower=st.replica_id >= 0)
        resp, st = _read_all(broker, req, version)
        if st.total >= req.min_bytes or st.answer_now:
            break
    return resp
