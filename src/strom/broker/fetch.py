"""Fetch: serve file ranges of the log, with long polling.

Incremental fetch sessions (KIP-227, strom.broker.fetch_sessions) decide which
partitions a request reads and which of them its answer carries. The first batch
of the first partition with data is returned whole even above the byte limits
(KIP-74).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Final

from strom.broker.broker import Broker
from strom.broker.fetch_sessions import CachedPartition, FetchItem, new_context
from strom.broker.handlers import handles
from strom.common.types import TopicPartition
from strom.protocol.api_versions import ApiKey
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.frame import RequestHeader
from strom.protocol.generated.fetch import (
    DEFAULT_FetchResponse_EpochEndOffset,
    DEFAULT_FetchResponse_LeaderIdAndEpoch,
    DEFAULT_FetchResponse_SnapshotId,
    FetchRequest,
    FetchResponse,
    FetchResponse_AbortedTransaction,
    FetchResponse_EpochEndOffset,
    FetchResponse_FetchableTopicResponse,
    FetchResponse_LeaderIdAndEpoch,
    FetchResponse_NodeEndpoint,
)
from strom.protocol.generated.fetch import FetchResponse_PartitionData as PartitionData
from strom.protocol.wire import ChunkedRecords
from strom.replication.partition import READ_COMMITTED, READ_UNCOMMITTED, Partition, ReadResult
from strom.replication.replica_selector import ReplicaView, candidates, select_read_replica
from strom.replication.truncation import diverging

if TYPE_CHECKING:
    from strom.storage.log import PartitionLog

log = logging.getLogger(__name__)
# Shared "not set" values of a partition's answer (assigned whole when set, never
# changed in place): three objects fewer per partition and request, and the encoder
# recognises its own defaults by identity instead of comparing them field by field.
# Final: compiled, each is a C static, not a lookup in the module's dict per partition.
_NO_DIVERGING_EPOCH: Final = DEFAULT_FetchResponse_EpochEndOffset
_NO_CURRENT_LEADER: Final = DEFAULT_FetchResponse_LeaderIdAndEpoch
_NO_SNAPSHOT_ID: Final = DEFAULT_FetchResponse_SnapshotId


class _FetchState:
    def __init__(self, req: FetchRequest, version: int, fetch_max_bytes: int) -> None:
        self.req = req
        self.version = version
        self.isolation_level = req.isolation_level
        self.replica_id = req.replica_state.replica_id if version >= 15 else req.replica_id
        cap = req.max_bytes if req.max_bytes > 0 else 0
        # fetch.max.bytes bounds consumers; followers are bounded by their own request
        self.remaining = cap if self.replica_id >= 0 else min(cap, fetch_max_bytes)
        self.total = 0
        # an error, a diverging epoch or a preferred read replica: answered at once, not
        # held for min_bytes (Kafka's ReplicaManager.fetchMessages)
        self.answer_now = False
        self.leaders: set[int] = set()  # named in current_leader (KIP-951 node endpoints)
        self.preferred_replicas = False  # KIP-392 selection applies


def _preferred_replica(
    broker: Broker, st: _FetchState, part: Partition[PartitionLog], fp: FetchRequest.FetchPartition
) -> int | None:
    """KIP-392: the replica a consumer in another rack should read from, when it is not
    this leader (None: read here)."""
    if not broker.read_from_closest_replica or st.version < 11 or not part.is_leader:
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


def _no_records(out: PartitionData, part: Partition[PartitionLog]) -> PartitionData:
    out.log_start_offset, out.high_watermark, out.last_stable_offset = part.offset_snapshot()
    out.records = b""
    return out


def _redirect(
    broker: Broker,
    st: _FetchState,
    tp: TopicPartition,
    fp: FetchRequest.FetchPartition,
    part: Partition[PartitionLog],
) -> PartitionData | None:
    """KIP-392: the answer naming the replica a consumer should read from instead of
    this one, None when it reads here."""
    preferred = _preferred_replica(broker, st, part, fp)
    if preferred is None:
        return None
    out = _blank(tp.partition)
    out.preferred_read_replica = preferred
    st.answer_now = True
    return _no_records(out, part)


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
            out.current_leader = FetchResponse_LeaderIdAndEpoch(
                current.leader, current.leader_epoch
            )
            st.leaders.add(current.leader)
    return out


def _blank(partition: int) -> PartitionData:
    """A partition's answer before its values are known (the error paths)."""
    # positionally: the generated constructor's keyword handling costs as much again
    return PartitionData(
        partition,
        0,  # error_code
        -1,  # high_watermark
        -1,  # last_stable_offset
        -1,  # log_start_offset
        _NO_DIVERGING_EPOCH,
        _NO_CURRENT_LEADER,
        _NO_SNAPSHOT_ID,
        [],  # aborted_transactions
        -1,  # preferred_read_replica
        None,  # records
    )


