"""Transactional APIs: AddPartitionsToTxn, AddOffsetsToTxn, EndTxn, WriteTxnMarkers,
DescribeTransactions, ListTransactions, DescribeProducers.

InitProducerId with a transactional id is answered by ``TxnRuntime`` (called
from strom.broker.init_producer). Versions before KIP-588 get
INVALID_PRODUCER_EPOCH where newer ones get PRODUCER_FENCED.
"""

from __future__ import annotations

from collections.abc import Iterable

from strom.broker.broker import Broker
from strom.broker.handlers import handles
from strom.broker.txn_runtime import TxnRuntime, fenced_for_version
from strom.common.hashing import coordinator_partition
from strom.common.names import OFFSETS_TOPIC
from strom.common.types import TopicPartition
from strom.coordinator.txn.state import TxnState
from strom.protocol.api_versions import ApiKey
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.frame import RequestHeader
from strom.protocol.generated.add_offsets_to_txn import (
    AddOffsetsToTxnRequest,
    AddOffsetsToTxnResponse,
)
from strom.protocol.generated.add_partitions_to_txn import (
    AddPartitionsToTxnRequest,
    AddPartitionsToTxnResponse,
)
from strom.protocol.generated.describe_producers import (
    DescribeProducersRequest,
    DescribeProducersResponse,
)
from strom.protocol.generated.describe_transactions import (
    DescribeTransactionsRequest,
    DescribeTransactionsResponse,
)
from strom.protocol.generated.end_txn import EndTxnRequest, EndTxnResponse
from strom.protocol.generated.list_transactions import (
    ListTransactionsRequest,
    ListTransactionsResponse,
)
from strom.protocol.generated.write_txn_markers import (
    WriteTxnMarkersRequest,
    WriteTxnMarkersResponse,
)

APResp = AddPartitionsToTxnResponse


def runtime(broker: Broker) -> TxnRuntime:
    return broker.transactions


def _known(broker: Broker, tp: TopicPartition) -> bool:
    topic = broker.topic(tp.topic)
    return topic is not None and 0 <= tp.partition < len(topic.partitions)


def _topic_results(
    errors: dict[TopicPartition, ErrorCode],
) -> list[APResp.AddPartitionsToTxnTopicResult]:
    by_topic: dict[str, list[APResp.AddPartitionsToTxnPartitionResult]] = {}
    for tp, code in errors.items():
        by_topic.setdefault(tp.topic, []).append(
            APResp.AddPartitionsToTxnPartitionResult(tp.partition, code)
        )
    return [APResp.AddPartitionsToTxnTopicResult(name, parts) for name, parts in by_topic.items()]


def _partitions(
    topics: Iterable[AddPartitionsToTxnRequest.AddPartitionsToTxnTopic],
) -> list[TopicPartition]:
    return [TopicPartition(t.name, p) for t in topics for p in t.partitions]


async def add_partitions(
    broker: Broker,
    header: RequestHeader,
    txn_id: str,
    producer_id: int,
    producer_epoch: int,
    partitions: list[TopicPartition],
) -> dict[TopicPartition, ErrorCode]:
    unknown = [tp for tp in partitions if not _known(broker, tp)]
    if unknown:
        return {
            tp: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
            if tp in unknown
            else ErrorCode.OPERATION_NOT_ATTEMPTED
            for tp in partitions
        }
    rt = runtime(broker)
    result = rt.coordinator.add_partitions(
        txn_id, producer_id, producer_epoch, partitions, broker.now_ms()
    )
    code = fenced_for_version(await rt.execute(result), header)
    return dict.fromkeys(partitions, code)


@handles(ApiKey.ADD_PARTITIONS_TO_TXN)
async def handle_add_partitions_to_txn(
    broker: Broker, header: RequestHeader, req: AddPartitionsToTxnRequest
) -> AddPartitionsToTxnResponse:
    if header.api_version < 4:
        errors = await add_partitions(
            broker,
            header,
            req.v3_and_below_transactional_id,
            req.v3_and_below_producer_id,
            req.v3_and_below_producer_epoch,
            _partitions(req.v3_and_below_topics),
        )
        return AddPartitionsToTxnResponse(results_by_topic_v3_and_below=_topic_results(errors))
    results = []
    coordinator = runtime(broker).coordinator
    for txn in req.transactions:
        partitions = _partitions(txn.topics)
        if txn.verify_only:
            errors = coordinator.verify_partitions(
                txn.transactional_id, txn.producer_id, txn.producer_epoch, partitions
            )
        else:
            errors = await add_partitions(
                broker,
                header,
                txn.transactional_id,
                txn.producer_id,
                txn.producer_epoch,
                partitions,
            )
        results.append(
            APResp.AddPartitionsToTxnResult(txn.transactional_id, _topic_results(errors))
        )
    return AddPartitionsToTxnResponse(results_by_transaction=results)


def offsets_partition_for(broker: Broker, group_id: str) -> int:
    topic = broker.topic(OFFSETS_TOPIC)
    count = (
        len(topic.partitions)
        if topic is not None
        else broker.config.get_int("offsets.topic.num.partitions")
    )
    return coordinator_partition(group_id, count)


