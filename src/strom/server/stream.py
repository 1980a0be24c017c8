"""The socket side of one client connection: asyncio's BufferedProtocol receiving
straight into the connection's FrameBuffer, and the writes with flow control.

asyncio's streams copy each received byte four times before a request sees it (the
loop's read buffer into bytes, into the StreamReader's buffer, out of it on read,
and into a frame spanning reads); here the kernel writes into the buffer the frame
is handed out from (strom.server.frames), and waking the connection costs one
future. The writing side keeps the StreamWriter calls the connection, the
authenticator and sendfile use (write, drain, close, wait_closed, get_extra_info,
start_tls, transport).

Reading is paused when more than PAUSE_BYTES are received while the connection is
busy with a request (a client pipelining faster than its requests are handled), and
resumed when the connection asks for more.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, cast

from strom.server.frames import FrameBuffer

if TYPE_CHECKING:
    import ssl

PAUSE_BYTES = 2 << 20


class ClientStream(asyncio.BufferedProtocol):
    def __init__(
        self, max_frame: int, on_connect: Callable[[ClientStream], Coroutine[Any, Any, None]]
    ) -> None:
        self.frames = FrameBuffer(max_frame)
        self._on_connect = on_connect
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self.task: asyncio.Task[None] | None = None
        self._fresh = False  # bytes received since the connection last asked
        self._eof = False
        self._lost = False
        self._reading_paused = False
        self._waiter: asyncio.Future[None] | None = None  # the connection, for bytes
        self._writing_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None
        self._closed: asyncio.Future[None] = self._loop.create_future()

    # -- asyncio.BufferedProtocol -----------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # (uvloop's is not a subclass)
        self.task = self._loop.create_task(self._on_connect(self))

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.frames.get_buffer()

    def buffer_updated(self, nbytes: int) -> None:
        frames = self.frames
        frames.received(nbytes)
        self._fresh = True
        # paused only while the connection is busy with a request, not waiting for bytes
        if self._waiter is None and frames.buffered() > PAUSE_BYTES and not self._reading_paused:
            self._reading_paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake()
        # A plain socket stays open for the answers to what was received (TLS cannot
        # half-close; False closes it).
        return self.transport.get_extra_info("sslcontext") is None

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._wake()
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(ConnectionResetError("Connection lost"))
        if not self._closed.done():
            self._closed.set_result(None)

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- reading (the connection) -----------------------------------------------------
    async def read_more(self) -> bool:
        """Wait until more bytes are in the frame buffer: False at the end of the stream."""
        if self._reading_paused:
            self._reading_paused = False
            if not self._lost:
                self.transport.resume_reading()
        while not self._fresh:
            if self._eof or self._lost:
                return False
            waiter = self._waiter = self._loop.create_future()
            try:
                await waiter
            finally:
                self._waiter = None
        self._fresh = False
        return True

    # -- writing (StreamWriter's calls) -----------------------------------------------
    @property
    def transport(self) -> asyncio.Transport:
        assert self._transport is not None, "not connected"
        return self._transport

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.transport.write(data)

    def must_drain(self) -> bool:
        """Whether drain() would wait or raise (a call cheaper than the coroutine)."""
        return self._writing_paused or self._lost

    async def drain(self) -> None:
        if self._lost:
            raise ConnectionResetError("Connection lost")
        if self._writing_paused:
            waiter = self._drain_waiter = self._loop.create_future()
            try:
                await waiter
            finally:
                self._drain_waiter = None

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.transport.get_extra_info(name, default)

    def close(self) -> None:
        self.transport.close()

    async def wait_closed(self) -> None:
        await asyncio.shield(self._closed)

    async def start_tls(self, context: ssl.SSLContext) -> None:
        """The TLS handshake as the server; the protocol stays this one."""
        await self.drain()
        transport = await self._loop.start_tls(self.transport, self, context, server_side=True)
        assert transport is not None
        self._transport = transport
