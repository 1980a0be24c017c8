"""API version negotiation (sans-IO): per API, ``min(broker max, our max)`` provided that
is not below either minimum."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from strom.protocol.api_versions import ApiKey
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.generated import REQUESTS


def negotiate(
    broker: Iterable[tuple[int, int, int]],
    ours: Mapping[int, tuple[int, int]],
) -> dict[int, int]:
    """(api_key, broker min, broker max) triples -> api_key -> version to use.

    APIs whose ranges do not overlap are left out.
    """
    chosen: dict[int, int] = {}
    for api_key, broker_min, broker_max in broker:
        mine = ours.get(api_key)
        if mine is None:
            continue
        version = min(broker_max, mine[1])
        if version >= max(broker_min, mine[0]):
            chosen[api_key] = version
    return chosen


def api_name(api_key: int) -> str:
    """Kafka's upper-case name of an API (``DESCRIBE_CLIENT_QUOTAS``), or its number."""
    if api_key in ApiKey._value2member_map_:
        return ApiKey(api_key).name
    entry = REQUESTS.get(api_key)
    return entry[0].upper() if entry else str(api_key)


def version_for(versions: Mapping[int, int], api_key: int) -> int:
    """The negotiated version, or UNSUPPORTED_VERSION naming the API."""
    try:
        return versions[api_key]
    except KeyError:
        raise KafkaError(
            ErrorCode.UNSUPPORTED_VERSION,
            f"the broker supports no usable version of {api_name(api_key)}",
        ) from None