@handles(ApiKey.ADD_OFFSETS_TO_TXN)
async def handle_add_offsets_to_txn(
    broker: Broker, header: RequestHeader, req: AddOffsetsToTxnRequest
) -> AddOffsetsToTxnResponse:
    tp = TopicPartition(OFFSETS_TOPIC, offsets_partition_for(broker, req.group_id))
    rt = runtime(broker)
    result = rt.coordinator.add_partitions(
        req.transactional_id, req.producer_id, req.producer_epoch, [tp], broker.now_ms()
    )
    return AddOffsetsToTxnResponse(error_code=fenced_for_version(await rt.execute(result), header))


@handles(ApiKey.END_TXN)
async def handle_end_txn(
    broker: Broker, header: RequestHeader, req: EndTxnRequest
) -> EndTxnResponse:
    rt = runtime(broker)
    result = rt.coordinator.end_txn(
        req.transactional_id, req.producer_id, req.producer_epoch, req.committed, broker.now_ms()
    )
    return EndTxnResponse(error_code=fenced_for_version(await rt.execute(result), header))


@handles(ApiKey.WRITE_TXN_MARKERS)
async def handle_write_txn_markers(
    broker: Broker, header: RequestHeader, req: WriteTxnMarkersRequest
) -> WriteTxnMarkersResponse:
    rt = runtime(broker)
    R = WriteTxnMarkersResponse
    out = []
    for marker in req.markers:
        topics = []
        for topic in marker.topics:
            parts = []
            for p in topic.partition_indexes:
                tp = TopicPartition(topic.name, p)
                code = (
                    await rt.write_marker(
                        tp,
                        marker.producer_id,
                        marker.producer_epoch,
                        marker.transaction_result,
                        marker.coordinator_epoch,
                    )
                    if _known(broker, tp)
                    else ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                )
                parts.append(R.WritableTxnMarkerPartitionResult(p, code))
            topics.append(R.WritableTxnMarkerTopicResult(topic.name, parts))
        out.append(R.WritableTxnMarkerResult(marker.producer_id, topics))
    return WriteTxnMarkersResponse(markers=out)


@handles(ApiKey.DESCRIBE_TRANSACTIONS)
async def handle_describe_transactions(
    broker: Broker, header: RequestHeader, req: DescribeTransactionsRequest
) -> DescribeTransactionsResponse:
    R = DescribeTransactionsResponse
    coordinator = runtime(broker).coordinator
    states = []
    for txn_id in req.transactional_ids:
        error, m = coordinator.describe(txn_id)
        if m is None:
            states.append(R.TransactionState(error_code=error, transactional_id=txn_id))
            continue
        by_topic: dict[str, list[int]] = {}
        for tp in sorted(m.partitions):
            by_topic.setdefault(tp.topic, []).append(tp.partition)
        states.append(
            R.TransactionState(
                error_code=0,
                transactional_id=txn_id,
                transaction_state=m.state.display_name,
                transaction_timeout_ms=m.txn_timeout_ms,
                transaction_start_time_ms=m.txn_start_timestamp,
                producer_id=m.producer_id,
                producer_epoch=m.producer_epoch,
                topics=[R.TopicData(t, ps) for t, ps in by_topic.items()],
            )
        )
    return DescribeTransactionsResponse(transaction_states=states)


@handles(ApiKey.LIST_TRANSACTIONS)
async def handle_list_transactions(
    broker: Broker, header: RequestHeader, req: ListTransactionsRequest
) -> ListTransactionsResponse:
    states: set[TxnState] = set()
    unknown: list[str] = []
    for name in req.state_filters:
        state = TxnState.from_name(name)
        if state is None:
            unknown.append(name)
        else:
            states.add(state)
    error, found = runtime(broker).coordinator.list_transactions(
        states, set(req.producer_id_filters), req.duration_filter, broker.now_ms()
    )
    return ListTransactionsResponse(
        error_code=error,
        unknown_state_filters=unknown,
        transaction_states=[
            ListTransactionsResponse.TransactionState(
                m.transactional_id, m.producer_id, m.state.display_name
            )
            for m in found
        ],
    )


def _describe_partition(
    broker: Broker, tp: TopicPartition
) -> DescribeProducersResponse.PartitionResponse:
    R = DescribeProducersResponse
    try:
        part = broker.replicas.get_partition(tp)
    except KafkaError as e:
        return R.PartitionResponse(tp.partition, e.code, e.message)
    if not part.is_leader:
        return R.PartitionResponse(tp.partition, ErrorCode.NOT_LEADER_OR_FOLLOWER)
    producers = [
        R.ProducerState(
            producer_id=e.producer_id,
            producer_epoch=e.producer_epoch,
            last_sequence=e.last_seq,
            last_timestamp=e.last_timestamp,
            coordinator_epoch=e.coordinator_epoch,
            current_txn_start_offset=e.current_txn_first_offset,
        )
        for e in sorted(part.log.producer_state.producers.values(), key=lambda e: e.producer_id)
    ]
    return R.PartitionResponse(tp.partition, 0, None, producers)


@handles(ApiKey.DESCRIBE_PRODUCERS)
async def handle_describe_producers(
    broker: Broker, header: RequestHeader, req: DescribeProducersRequest
) -> DescribeProducersResponse:
    R = DescribeProducersResponse
    topics = [
        R.TopicResponse(
            t.name,
            [_describe_partition(broker, TopicPartition(t.name, p)) for p in t.partition_indexes],
        )
        for t in req.topics
    ]
    return DescribeProducersResponse(topics=topics)
