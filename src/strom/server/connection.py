"""One client connection: read a frame, dispatch, write the response.

Requests on one connection are handled one at a time, in order, as Kafka
does; responses therefore leave in request order. Record data read from the
log goes out with sendfile when the transport allows it, otherwise with
page-cache reads (os.pread). A frame that cannot be parsed, an unknown API
key or an unsupported version closes this connection only; an unexpected
error inside a handler is logged and answered with UNKNOWN_SERVER_ERROR.

Per-request cost: one receive takes whatever the socket holds, which may be several
pipelined requests, straight into the frame buffer they are handed out from
(strom.server.stream, strom.server.frames: no copy after the kernel's). Responses
are queued and written with one call when no complete request is left in what
was read, or as soon as a request has to wait (a long-polling fetch, an acks=all
produce), so a batch of pipelined requests costs one read and one write. The idle
limit (connections.max.idle.ms) is one timer re-armed once per idle period, not
one per request.

On TLS and SASL listeners the connection first hands itself to the authenticator
(strom.server.authenticator: the TLS handshake, then the SASL exchange, whose frames
it reads through the same splitter), which stays in the path of each request only
while the session can expire (KIP-368 re-authentication).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import types
from collections.abc import Coroutine, Generator
from typing import Any

from strom.broker.api_versions import api_versions_response
from strom.broker.broker import Broker
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
from strom.server.sendfile import sendfile
from strom.server.stream import ClientStream

log = logging.getLogger(__name__)
# Record data below this size is read from the page cache and sent with the
# rest of the response in one write; larger ranges go out with sendfile,
# whose set-up (drain, pause reading) costs more than copying small ranges.
SENDFILE_MIN_BYTES = 64 * 1024
FLUSH_BYTES = 256 * 1024  # queued responses beyond this are written at once


def _read_exact(chunk: Chunk) -> bytes:
    """The chunk's bytes from the page cache, padded if the file shrank meanwhile
    (a truncated log): the frame keeps its announced size, and the client sees a
    partial batch at the end, which it skips."""
    data = chunk.read()
    if len(data) < chunk.length:
        data += bytes(chunk.length - len(data))
    return data


@types.coroutine
def _resume(coro: Coroutine[Any, Any, Any], yielded: Any) -> Generator[Any, Any, Any]:
    """``await`` the rest of ``coro``, which has already run up to yielding ``yielded``
    (what it waits for), passing on what the task sends or throws in (cancellation)."""
    while True:
        try:
            sent = yield yielded
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as exc:  # thrown in by the task (cancellation)
            try:
                yielded = coro.throw(exc)
            except StopIteration as stop:
                return stop.value
        else:
            try:
                yielded = coro.send(sent)
            except StopIteration as stop:
                return stop.value


class Connection:
    def __init__(
        self,
        broker: Broker,
        stream: ClientStream,
        idle_ms: int = -1,
        auth: Authenticator | None = None,
    ) -> None:
        self.broker = broker
        self.stream = stream
        self.idle_s = idle_ms / 1000 if idle_ms > 0 else None
        peer = stream.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        tls = auth is not None and auth.security.ssl_context is not None  # (handshake later)
        self.use_sendfile = stream.get_extra_info("sslcontext") is None and not tls
        # TLS and SASL listeners: authenticate first; kept for requests only while the
        # session can expire (KIP-368)
        self.auth = auth
        self._frames = stream.frames
        self._out: list[bytes | bytearray | memoryview] = []
        self._out_bytes = 0
        self._loop = asyncio.get_running_loop()
        self._last_active = self._loop.time()
        self._busy = False
        self._idle_timer: asyncio.TimerHandle | None = None

    async def serve(self) -> None:
        self._arm_idle_timer(self._last_active)
        try:
            if await self._authenticate():
                await self._requests()
        except ConnectionError:
            pass
        except (DecodeError, CloseConnection) as e:
            log.warning("closing connection from %s: %s", self.peer, e)
        finally:
            if self._idle_timer is not None:
                self._idle_timer.cancel()
            self._write_queued()  # answers to the requests before a bad one still go out
            self.stream.close()
            with contextlib.suppress(ConnectionError, OSError):
                await self.stream.wait_closed()

    async def _requests(self) -> None:
        """Serve requests until the end of the stream (or a verdict to close)."""
        stream = self.stream
        while True:
            frame = self._frames.next_frame()
            if frame is None:
                # (_flush and _read_more inlined: once per wake-up, two coroutines fewer)
                self._write_queued()
                if stream.must_drain():
                    await stream.drain()
                if not await stream.read_more():
                    return
                self._last_active = self._loop.time()
                continue
            if self.auth is not None:
                verdict = await self._admit(frame)
                if verdict is not Verdict.PROCESS:
                    if verdict is Verdict.CLOSE:
                        return
                    continue
            self._busy = True
            try:
                # Most requests are answered without waiting: no coroutine is made
                # for them (one per request and layer costs microseconds).
                pending = self._process(frame)
                if pending is not None:
                    await pending
            finally:
                self._busy = False
                del frame

    async def _read_more(self) -> bool:
        """More bytes in the frame buffer; False at the end of the stream."""
        if not await self.stream.read_more():
            return False
        self._last_active = self._loop.time()
        return True

    # -- authentication (TLS and SASL listeners) --------------------------------------
    async def _authenticate(self) -> bool:
        """False when the connection must close."""
        auth = self.auth
        if auth is None:
            return True
        if not await auth.authenticate(self):
            return False
        if not auth.needs_requests:
            self.auth = None
        return True

    async def _admit(self, frame: memoryview) -> Verdict:
        """Whether a request is processed (a re-authentication is handled here)."""
        assert self.auth is not None
        self._write_queued()  # the answers to earlier requests go out first
        return await self.auth.on_request(self, frame)

    async def read_frame(self, max_size: int) -> bytes | None:
        """A frame of at most ``max_size`` bytes (during authentication); None at the
        end of the stream."""
        frames = self._frames
        limit, frames.max_frame = frames.max_frame, max_size
        try:
            while (frame := frames.next_frame()) is None:
                if not await self._read_more():
                    return None
            return bytes(frame)
        finally:
            frames.max_frame = limit

    # -- connections.max.idle.ms ------------------------------------------------------
    def _arm_idle_timer(self, since: float) -> None:
        if self.idle_s is not None:
            self._idle_timer = self._loop.call_at(since + self.idle_s, self._check_idle)

    def _check_idle(self) -> None:
        assert self.idle_s is not None
        now = self._loop.time()
        if self._busy:
            self._arm_idle_timer(now)
        elif now - self._last_active < self.idle_s:
            self._arm_idle_timer(self._last_active)
        else:
            self._idle_timer = None
            log.debug("closing connection from %s: idle for connections.max.idle.ms", self.peer)
            self.stream.close()  # the pending read sees the end of the stream

    # -- requests ---------------------------------------------------------------------
    def _process(self, frame: memoryview) -> Coroutine[Any, Any, None] | None:
        """Handle one request up to queueing its answer; what is left when the handler
        has to wait (or the answer needs sendfile or a flush) is returned to await."""
        started = time.perf_counter()
        header, r = parse_request_header(frame)
        allowed = BROKER_API_VERSIONS.get(header.api_key)
        if allowed is None or not allowed[0] <= header.api_version <= allowed[1]:
            if header.api_key == API_VERSIONS_KEY and (
                allowed is None or header.api_version > allowed[1]
            ):
                # Unknown version: answer in the v0 layout so any client can read it.
                resp = api_versions_response(ErrorCode.UNSUPPORTED_VERSION)
                return self._send(header, resp, 0)
            raise DecodeError(f"unsupported api key {header.api_key} version {header.api_version}")
        request = decode_request(header, r)
        coro = self.broker.handle(header, request)
        try:
            yielded = coro.send(None)
        except StopIteration as stop:
            response = stop.value
        except Exception as e:
            response = self._failed(header, request, e)
        else:
            # Answers queued for earlier requests leave as soon as this one has to wait.
            self._write_queued()
            return self._finish(header, request, coro, yielded, started)
        return self._answer(header, request, response, started)

    async def _finish(
        self,
        header: RequestHeader,
        request: Any,
        coro: Coroutine[Any, Any, Any],
        yielded: Any,
        started: float,
    ) -> None:
        """The rest of a request whose handler had to wait."""
        try:
            response = await _resume(coro, yielded)
        except Exception as e:
            response = self._failed(header, request, e)
        pending = self._answer(header, request, response, started)
        if pending is not None:
            await pending

    def _failed(self, header: RequestHeader, request: Any, exc: Exception) -> Any:
        """The answer to a request whose handler raised ``exc``."""
        if isinstance(exc, CloseConnection):
            raise exc
        if isinstance(exc, KafkaError):
            return error_response(response_class(header.api_key), request, exc.code)
        log.error(
            "unexpected error handling api %d v%d from %s",
            header.api_key,
            header.api_version,
            self.peer,
            exc_info=exc,
        )
        return error_response(
            response_class(header.api_key), request, ErrorCode.UNKNOWN_SERVER_ERROR
        )

    def _answer(
        self, header: RequestHeader, request: Any, response: Any, started: float
    ) -> Coroutine[Any, Any, None] | None:
        pending = None
        if response is not None:
            pending = self._send(header, response, header.api_version)
        # Kafka's TotalTimeMs (here: until the answer is queued for its write)
        elapsed_ms = (time.perf_counter() - started) * 1000
        self.broker.metrics.on_request(
            header.api_key, header.api_version, request, response, elapsed_ms
        )
        return pending

    # -- responses --------------------------------------------------------------------
    def _send(
        self, header: RequestHeader, response: Any, version: int
    ) -> Coroutine[Any, Any, None] | None:
        """Queue the answer's parts; what needs sendfile or a flush is returned to await."""
        chunks = encode_response(header.api_key, version, header.correlation_id, response)
        for i, chunk in enumerate(chunks):
            if not self._queue_part(chunk):
                return self._send_rest(chunks, i)
        if self._out_bytes >= FLUSH_BYTES:
            return self._flush()
        return None

    async def _send_rest(self, chunks: list[Any], start: int) -> None:
        """The parts of an answer from the first that goes out with sendfile."""
        for chunk in chunks[start:]:
            if not self._queue_part(chunk):
                await self._flush()
                await self._send_chunk(chunk)
        if self._out_bytes >= FLUSH_BYTES:
            await self._flush()

    def _queue_part(self, chunk: bytes | bytearray | memoryview | Chunk) -> bool:
        """Queue a part of an answer; False for record data that goes out with sendfile."""
        if is_buffer(chunk):
            self._queue(chunk)  # type: ignore[arg-type]
        elif chunk.length < SENDFILE_MIN_BYTES or not self.use_sendfile:  # type: ignore[union-attr]
            self._queue(_read_exact(chunk))  # type: ignore[arg-type]
        else:
            return False
        return True

    def _queue(self, part: bytes | bytearray | memoryview) -> None:
        self._out.append(part)
        self._out_bytes += len(part)

    def _write_queued(self) -> None:
        """One write (one send syscall) for every queued part."""
        out = self._out
        if out:
            self.stream.write(out[0] if len(out) == 1 else b"".join(out))
            self._out = []
            self._out_bytes = 0
            self._last_active = self._loop.time()

    async def _flush(self) -> None:
        self._write_queued()
        await self.stream.drain()

    async def _send_chunk(self, chunk: Chunk) -> None:
        fileno = getattr(chunk, "fileno", None)
        position = getattr(chunk, "position", None)
        if self.use_sendfile and isinstance(fileno, int) and isinstance(position, int):
            sent = await sendfile(self.stream, fileno, position, chunk.length)
            if sent is None:
                self.use_sendfile = False
            elif sent == chunk.length:
                return
            else:
                raise ConnectionError(f"sendfile sent {sent} of {chunk.length} bytes")
        self.stream.write(_read_exact(chunk))
