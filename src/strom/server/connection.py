"""One client connection: read a frame, dispatch, write the response.

Requests on one connection are handled one at a time, in order, as Kafka
does; responses therefore leave in request order. Record data read from the
log goes out with sendfile when the transport allows it, otherwise with
page-cache reads (os.pread). A frame that cannot be parsed, an unknown API
key or an unsupported version closes this connection only; an unexpected
error inside a handler is logged and answered with UNKNOWN_SERVER_ERROR.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import time
from typing import Any

from strom.broker.broker import Broker
from strom.broker.cluster import api_versions_response
from strom.broker.errors import error_response
from strom.protocol.api_versions import BROKER_API_VERSIONS
from strom.protocol.errors import CloseConnection, DecodeError, ErrorCode, KafkaError
from strom.protocol.frame import (
    API_VERSIONS_KEY,
    RequestHeader,
    decode_request,
    encode_response,
    parse_request_header,
)
from strom.protocol.generated import response_class
from strom.protocol.wire import Chunk, is_buffer
from strom.server.authenticator import Authenticator, Verdict

log = logging.getLogger(__name__)
_SIZE = struct.Struct(">i")
# Record data below this size is read from the page cache and sent with the
# rest of the response in one write; larger ranges go out with sendfile,
# whose set-up (drain, pause reading) costs more than copying small ranges.
SENDFILE_MIN_BYTES = 64 * 1024


def _read_exact(chunk: Chunk) -> bytes:
    """The chunk's bytes from the page cache, padded if the file shrank meanwhile
    (a truncated log): the frame keeps its announced size, and the client sees a
    partial batch at the end, which it skips."""
    data = chunk.read()
    if len(data) < chunk.length:
        data += bytes(chunk.length - len(data))
    return data


class _FdFile:
    """The minimal file object loop.sendfile needs: a fileno and a no-op seek."""

    __slots__ = ("_fd", "mode")

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self.mode = "rb"

    def fileno(self) -> int:
        return self._fd

    def seek(self, pos: int) -> int:
        return pos


class Connection:
    def __init__(
        self,
        broker: Broker,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        max_frame: int,
        idle_ms: int = -1,
        auth: Authenticator | None = None,
    ) -> None:
        self.broker = broker
        self.reader = reader
        self.writer = writer
        self.max_frame = max_frame
        self.idle_s = idle_ms / 1000 if idle_ms > 0 else None
        peer = writer.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        tls = auth is not None and auth.security.ssl_context is not None  # (handshake later)
        self.use_sendfile = writer.get_extra_info("sslcontext") is None and not tls
        # TLS and SASL listeners: authenticate first; kept for requests only while the
        # session can expire (KIP-368)
        self.auth = auth

    async def serve(self) -> None:
        try:
            if self.auth is not None and not await self._authenticate(self.auth):
                return
            while True:
                frame = await self._read_frame()
                if frame is None:
                    return
                if self.auth is not None:
                    verdict = await self.auth.on_request(self, frame)
                    if verdict is not Verdict.PROCESS:
                        if verdict is Verdict.CLOSE:
                            return
                        continue
                await self._process(frame)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except (DecodeError, CloseConnection) as e:
            log.warning("closing connection from %s: %s", self.peer, e)
        finally:
            self.writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await self.writer.wait_closed()

    async def _authenticate(self, auth: Authenticator) -> bool:
        if not await auth.authenticate(self):
            return False
        if not auth.needs_requests:
            self.auth = None
        return True

    async def read_frame(self, max_size: int) -> bytes | None:
        """A frame of at most ``max_size`` bytes (during authentication)."""
        return await self._read_frame(max_size)

    async def _read_frame(self, max_size: int | None = None) -> bytes | None:
        limit = self.max_frame if max_size is None else max_size
        try:
            async with asyncio.timeout(self.idle_s):
                head = await self.reader.readexactly(4)
        except asyncio.IncompleteReadError:
            return None
        except TimeoutError:
            log.debug("closing connection from %s: idle for connections.max.idle.ms", self.peer)
            return None
        size = _SIZE.unpack(head)[0]
        if size < 0 or size > limit:
            raise DecodeError(f"frame of {size} bytes is larger than the maximum {limit}")
        return await self.reader.readexactly(size)

    async def _process(self, frame: bytes) -> None:
        started = time.perf_counter()
        header, r = parse_request_header(frame)
        allowed = BROKER_API_VERSIONS.get(header.api_key)
        if header.api_key == API_VERSIONS_KEY and (
            allowed is None or header.api_version > allowed[1]
        ):
            # Unknown version: answer in the v0 layout so any client can read it.
            resp = api_versions_response(ErrorCode.UNSUPPORTED_VERSION)
            await self._send(header, resp, version=0)
            return
        if allowed is None or not allowed[0] <= header.api_version <= allowed[1]:
            raise DecodeError(f"unsupported api key {header.api_key} version {header.api_version}")
        request = decode_request(header, r)
        response = await self._dispatch(header, request)
        if response is not None:
            await self._send(header, response, header.api_version)
        elapsed_ms = (time.perf_counter() - started) * 1000  # Kafka's TotalTimeMs
        self.broker.metrics.on_request(
            header.api_key, header.api_version, request, response, elapsed_ms
        )

    async def _dispatch(self, header: RequestHeader, request: Any) -> Any:
        try:
            return await self.broker.handle(header, request)
        except CloseConnection:
            raise
        except KafkaError as e:
            return error_response(response_class(header.api_key), request, e.code)
        except Exception:
            log.exception(
                "unexpected error handling api %d v%d from %s",
                header.api_key,
                header.api_version,
                self.peer,
            )
            return error_response(
                response_class(header.api_key), request, ErrorCode.UNKNOWN_SERVER_ERROR
            )

    async def _send(self, header: RequestHeader, response: Any, version: int) -> None:
        chunks = encode_response(header.api_key, version, header.correlation_id, response)
        pending: list[bytes | bytearray | memoryview] = []
        for chunk in chunks:
            if is_buffer(chunk):
                pending.append(chunk)  # type: ignore[arg-type]
            elif chunk.length < SENDFILE_MIN_BYTES or not self.use_sendfile:  # type: ignore[union-attr]
                pending.append(_read_exact(chunk))  # type: ignore[arg-type]
            else:
                self._write(pending)
                pending = []
                await self._send_chunk(chunk)  # type: ignore[arg-type]
        self._write(pending)
        await self.writer.drain()

    def _write(self, parts: list[bytes | bytearray | memoryview]) -> None:
        """One write (one send syscall) for the buffered parts of a response."""
        if len(parts) == 1:
            self.writer.write(parts[0])
        elif parts:
            self.writer.write(b"".join(parts))

    async def _send_chunk(self, chunk: Chunk) -> None:
        fileno = getattr(chunk, "fileno", None)
        position = getattr(chunk, "position", None)
        if self.use_sendfile and isinstance(fileno, int) and isinstance(position, int):
            loop = asyncio.get_running_loop()
            await self.writer.drain()
            try:
                sent = await loop.sendfile(
                    self.writer.transport,
                    _FdFile(fileno),  # type: ignore[arg-type]
                    position,
                    chunk.length,
                    fallback=False,
                )
            except (
                asyncio.SendfileNotAvailableError,
                NotImplementedError,
                TypeError,
                ValueError,
                AttributeError,
            ):
                self.use_sendfile = False
            else:
                if sent == chunk.length:
                    return
                raise ConnectionError(f"sendfile sent {sent} of {chunk.length} bytes")
        self.writer.write(_read_exact(chunk))
