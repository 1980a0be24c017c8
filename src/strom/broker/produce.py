"""Produce: validate batch headers and CRCs, assign offsets, append. No per-record work.

acks=0 answers nothing, acks=1 answers after the local append, acks=-1 (all) waits
(Kafka's delayed produce) until the high watermark passes the batch, i.e. every
replica of the ISR has it, or the request's timeout_ms passes (REQUEST_TIMED_OUT);
an ISR that shrank below min.insync.replicas meanwhile answers
NOT_ENOUGH_REPLICAS_AFTER_APPEND. NOT_LEADER_OR_FOLLOWER carries the current leader
and its endpoint (KIP-951) so that clients need not refresh their metadata.
"""

from __future__ import annotations

import asyncio
import logging

from strom.broker.broker import Broker
from strom.broker.handlers import handles
from strom.broker.txn_verification import VERIFICATION_MESSAGES, verify_transaction
from strom.common.names import INTERNAL_TOPICS
from strom.common.types import TopicPartition
from strom.metadata.store import TopicInfo
from strom.protocol.api_versions import PRODUCE_MIN_ACCEPTED, ApiKey
from strom.protocol.errors import CloseConnection, ErrorCode, KafkaError, RecordValidationError
from strom.protocol.frame import RequestHeader
from strom.protocol.generated.produce import (
    ProduceRequest,
    ProduceResponse,
    ProduceResponse_BatchIndexAndErrorMessage,
    ProduceResponse_LeaderIdAndEpoch,
    ProduceResponse_NodeEndpoint,
    ProduceResponse_TopicProduceResponse,
)
from strom.protocol.generated.produce import (
    ProduceResponse_PartitionProduceResponse as PartitionResponse,
)

log = logging.getLogger(__name__)

_RECORD_ERRORS = (ErrorCode.INVALID_RECORD, ErrorCode.INVALID_TIMESTAMP)
ADMIN_CLIENT_ID = "__admin_client"  # Kafka's AdminUtils.ADMIN_CLIENT_ID: may write internal topics


def _error(index: int, code: ErrorCode, message: str | None = None) -> PartitionResponse:
    resp = PartitionResponse(index=index, error_code=code, base_offset=-1, log_start_offset=-1)
    if message is not None and code in _RECORD_ERRORS:
        resp.record_errors = [ProduceResponse_BatchIndexAndErrorMessage(0, message)]
        resp.error_message = message
    elif message is not None:
        resp.error_message = message
    return resp


class _Appended:
    """A partition appended with acks=all, waiting for the high watermark."""

    __slots__ = ("next_offset", "response", "tp")

    def __init__(self, tp: TopicPartition, response: PartitionResponse, next_offset: int) -> None:
        self.tp, self.response, self.next_offset = tp, response, next_offset


def _produce_partition(
    broker: Broker, tp: TopicPartition, records: object, acks: int, now_ms: int
) -> tuple[PartitionResponse, int]:
    """The partition's answer and, when appended, the offset after its last record."""
    if records is None or not isinstance(records, (memoryview, bytes)):
        return _error(tp.partition, ErrorCode.CORRUPT_MESSAGE, "null records"), -1
    try:
        info = broker.replicas.append(tp, records, acks, now_ms)
    except RecordValidationError as e:
        resp = _error(tp.partition, e.code, e.message)
        resp.record_errors = [
            ProduceResponse_BatchIndexAndErrorMessage(index, text)
            for index, text in e.record_errors
        ]
        return resp, -1
    except KafkaError as e:
        return _leader_hint(broker, tp, _error(tp.partition, e.code, e.message)), -1
    except OSError as e:
        log.error("storage error on %s: %s", tp, e)
        return _error(tp.partition, ErrorCode.KAFKA_STORAGE_ERROR, str(e)), -1
    # positionally: index, error_code, base_offset, log_append_time_ms, log_start_offset
    resp = PartitionResponse(
        tp.partition, 0, info.first_offset, info.log_append_time, info.log_start_offset
    )
    return resp, info.last_offset + 1 if info.last_offset >= 0 else -1


def _leader_hint(broker: Broker, tp: TopicPartition, resp: PartitionResponse) -> PartitionResponse:
    """KIP-951: NOT_LEADER_OR_FOLLOWER names the current leader and its epoch."""
    if resp.error_code == ErrorCode.NOT_LEADER_OR_FOLLOWER:
        p = broker.image.partition(tp)
        if p is not None and p.leader >= 0:
            resp.current_leader = ProduceResponse_LeaderIdAndEpoch(p.leader, p.leader_epoch)
    return resp


def _settle(broker: Broker, w: _Appended, code: int) -> bool:
    """acks=all: ``w``'s answer given the commit's outcome; True if it failed."""
    if code == ErrorCode.NONE:
        return False
    w.response.error_code = code
    _leader_hint(broker, w.tp, w.response)
    return True


def _committed(broker: Broker, waiting: list[_Appended]) -> tuple[bool, list[_Appended]]:
    """acks=all, without waiting: whether a partition failed already, and the partitions
    whose ISR does not have their records yet (none on a single node)."""
    replicas = broker.replicas
    failed = False
    pending: list[_Appended] = []
    for w in waiting:
        code = replicas.commit_status(w.tp, w.next_offset)
        if code is None:
            pending.append(w)
        elif _settle(broker, w, code):
            failed = True
    return failed, pending


