"""Producer ids and transactions as KafkaApis authorizes them: WRITE of the
transactional id for every transactional API, the idempotent-write check of
InitProducerId without one (IDEMPOTENT_WRITE on the cluster, or WRITE on some
topic: KIP-679), WRITE of the topics added, READ of the group and its topics for
offsets, CLUSTER_ACTION for the brokers' own requests, DESCRIBE to see
transactions."""

from __future__ import annotations

from typing import Any

from strom.broker.authz.common import (
    CLUSTER_DENIED,
    GROUP_DENIED,
    RT,
    TOPIC_DENIED,
    TXN_DENIED,
    Op,
    allowed,
    cluster_allowed,
    refuse,
    replaced,
    split,
    topic_check,
)
from strom.broker.broker import Broker
from strom.broker.handlers import Handler, authorizes
from strom.broker.session import SESSION
from strom.protocol.api_versions import ApiKey
from strom.protocol.errors import ErrorCode
from strom.protocol.frame import RequestHeader
from strom.protocol.generated.add_partitions_to_txn import AddPartitionsToTxnResponse

APR = AddPartitionsToTxnResponse


def _txn_ok(broker: Broker, op: Op, transactional_id: str | None) -> bool:
    return transactional_id is not None and allowed(
        broker, op, RT.TRANSACTIONAL_ID, transactional_id
    )


@authorizes(ApiKey.INIT_PRODUCER_ID)
async def init_producer_id(
    broker: Broker, header: RequestHeader, req: Any, handler: Handler
) -> Any:
    if req.transactional_id is not None:
        if not _txn_ok(broker, Op.WRITE, req.transactional_id):
            return refuse(header, req, TXN_DENIED)
    elif not cluster_allowed(broker, Op.IDEMPOTENT_WRITE):
        authorizer = broker.authorizer
        if authorizer is not None and not authorizer.authorize_by_resource_type(
            SESSION.get(), Op.WRITE, RT.TOPIC
        ):
            return refuse(header, req, CLUSTER_DENIED)
    return await handler(broker, header, req)


def _refused_topics(broker: Broker, topics: list[Any]) -> list[Any] | None:
    """When a topic may not be written (or does not exist), Kafka adds none of them:
    the results, refused topics with their error, the others OPERATION_NOT_ATTEMPTED.
    None when every topic may be added."""
    ok = topic_check(broker, Op.WRITE, lambda t: t.name)
    if all(ok(t) and broker.topic(t.name) is not None for t in topics):
        return None
    results = []
    for t in topics:
        if not ok(t):
            code = TOPIC_DENIED
        elif broker.topic(t.name) is None:
            code = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        else:
            code = ErrorCode.OPERATION_NOT_ATTEMPTED
        parts = [APR.AddPartitionsToTxnPartitionResult(p, code) for p in t.partitions]
        results.append(APR.AddPartitionsToTxnTopicResult(t.name, parts))
    return results


@authorizes(ApiKey.ADD_PARTITIONS_TO_TXN)
async def add_partitions_to_txn(
    broker: Broker, header: RequestHeader, req: Any, handler: Handler
) -> Any:
    if header.api_version < 4:  # a client's: WRITE of the transactional id and the topics
        if not _txn_ok(broker, Op.WRITE, req.v3_and_below_transactional_id):
            return refuse(header, req, TXN_DENIED)
        refused = _refused_topics(broker, req.v3_and_below_topics)
        if refused is None:
            return await handler(broker, header, req)
        return APR(results_by_topic_v3_and_below=refused)
    # the brokers' batched verification: CLUSTER_ACTION, then each transaction's topics
    if not cluster_allowed(broker, Op.CLUSTER_ACTION):
        return APR(error_code=CLUSTER_DENIED)
    good, denied = [], []
    for txn in req.transactions:
        results = _refused_topics(broker, txn.topics)
        if results is None:
            good.append(txn)
        else:
            denied.append(APR.AddPartitionsToTxnResult(txn.transactional_id, results))
    if not denied:
        return await handler(broker, header, req)
    resp = APR()
    if good:
        resp = await handler(broker, header, replaced(req, transactions=good))
    resp.results_by_transaction.extend(denied)
    return resp


def _txn_refusal(broker: Broker, header: RequestHeader, req: Any) -> Any | None:
    """WRITE of the transactional id, then READ of the group (when the request names
    one): Kafka's error response for the first that fails, else None."""
    if not _txn_ok(broker, Op.WRITE, req.transactional_id):
        return refuse(header, req, TXN_DENIED)
    group = getattr(req, "group_id", None)
    if group is not None and not allowed(broker, Op.READ, RT.GROUP, group):
        return refuse(header, req, GROUP_DENIED)
    return None


@authorizes(ApiKey.ADD_OFFSETS_TO_TXN, ApiKey.END_TXN)
async def add_offsets_or_end(
    broker: Broker, header: RequestHeader, req: Any, handler: Handler
) -> Any:
    refused = _txn_refusal(broker, header, req)
    return refused if refused is not None else await handler(broker, header, req)


@authorizes(ApiKey.TXN_OFFSET_COMMIT)
async def txn_offset_commit(
    broker: Broker, header: RequestHeader, req: Any, handler: Handler
) -> Any:
    refused = _txn_refusal(broker, header, req)
    if refused is not None:
        return refused
    return await split(
        broker,
        header,
        req,
        handler,
        field="topics",
        resp_field="topics",
        ok=topic_check(broker, Op.READ, lambda t: t.name),
        code=TOPIC_DENIED,
    )


@authorizes(ApiKey.DESCRIBE_TRANSACTIONS)
async def describe_transactions(
    broker: Broker, header: RequestHeader, req: Any, handler: Handler
) -> Any:
    resp = await split(
        broker,
        header,
        req,
        handler,
        field="transactional_ids",
        resp_field="transaction_states",
        ok=lambda t: _txn_ok(broker, Op.DESCRIBE, t),
        code=TXN_DENIED,
    )
    for state in resp.transaction_states:  # partitions of topics it may not see are hidden
        state.topics = [t for t in state.topics if allowed(broker, Op.DESCRIBE, RT.TOPIC, t.topic)]
    return resp


@authorizes(ApiKey.LIST_TRANSACTIONS)
async def list_transactions(
    broker: Broker, header: RequestHeader, req: Any, handler: Handler
) -> Any:
    resp = await handler(broker, header, req)
    resp.transaction_states = [
        s for s in resp.transaction_states if _txn_ok(broker, Op.DESCRIBE, s.transactional_id)
    ]
    return resp


@authorizes(
    ApiKey.WRITE_TXN_MARKERS,
    ApiKey.LEADER_AND_ISR,
    ApiKey.STOP_REPLICA,
    ApiKey.UPDATE_METADATA,
    ApiKey.CONTROLLED_SHUTDOWN,
    ApiKey.ALTER_PARTITION,
)
async def cluster_action(broker: Broker, header: RequestHeader, req: Any, handler: Handler) -> Any:
    """Requests only brokers send: CLUSTER_ACTION on the cluster."""
    if not cluster_allowed(broker, Op.CLUSTER_ACTION):
        return refuse(header, req, CLUSTER_DENIED)
    return await handler(broker, header, req)
