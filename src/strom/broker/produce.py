"""Produce: validate batch headers and CRCs, assign offsets, append. No per-record work."""

from __future__ import annotations

import logging

from strom.broker.broker import Broker, handles
from strom.broker.txn_verification import VERIFICATION_MESSAGES, verify_transaction
from strom.common.names import INTERNAL_TOPICS
from strom.common.types import TopicPartition
from strom.metadata.store import TopicInfo
from strom.protocol.api_versions import PRODUCE_MIN_ACCEPTED, ApiKey
from strom.protocol.errors import CloseConnection, ErrorCode, KafkaError, RecordValidationError
from strom.protocol.frame import RequestHeader
from strom.protocol.generated.produce import ProduceRequest, ProduceResponse

log = logging.getLogger(__name__)

PartitionResponse = ProduceResponse.PartitionProduceResponse
_RECORD_ERRORS = (ErrorCode.INVALID_RECORD, ErrorCode.INVALID_TIMESTAMP)
ADMIN_CLIENT_ID = "__admin_client"  # Kafka's AdminUtils.ADMIN_CLIENT_ID: may write internal topics


def _error(index: int, code: ErrorCode, message: str | None = None) -> PartitionResponse:
    resp = PartitionResponse(index=index, error_code=code, base_offset=-1, log_start_offset=-1)
    if message is not None and code in _RECORD_ERRORS:
        resp.record_errors = [ProduceResponse.BatchIndexAndErrorMessage(0, message)]
        resp.error_message = message
    elif message is not None:
        resp.error_message = message
    return resp


def _produce_partition(
    broker: Broker, tp: TopicPartition, records: object, acks: int, now_ms: int
) -> PartitionResponse:
    if records is None or not isinstance(records, memoryview | bytes):
        return _error(tp.partition, ErrorCode.CORRUPT_MESSAGE, "null records")
    try:
        info = broker.replicas.append(tp, records, acks, now_ms)
    except RecordValidationError as e:
        resp = _error(tp.partition, e.code, e.message)
        resp.record_errors = [
            ProduceResponse.BatchIndexAndErrorMessage(index, text)
            for index, text in e.record_errors
        ]
        return resp
    except KafkaError as e:
        return _error(tp.partition, e.code, e.message)
    except OSError as e:
        log.error("storage error on %s: %s", tp, e)
        return _error(tp.partition, ErrorCode.KAFKA_STORAGE_ERROR, str(e))
    return PartitionResponse(
        index=tp.partition,
        error_code=0,
        base_offset=info.first_offset,
        log_append_time_ms=info.log_append_time,
        log_start_offset=info.log_start_offset,
    )


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


@handles(ApiKey.PRODUCE)
async def handle_produce(
    broker: Broker, header: RequestHeader, req: ProduceRequest
) -> ProduceResponse | None:
    acks = req.acks
    now = broker.now_ms()
    out: list[ProduceResponse.TopicProduceResponse] = []
    appended: list[TopicPartition] = []
    for td in req.topic_data:
        topic = broker.topic(td.name)
        parts: list[PartitionResponse] = []
        for pd in td.partition_data:
            refusal = _refusal(header, acks, td.name, topic, pd.index)
            if refusal is not None:
                parts.append(refusal)
            else:
                tp = TopicPartition(td.name, pd.index)
                refused = verify_transaction(broker, req.transactional_id, tp, pd.records)
                if refused:
                    parts.append(_error(pd.index, refused, VERIFICATION_MESSAGES.get(refused)))
                else:
                    parts.append(_produce_partition(broker, tp, pd.records, acks, now))
                    if not parts[-1].error_code:
                        appended.append(tp)
        out.append(ProduceResponse.TopicProduceResponse(name=td.name, partition_responses=parts))
    await broker.flush_requested(appended)  # flush.messages: fsynced before the answer
    if acks == 0:
        if any(p.error_code for t in out for p in t.partition_responses):
            # Kafka closes the connection so that an acks=0 producer notices the
            # error and refreshes its metadata.
            raise CloseConnection("acks=0 produce failed")
        return None
    return ProduceResponse(responses=out, throttle_time_ms=0)