def _aborted(res: ReadResult) -> list[FetchResponse_AbortedTransaction]:
    """read_committed: the aborted transactions among the records read."""
    return [
        FetchResponse_AbortedTransaction(producer_id=a.producer_id, first_offset=a.first_offset)
        for a in res.aborted
    ]


def _read_partition(
    broker: Broker, st: _FetchState, tp: TopicPartition, fp: FetchRequest.FetchPartition
) -> PartitionData:
    try:
        if st.replica_id >= 0:
            found = _follower_read(broker, st, tp, fp)
            if isinstance(found, tuple):
                out = _blank(tp.partition)
                out.diverging_epoch = FetchResponse_EpochEndOffset(*found)
                st.answer_now = True
                return _no_records(out, broker.replicas.partitions[tp])
            res = found
        else:  # a consumer's fetch: records up to the high watermark (written out here)
            replicas = broker.replicas
            # get_partition and check_leader_epoch called only when they would not just
            # return (two calls fewer per partition)
            part = replicas.partitions.get(tp)
            if part is None or part.log.offline or broker.logs.offline_dirs:
                part = replicas.get_partition(tp)
            epoch = fp.current_leader_epoch
            if epoch >= 0 and epoch != part.leader_epoch:
                part.check_leader_epoch(epoch)
            if st.preferred_replicas:  # else no call per partition to find there is none
                redirected = _redirect(broker, st, tp, fp, part)
                if redirected is not None:
                    return redirected
            limit = fp.partition_max_bytes
            remaining = st.remaining
            res = part.read_records(
                fp.fetch_offset,
                (limit if limit < remaining else remaining) if limit > 0 and remaining > 0 else 0,
                st.isolation_level,
                st.total == 0,
                False,  # from_follower
                part.leader_id != part.node_id and st.version >= 11,  # on_follower
            )
    except KafkaError as e:
        return _failed(broker, st, tp, _blank(tp.partition), e.code)
    except OSError:
        return _failed(broker, st, tp, _blank(tp.partition), ErrorCode.KAFKA_STORAGE_ERROR)
    aborted = _aborted(res) if st.isolation_level == READ_COMMITTED else None
    data = res.data
    records: ChunkedRecords | bytes = b""
    if data is not None and data.slices:
        records = ChunkedRecords(list(data.slices))
        size = records.length
        st.total += size
        st.remaining -= size
    # the answer made once, positionally, with its final values
    return PartitionData(
        tp.partition,
        0,  # error_code
        res.high_watermark,
        res.last_stable_offset,
        res.log_start_offset,
        _NO_DIVERGING_EPOCH,
        _NO_CURRENT_LEADER,
        _NO_SNAPSHOT_ID,
        aborted,
        -1,  # preferred_read_replica
        records,
    )


def _topic_name(broker: Broker, topic_id: bytes) -> str | None:
    info = broker.image.topic_by_id(topic_id)
    return info.name if info is not None else broker.replicas.topic_names.get(topic_id)


def _unchanged(
    partitions: dict[TopicPartition, Partition[PartitionLog]],
    offline_dirs: set[Path],
    isolation_level: int,
    tp: TopicPartition,
    item: FetchItem,
    cached: CachedPartition,
) -> bool:
    """A consumer's partition in an incremental fetch with nothing to tell: reading it
    would give no records, no error, and the high watermark and log start offset the
    session last answered, so it would be left out of the answer. Anything else (a
    follower, whose fetch moves the ISR; a preferred replica: the caller asks only for
    consumers without one; any doubt) is read."""
    part = partitions.get(tp)
    if part is None or part.leader_id != part.node_id:  # is_leader
        return False
    fp = item.req
    if 0 <= fp.current_leader_epoch != part.leader_epoch:
        return False
    plog = part.log
    if plog.offline or offline_dirs:
        return False
    hw = plog.high_watermark
    upper = part.last_stable_offset if isolation_level == READ_COMMITTED else hw
    start = plog.log_start_offset
    return (
        start <= upper <= fp.fetch_offset <= plog.log_end_offset
        and cached.high_watermark == hw
        and cached.local_log_start_offset == start
    )


