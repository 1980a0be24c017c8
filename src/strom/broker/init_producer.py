"""InitProducerId: a fresh producer id for idempotent producers (transactional ids
go to the transaction coordinator)."""

from __future__ import annotations

from strom.broker.broker import Broker
from strom.broker.handlers import handles
from strom.protocol.api_versions import ApiKey
from strom.protocol.errors import ErrorCode
from strom.protocol.frame import RequestHeader
from strom.protocol.generated.init_producer_id import InitProducerIdRequest, InitProducerIdResponse


@handles(ApiKey.INIT_PRODUCER_ID)
async def handle_init_producer_id(
    broker: Broker, header: RequestHeader, req: InitProducerIdRequest
) -> InitProducerIdResponse:
    if req.transactional_id is not None:
        txn = getattr(broker, "transactions", None)
        if txn is None:
            return InitProducerIdResponse(error_code=ErrorCode.COORDINATOR_NOT_AVAILABLE)
        return await txn.init_producer_id(header, req)  # type: ignore[no-any-return]
    # Without a transactional id Kafka blindly hands out a fresh producer id.
    await broker.producer_ids.ensure_available(broker)
    return InitProducerIdResponse(
        throttle_time_ms=0,
        error_code=0,
        producer_id=broker.producer_ids.generate(),
        producer_epoch=0,
    )
