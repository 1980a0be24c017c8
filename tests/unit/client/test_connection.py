"""BrokerConnection over in-memory streams (no sockets): negotiation, pipelining."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from strom.client.aio.connection import BrokerConnection
from strom.client.errors import KafkaConnectionError, KafkaTimeoutError
from strom.protocol.api_versions import ApiKey
from strom.protocol.errors import ErrorCode
from strom.protocol.frame import RequestHeader, encode_response, parse_request_header
from strom.protocol.generated.api_versions import ApiVersionsResponse
from strom.protocol.generated.metadata import MetadataRequest, MetadataResponse

AV = ApiVersionsResponse.ApiVersion
Handler = Callable[[RequestHeader], Any]


class FakeBroker:
    """A StreamWriter stand-in that answers requests into a StreamReader."""

    def __init__(self, reader: asyncio.StreamReader, handler: Handler, hold: int = 0) -> None:
        self.reader = reader
        self.handler = handler
        self.hold = hold  # answer this many requests together, in reverse order
        self.held: list[bytes] = []
        self.requests: list[RequestHeader] = []
        self.closed = False

    def write(self, frame: bytes) -> None:
        header, _ = parse_request_header(frame[4:])
        self.requests.append(header)
        response = self.handler(header)
        if response is None:
            return
        version = header.api_version
        if header.api_key == ApiKey.API_VERSIONS and response.error_code:
            version = 0  # as Kafka: a too-new ApiVersions request is answered in v0
        chunks = encode_response(header.api_key, version, header.correlation_id, response)
        data = b"".join(bytes(c) for c in chunks)  # type: ignore[arg-type]
        if header.api_key == ApiKey.API_VERSIONS or not self.hold:
            self.reader.feed_data(data)
            return
        self.held.append(data)
        if len(self.held) == self.hold:
            for item in reversed(self.held):
                self.reader.feed_data(item)
            self.held.clear()

    async def drain(self) -> None:
        return None

    def close(self) -> None:
        self.closed = True

    async def wait_closed(self) -> None:
        return None


def _api_versions(max_av: int) -> Handler:
    def handle(h: RequestHeader) -> Any:
        if h.api_key == ApiKey.API_VERSIONS:
            if h.api_version > max_av:
                return ApiVersionsResponse(
                    error_code=ErrorCode.UNSUPPORTED_VERSION,
                    api_keys=[AV(ApiKey.API_VERSIONS, 0, max_av)],
                )
            return ApiVersionsResponse(
                api_keys=[AV(ApiKey.API_VERSIONS, 0, max_av), AV(ApiKey.METADATA, 0, 7)]
            )
        if h.api_key == ApiKey.METADATA:
            return MetadataResponse(cluster_id=f"id-{h.correlation_id}")
        return None

    return handle


async def _open(
    handler: Handler, hold: int = 0, timeout_ms: int = 2000
) -> tuple[BrokerConnection, FakeBroker]:
    reader = asyncio.StreamReader()
    fake = FakeBroker(reader, handler, hold)
    conn = BrokerConnection(
        "fake",
        1,
        reader,
        fake,  # type: ignore[arg-type]
        client_id="t",
        request_timeout_ms=timeout_ms,
    )
    await conn._negotiate()
    return conn, fake


def test_negotiates_versions() -> None:
    async def go() -> None:
        conn, fake = await _open(_api_versions(3))
        assert conn.versions[ApiKey.METADATA] == 7
        assert [r.api_version for r in fake.requests] == [3]
        await conn.close()

    asyncio.run(go())


@pytest.mark.parametrize("broker_max", [0, 2])
def test_unsupported_api_versions_version_is_retried_lower(broker_max: int) -> None:
    async def go() -> None:
        conn, fake = await _open(_api_versions(broker_max))
        assert [r.api_version for r in fake.requests] == [3, broker_max]
        assert conn.versions[ApiKey.API_VERSIONS] == broker_max
        await conn.close()

    asyncio.run(go())


def test_pipelined_responses_are_matched_by_correlation_id() -> None:
    async def go() -> None:
        conn, fake = await _open(_api_versions(3), hold=3)
        results = await asyncio.gather(*(conn.send(MetadataRequest(topics=None)) for _ in range(3)))
        ids = [r.cluster_id for r in results]
        assert ids == [f"id-{h.correlation_id}" for h in fake.requests[1:]]
        assert len(set(ids)) == 3
        await conn.close()

    asyncio.run(go())


def test_request_timeout_and_closed_connection() -> None:
    async def go() -> None:
        def never(h: RequestHeader) -> Any:
            return None if h.api_key == ApiKey.METADATA else _api_versions(3)(h)

        conn, _ = await _open(never, timeout_ms=50)
        with pytest.raises(KafkaTimeoutError, match="METADATA request to fake:1 timed out"):
            await conn.send(MetadataRequest(topics=None))
        pending = asyncio.ensure_future(conn.send(MetadataRequest(topics=None)))
        await asyncio.sleep(0)
        conn._reader.feed_eof()
        with pytest.raises(KafkaConnectionError):
            await pending
        with pytest.raises(KafkaConnectionError):
            await conn.send(MetadataRequest(topics=None))
        await conn.close()

    asyncio.run(go())