def _read_all(
    broker: Broker, req: FetchRequest, version: int, items: list[FetchItem]
) -> tuple[list[PartitionData | None], _FetchState]:
    """Read every item (in order): one PartitionData each, None where an incremental
    fetch has nothing to tell (see _unchanged)."""
    st = _FetchState(req, version, broker.fetch_max_bytes)
    st.preferred_replicas = broker.read_from_closest_replica and version >= 11
    may_skip = st.replica_id < 0 and not st.preferred_replicas  # see _unchanged
    partitions = broker.replicas.partitions
    offline_dirs = broker.logs.offline_dirs
    isolation_level = req.isolation_level
    parts: list[PartitionData | None] = []
    for item in items:
        fp = item.req
        if item.topic is None:
            st.answer_now = True
            parts.append(
                PartitionData(
                    partition_index=fp.partition,
                    error_code=ErrorCode.UNKNOWN_TOPIC_ID,
                    high_watermark=-1,
                    records=b"",
                )
            )
            continue
        # tuple.__new__: TopicPartition() runs NamedTuple's Python-level __new__
        # (about 120 ns of the interpreter per partition)
        tp = tuple.__new__(TopicPartition, (item.topic, fp.partition))
        cached = item.cached
        if (
            cached is not None
            and may_skip
            and _unchanged(partitions, offline_dirs, isolation_level, tp, item, cached)
        ):
            parts.append(None)
        else:
            parts.append(_read_partition(broker, st, tp, fp))
    return parts, st


def _response(
    broker: Broker,
    st: _FetchState,
    error: int,
    session_id: int,
    pairs: list[tuple[FetchItem, PartitionData]],
) -> FetchResponse:
    """The answer: the partitions grouped by topic, in order, and (KIP-951) the
    endpoints of the leaders named in current_leader."""
    responses: list[FetchResponse.FetchableTopicResponse] = []
    last: FetchResponse.FetchableTopicResponse | None = None
    for item, out in pairs:
        name = item.topic or ""
        if last is None or last.topic_id != item.topic_id or last.topic != name:
            last = FetchResponse_FetchableTopicResponse(topic=name, topic_id=item.topic_id)
            responses.append(last)
        last.partitions.append(out)
    endpoints = []
    for node in sorted(st.leaders):
        endpoint = broker.broker_endpoint(node)
        if endpoint is not None:
            host, port = endpoint
            rack = broker.image.brokers[node].rack
            endpoints.append(FetchResponse_NodeEndpoint(node, host, port, rack))
    return FetchResponse(
        throttle_time_ms=0,
        error_code=error,
        session_id=session_id,
        responses=responses,
        node_endpoints=endpoints,
    )


@handles(ApiKey.FETCH)
async def handle_fetch(broker: Broker, header: RequestHeader, req: FetchRequest) -> FetchResponse:
    version = header.api_version
    replica_id = req.replica_state.replica_id if version >= 15 else req.replica_id
    now = broker.now_ms()  # also the time of the answer, unless the fetch waits
    ctx = new_context(
        broker.fetch_sessions,
        version,
        req,
        replica_id >= 0,
        lambda topic_id: _topic_name(broker, topic_id),
        now,
    )
    if ctx.error:
        return FetchResponse(error_code=ctx.error, session_id=0)
    parts, st = _read_all(broker, req, version, ctx.items)
    if not (st.total >= req.min_bytes or req.max_wait_ms <= 0 or st.answer_now):
        deadline = now + req.max_wait_ms
        tps = [TopicPartition(i.topic, i.req.partition) for i in ctx.items if i.topic is not None]
        while True:
            wait_ms = deadline - broker.now_ms()
            if wait_ms <= 0:
                break
            await broker.replicas.wait_for_data(tps, wait_ms / 1000, follower=replica_id >= 0)
            parts, st = _read_all(broker, req, version, ctx.items)
            if st.total >= req.min_bytes or st.answer_now:
                break
        now = broker.now_ms()
    error, session_id, pairs = ctx.respond(parts, version >= 13, now)
    return _response(broker, st, error, session_id, pairs)
