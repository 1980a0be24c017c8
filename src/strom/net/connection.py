"""One TCP connection to one broker: ApiVersions, then pipelined requests.

Shared by strom's client and the broker's own requests to other brokers (the
controller's LeaderAndIsr/UpdateMetadata/StopReplica, replica fetchers,
AlterPartition, transaction markers). Requests are written as they come and
matched to responses by correlation id, so many may be in flight. Each waits
at most ``request.timeout.ms``. When the connection breaks, every waiting
request fails with KafkaConnectionError. The caller names the API versions it
speaks (``api_versions``); ApiVersions picks, per API, the highest both sides
know.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import ssl
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from strom.net.errors import KafkaConnectionError, KafkaTimeoutError
from strom.net.versions import negotiate, version_for
from strom.protocol.api_versions import ApiKey
from strom.protocol.errors import DecodeError, ErrorCode, KafkaError
from strom.protocol.frame import RequestHeader, decode_response, encode_request
from strom.protocol.generated.api_versions import ApiVersionsRequest, ApiVersionsResponse
from strom.protocol.wire import Reader

if TYPE_CHECKING:
    from strom.net.security import ClientSecurity

_SIZE_BYTES = 4
CLIENT_SOFTWARE_NAME = "strom-python"
CLIENT_SOFTWARE_VERSION = "0.1.0"


async def _resolve(host: str, port: int) -> list[str]:
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise KafkaConnectionError(f"cannot resolve {host}: {exc}") from None
    addresses: list[str] = []
    for info in infos:
        address = str(info[4][0])
        if address not in addresses:
            addresses.append(address)
    return addresses


async def _connect_any(
    host: str,
    port: int,
    connect_timeout_ms: int,
    all_dns_ips: bool,
    security: ClientSecurity | None = None,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Open a TCP connection (TLS with an SSL or SASL_SSL ``security``) to the first
    reachable address of ``host``."""
    tls = security.ssl_context if security is not None else None
    extra: dict[str, Any] = {} if tls is None else {"ssl": tls, "server_hostname": host}
    addresses = await _resolve(host, port)
    if not all_dns_ips:
        addresses = addresses[:1]
    errors: list[str] = []
    for address in addresses:
        try:
            async with asyncio.timeout(connect_timeout_ms / 1000):
                return await asyncio.open_connection(address, port, **extra)
        except TimeoutError:
            errors.append(f"{address}: timed out after {connect_timeout_ms} ms")
        except ssl.SSLError as exc:
            errors.append(f"{address}: TLS handshake failed: {exc.reason or exc}")
        except OSError as exc:
            errors.append(f"{address}: {exc.strerror or exc}")
    detail = "; ".join(errors) or "no addresses"
    if errors and all("timed out" in e for e in errors):
        raise KafkaTimeoutError(f"connecting to {host}:{port} timed out ({detail})")
    raise KafkaConnectionError(f"cannot connect to {host}:{port} ({detail})")


