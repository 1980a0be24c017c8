"""KIP-890 (part 1): a transactional produce must go to a partition of the open transaction.

Before the first transactional batch of a producer is appended to a
partition (the partition has no open transaction of that producer and
epoch), the transaction coordinator is asked whether the partition was added
to the producer's ongoing transaction. Errors are those Kafka 3.6+ returns
for a failed verification: INVALID_TXN_STATE when the partition is not part
of the transaction, INVALID_PRODUCER_EPOCH for a fenced or stale epoch, and
NOT_ENOUGH_REPLICAS (retriable for every client) while the coordinator is
busy or loading. When the transaction coordinator is another broker (a
cluster), the partition's leader asks it with AddPartitionsToTxn (v4+,
verify_only), as Kafka's AddPartitionsToTxnManager does.
"""

from __future__ import annotations

from strom.broker.broker import Broker
from strom.common.hashing import coordinator_partition
from strom.common.names import TXN_TOPIC
from strom.common.types import TopicPartition
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.generated.add_partitions_to_txn import AddPartitionsToTxnRequest
from strom.protocol.records import BATCH_HEADER_SIZE, parse_header

_RETRY_AS_NOT_ENOUGH_REPLICAS = frozenset(
    {
        ErrorCode.CONCURRENT_TRANSACTIONS,
        ErrorCode.NETWORK_EXCEPTION,
        ErrorCode.COORDINATOR_LOAD_IN_PROGRESS,
        ErrorCode.COORDINATOR_NOT_AVAILABLE,
    }
)

VERIFICATION_MESSAGES = {
    ErrorCode.INVALID_TXN_STATE: "Partition was not added to the transaction",
    ErrorCode.NOT_ENOUGH_REPLICAS: "Unable to verify the partition has been added to the "
    "transaction. Underlying error: the transaction coordinator is busy",
}


async def verify_transaction(
    broker: Broker, transactional_id: str | None, tp: TopicPartition, records: object
) -> ErrorCode:
    """NONE when the produce may go ahead, otherwise the error for the partition."""
    if transactional_id is None or not isinstance(records, bytes | memoryview):
        return ErrorCode.NONE
    if len(records) < BATCH_HEADER_SIZE:
        return ErrorCode.NONE
    header = parse_header(records)
    if not header.is_transactional or header.producer_id < 0:
        return ErrorCode.NONE
    return await verify_partition(
        broker, transactional_id, tp, header.producer_id, header.producer_epoch
    )


async def verify_partition(
    broker: Broker, transactional_id: str, tp: TopicPartition, producer_id: int, epoch: int
) -> ErrorCode:
    """Is ``tp`` part of the open transaction of (producer_id, epoch)? Errors as for Produce."""
    runtime = broker.transactions
    if not runtime.verification_enabled:
        return ErrorCode.NONE
    part = broker.replicas.partitions.get(tp)
    if part is None:
        return ErrorCode.NONE  # the append reports the partition's own error
    entry = part.log.producer_state.producers.get(producer_id)
    if entry is not None and entry.current_txn_first_offset >= 0 and entry.producer_epoch == epoch:
        return ErrorCode.NONE  # already verified: the transaction is open on this partition
    coordinator = _coordinator_of(broker, transactional_id)
    if coordinator is not None and coordinator != broker.node_id:
        code = await _verify_remotely(broker, coordinator, transactional_id, tp, producer_id, epoch)
    else:
        errors = runtime.coordinator.verify_partitions(transactional_id, producer_id, epoch, [tp])
        code = errors[tp]
    if code == ErrorCode.NOT_COORDINATOR and broker.cluster is None:
        return ErrorCode.NONE
    if code == ErrorCode.PRODUCER_FENCED:
        return ErrorCode.INVALID_PRODUCER_EPOCH
    if code in _RETRY_AS_NOT_ENOUGH_REPLICAS or code == ErrorCode.NOT_COORDINATOR:
        return ErrorCode.NOT_ENOUGH_REPLICAS
    return code


def _coordinator_of(broker: Broker, transactional_id: str) -> int | None:
    """The broker leading the id's partition of __transaction_state (None: unknown)."""
    topic = broker.image.topic(TXN_TOPIC)
    if topic is None:
        return None
    index = coordinator_partition(transactional_id, len(topic.partitions))
    info = topic.partition(index)
    return info.leader if info is not None and info.leader >= 0 else None


async def _verify_remotely(
    broker: Broker,
    node: int,
    transactional_id: str,
    tp: TopicPartition,
    producer_id: int,
    epoch: int,
) -> ErrorCode:
    Topic = AddPartitionsToTxnRequest.AddPartitionsToTxnTopic
    req = AddPartitionsToTxnRequest(
        transactions=[
            AddPartitionsToTxnRequest.AddPartitionsToTxnTransaction(
                transactional_id=transactional_id,
                producer_id=producer_id,
                producer_epoch=epoch,
                verify_only=True,
                topics=[Topic(tp.topic, [tp.partition])],
            )
        ]
    )
    try:
        resp = await broker.peers.send(node, req)
    except KafkaError:
        return ErrorCode.NETWORK_EXCEPTION
    if resp.error_code:
        return ErrorCode(resp.error_code)
    for result in resp.results_by_transaction:
        for t in result.topic_results:
            for p in t.results_by_partition:
                if t.name == tp.topic and p.partition_index == tp.partition:
                    return ErrorCode(p.partition_error_code)
    return ErrorCode.UNKNOWN_SERVER_ERROR