async def _wait_for_replicas(broker: Broker, pending: list[_Appended], timeout_ms: int) -> bool:
    """acks=all: each pending partition's answer once the ISR has its records. True if
    one failed."""
    timeout_s = max(timeout_ms, 0) / 1000
    replicas = broker.replicas
    if len(pending) == 1:
        waited = [await replicas.wait_for_commit(pending[0].tp, pending[0].next_offset, timeout_s)]
    else:
        waited = await asyncio.gather(
            *(replicas.wait_for_commit(w.tp, w.next_offset, timeout_s) for w in pending)
        )
    failed = False
    for w, code in zip(pending, waited, strict=True):
        if _settle(broker, w, code):
            failed = True
    return failed


def _node_endpoints(
    broker: Broker, out: list[ProduceResponse.TopicProduceResponse]
) -> list[ProduceResponse.NodeEndpoint]:
    """KIP-951: the endpoints of the leaders named in NOT_LEADER_OR_FOLLOWER answers."""
    leaders = {
        p.current_leader.leader_id
        for t in out
        for p in t.partition_responses
        if p.error_code == ErrorCode.NOT_LEADER_OR_FOLLOWER and p.current_leader.leader_id >= 0
    }
    endpoints = []
    for node in sorted(leaders):
        found = broker.broker_endpoint(node)
        if found is not None:
            info = broker.image.brokers[node]
            endpoints.append(ProduceResponse_NodeEndpoint(node, found[0], found[1], info.rack))
    return endpoints


def _refusal(
    header: RequestHeader, acks: int, name: str, topic: TopicInfo | None, index: int
) -> PartitionResponse | None:
    """The error for a partition refused before its records are looked at, if any."""
    if header.api_version < PRODUCE_MIN_ACCEPTED:
        return _error(index, ErrorCode.UNSUPPORTED_VERSION)
    if acks not in (0, 1, -1):
        return _error(index, ErrorCode.INVALID_REQUIRED_ACKS)
    if topic is None or not 0 <= index < len(topic.partitions):
        return _error(index, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
    if name in INTERNAL_TOPICS and header.client_id != ADMIN_CLIENT_ID:
        message = f"Cannot append to internal topic {name}"
        return _error(index, ErrorCode.INVALID_TOPIC_EXCEPTION, message)
    return None


def _close_on_error(out: list[ProduceResponse.TopicProduceResponse]) -> None:
    """acks=0: Kafka closes the connection when a partition failed, so that the producer
    notices the error and refreshes its metadata."""
    if any(p.error_code for t in out for p in t.partition_responses):
        raise CloseConnection("acks=0 produce failed")


@handles(ApiKey.PRODUCE)
async def handle_produce(
    broker: Broker, header: RequestHeader, req: ProduceRequest
) -> ProduceResponse | None:
    acks = req.acks
    now = broker.now_ms()
    out: list[ProduceResponse.TopicProduceResponse] = []
    waiting: list[_Appended] = []
    appended: list[TopicPartition] = []
    transactional_id = req.transactional_id
    failed = False  # a partition answered an error: the answer may name leaders (KIP-951)
    # _refusal's checks of the request, read once: a partition is refused by it only when
    # these fail or its index is out of range
    request_ok = header.api_version >= PRODUCE_MIN_ACCEPTED and acks in (0, 1, -1)
    for td in req.topic_data:
        name = td.name
        topic = broker.topic(name)
        partitions = (
            len(topic.partitions)
            if request_ok
            and topic is not None
            and (name not in INTERNAL_TOPICS or header.client_id == ADMIN_CLIENT_ID)
            else 0  # every partition goes through _refusal
        )
        parts: list[PartitionResponse] = []
        for pd in td.partition_data:
            index = pd.index
            resp = None if 0 <= index < partitions else _refusal(header, acks, name, topic, index)
            if resp is None:
                # tuple.__new__: TopicPartition() runs NamedTuple's Python-level __new__
                tp = tuple.__new__(TopicPartition, (name, index))
                refused = (
                    await verify_transaction(broker, transactional_id, tp, pd.records)
                    if transactional_id is not None
                    else ErrorCode.NONE
                )
                if refused:
                    resp = _error(index, refused, VERIFICATION_MESSAGES.get(refused))
                else:
                    resp, next_offset = _produce_partition(broker, tp, pd.records, acks, now)
                    if not resp.error_code:
                        appended.append(tp)
                    if acks == -1 and next_offset >= 0:
                        waiting.append(_Appended(tp, resp, next_offset))
            parts.append(resp)
            failed = failed or resp.error_code != 0
        out.append(ProduceResponse_TopicProduceResponse(name=name, partition_responses=parts))
    flushes = broker.logs.requested_flush_jobs(appended, broker.now_ms)  # clock if needed
    if flushes:  # flush.messages: fsynced (in a storage thread) before the answer
        await broker.run_flush_jobs(flushes)
    if acks == 0:
        _close_on_error(out)
        return None
    if waiting:
        # (a call, not a coroutine, when every partition is committed already)
        settled_failed, pending = _committed(broker, waiting)
        waited_failed = bool(pending) and await _wait_for_replicas(broker, pending, req.timeout_ms)
        failed = failed or settled_failed or waited_failed
    endpoints = _node_endpoints(broker, out) if failed else []
    return ProduceResponse(responses=out, throttle_time_ms=0, node_endpoints=endpoints)