class BrokerConnection:
    """Use :meth:`open`; then :meth:`send` requests and finally :meth:`close`."""

    def __init__(
        self,
        host: str,
        port: int,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        client_id: str | None,
        request_timeout_ms: int,
        max_frame: int = 104_857_600,
        api_versions: Mapping[int, tuple[int, int]] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.client_id = client_id
        self.request_timeout_ms = request_timeout_ms
        self.versions: dict[int, int] = {}
        # the broker's own (min, max) per api key, as its ApiVersions response lists them
        self.broker_versions: dict[int, tuple[int, int]] = {}
        self.api_versions: Mapping[int, tuple[int, int]] = api_versions or {}
        self._reader = reader
        self._writer = writer
        self._max_frame = max_frame
        self._ids = itertools.count(1)
        self._pending: dict[int, tuple[int, int, asyncio.Future[Any]]] = {}
        self._closed: KafkaError | None = None
        self._read_task = asyncio.get_running_loop().create_task(self._read_loop())
        # KIP-368: when the broker's session ends (monotonic seconds); the connection is
        # then reported closed, so that callers open a new, freshly authenticated one
        self.session_expiry: float | None = None

    def __repr__(self) -> str:
        return f"BrokerConnection({self.host}:{self.port})"

    @classmethod
    async def open(
        cls,
        host: str,
        port: int,
        *,
        client_id: str | None = "strom",
        connect_timeout_ms: int = 10_000,
        request_timeout_ms: int = 30_000,
        all_dns_ips: bool = True,
        api_versions: Mapping[int, tuple[int, int]] | None = None,
        security: ClientSecurity | None = None,
    ) -> BrokerConnection:
        """Connect and negotiate API versions (``api_versions``: api key -> the
        (min, max) versions the caller speaks).

        With ``all_dns_ips`` (client.dns.lookup=use_all_dns_ips) every address the
        name resolves to is tried in turn, each within ``connect_timeout_ms``.
        """
        reader, writer = await _connect_any(host, port, connect_timeout_ms, all_dns_ips, security)
        conn = cls(
            host,
            port,
            reader,
            writer,
            client_id=client_id,
            request_timeout_ms=request_timeout_ms,
            api_versions=api_versions,
        )
        try:
            await conn._negotiate()
            if security is not None and security.sasl:
                # SASL's code is imported by the first connection that authenticates
                from strom.net.sasl_client import authenticate

                lifetime_ms = await authenticate(conn, security)
                if lifetime_ms > 0:  # re-authenticate (reconnect) at 85% of the lifetime
                    conn.session_expiry = time.monotonic() + lifetime_ms * 0.85 / 1000
        except BaseException:
            await conn.close()
            raise
        return conn

    @property
    def closed(self) -> bool:
        """Whether the connection broke or was closed (requests then raise), or its
        authenticated session is about to expire (open a new one)."""
        if self.session_expiry is not None and time.monotonic() >= self.session_expiry:
            return True
        return self._closed is not None

    async def _negotiate(self) -> None:
        version = self.api_versions.get(ApiKey.API_VERSIONS, (0, 3))[1]
        api_versions_max = version
        for _ in range(3):
            request = ApiVersionsRequest(CLIENT_SOFTWARE_NAME, CLIENT_SOFTWARE_VERSION)
            response: ApiVersionsResponse = await self.send(request, version=version)
            if response.error_code == ErrorCode.UNSUPPORTED_VERSION:
                # The broker answered in the v0 layout with its own range.
                broker_max = next(
                    (k.max_version for k in response.api_keys if k.api_key == ApiKey.API_VERSIONS),
                    0,
                )
                version = min(broker_max, api_versions_max) if broker_max < version else 0
                continue
            if response.error_code != ErrorCode.NONE:
                raise KafkaError(ErrorCode(response.error_code), "ApiVersions failed")
            self.broker_versions = {
                k.api_key: (k.min_version, k.max_version) for k in response.api_keys
            }
            self.versions = negotiate(
                ((k.api_key, k.min_version, k.max_version) for k in response.api_keys),
                self.api_versions,
            )
            return
        raise KafkaError(ErrorCode.UNSUPPORTED_VERSION, "ApiVersions negotiation failed")

    async def send(
        self,
        request: Any,
        *,
        version: int | None = None,
        expect_response: bool = True,
        timeout_ms: int | None = None,
    ) -> Any:
        """Send ``request`` at the negotiated (or given) version; await its response.

        With ``expect_response=False`` (Produce with acks=0) return None once written.
        ``timeout_ms`` replaces request.timeout.ms (JoinGroup waits for the rebalance).
        """
        limit_ms = self.request_timeout_ms if timeout_ms is None else timeout_ms
        if self._closed is not None:
            raise self._closed
        api_key = int(request.API_KEY)
        if version is None:
            version = version_for(self.versions, api_key)
        correlation_id = next(self._ids) & 0x7FFFFFFF
        frame = encode_request(
            RequestHeader(api_key, version, correlation_id, self.client_id), request
        )
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if expect_response:
            self._pending[correlation_id] = (api_key, version, future)
        try:
            async with asyncio.timeout(limit_ms / 1000):
                self._writer.write(frame)
                await self._writer.drain()
                if not expect_response:
                    return None
                return await future
        except TimeoutError:
            name = ApiKey(api_key).name if api_key in ApiKey._value2member_map_ else api_key
            raise KafkaTimeoutError(
                f"{name} request to {self.host}:{self.port} timed out after {limit_ms} ms"
            ) from None
        except (ConnectionError, OSError) as exc:
            self._fail(KafkaConnectionError(f"connection to {self.host}:{self.port} lost: {exc}"))
            raise self._closed or exc from None
        finally:
            self._pending.pop(correlation_id, None)

    async def _read_loop(self) -> None:
        try:
            while True:
                head = await self._reader.readexactly(_SIZE_BYTES)
                size = Reader(head).int32()
                if size < 0 or size > self._max_frame:
                    raise DecodeError(f"response frame size {size} is out of range")
                self._dispatch(await self._reader.readexactly(size))
        except asyncio.IncompleteReadError:
            self._fail(KafkaConnectionError(f"{self.host}:{self.port} closed the connection"))
        except (ConnectionError, OSError) as exc:
            self._fail(KafkaConnectionError(f"connection to {self.host}:{self.port} lost: {exc}"))
        except DecodeError as exc:
            self._fail(KafkaConnectionError(f"bad response from {self.host}:{self.port}: {exc}"))

    def _dispatch(self, body: bytes) -> None:
        correlation_id = Reader(body).int32()
        entry = self._pending.pop(correlation_id, None)
        if entry is None:
            return  # a request that timed out or was cancelled
        api_key, version, future = entry
        try:
            _, response = decode_response(api_key, version, body)
        except DecodeError:
            if api_key != ApiKey.API_VERSIONS or version == 0:
                raise
            # A too-new ApiVersions request is answered in the v0 layout.
            _, response = decode_response(api_key, 0, body)
        if not future.done():
            future.set_result(response)

    def _fail(self, error: KafkaError) -> None:
        if self._closed is None:
            self._closed = error
        for _, _, future in self._pending.values():
            if not future.done():
                future.set_exception(error)
        self._pending.clear()
        self._writer.close()

    async def close(self) -> None:
        """Fail the waiting requests with KafkaConnectionError, stop reading, close the socket."""
        self._fail(KafkaConnectionError(f"connection to {self.host}:{self.port} closed"))
        self._read_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._read_task
        with contextlib.suppress(ConnectionError, OSError):
            await self._writer.wait_closed()
