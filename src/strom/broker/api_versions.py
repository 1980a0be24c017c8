"""ApiVersions: the first request of every connection (and the answer to an unknown
version of it, which the server gives before any handler runs)."""

from __future__ import annotations

from strom.broker.broker import Broker
from strom.broker.handlers import handles
from strom.protocol.api_versions import BROKER_API_VERSIONS, ApiKey
from strom.protocol.frame import RequestHeader
from strom.protocol.generated.api_versions import ApiVersionsRequest, ApiVersionsResponse

# APIs of the consumer rebalance protocol (KIP-848), advertised only while
# group.coordinator.rebalance.protocols includes "consumer", as Kafka's ApiVersionManager does
CONSUMER_PROTOCOL_APIS = frozenset(
    {ApiKey.CONSUMER_GROUP_HEARTBEAT, ApiKey.CONSUMER_GROUP_DESCRIBE}
)


def api_versions_response(
    error_code: int = 0, hidden: frozenset[int] = frozenset()
) -> ApiVersionsResponse:
    keys = [
        ApiVersionsResponse.ApiVersion(api_key=k, min_version=lo, max_version=hi)
        for k, (lo, hi) in sorted(BROKER_API_VERSIONS.items())
        if k not in hidden
    ]
    return ApiVersionsResponse(error_code=error_code, api_keys=keys, throttle_time_ms=0)


@handles(ApiKey.API_VERSIONS)
async def handle_api_versions(
    broker: Broker, header: RequestHeader, req: ApiVersionsRequest
) -> ApiVersionsResponse:
    protocols = broker.config.get_list("group.coordinator.rebalance.protocols")
    return api_versions_response(
        hidden=frozenset() if "consumer" in protocols else CONSUMER_PROTOCOL_APIS
    )
