"""Every advertised API has an encodable error response that mirrors the request."""

from __future__ import annotations

import pytest

from strom.broker.errors import error_response
from strom.protocol.api_versions import BROKER_API_VERSIONS
from strom.protocol.errors import ErrorCode
from strom.protocol.generated import request_class, response_class
from strom.protocol.generated.produce import ProduceRequest, ProduceResponse
from strom.protocol.wire import Reader, Writer

CASES = [(k, v) for k, (lo, hi) in sorted(BROKER_API_VERSIONS.items()) for v in range(lo, hi + 1)]


@pytest.mark.parametrize(("api_key", "version"), CASES)
def test_error_response_encodes(api_key: int, version: int) -> None:
    resp = error_response(response_class(api_key), request_class(api_key)(), 13)
    w = Writer()
    resp.encode(w, version)
    response_class(api_key).decode(Reader(w.getvalue()), version)


def test_error_response_mirrors_topics_and_partitions() -> None:
    req = ProduceRequest(
        acks=1,
        topic_data=[
            ProduceRequest.TopicProduceData(
                name="t",
                partition_data=[ProduceRequest.PartitionProduceData(index=i) for i in (0, 2)],
            )
        ],
    )
    resp = error_response(ProduceResponse, req, ErrorCode.UNKNOWN_SERVER_ERROR)
    assert [r.name for r in resp.responses] == ["t"]
    parts = resp.responses[0].partition_responses
    assert [(p.index, p.error_code) for p in parts] == [(0, -1), (2, -1)]
