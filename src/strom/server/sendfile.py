"""Zero-copy file ranges to a connection's socket, on any event loop.

The standard loop has loop.sendfile (it waits until the transport's buffer is
empty, then sends with os.sendfile as the socket allows). uvloop has none: there
the range goes out with os.sendfile in a worker thread once the transport's
buffer is empty, waiting with poll() whenever the socket's buffer is full. The
transport writes nothing meanwhile: the connection sends its responses in order
and awaits this one before the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
from typing import Any, Protocol

_POLL_MS = 1000  # a blocked socket is polled again this often
_SEND_TIMEOUT_S = 300.0  # a peer that reads nothing for this long is dropped


class Writer(Protocol):
    """What sendfile needs of the connection's writing side (a ClientStream, or
    asyncio's StreamWriter)."""

    @property
    def transport(self) -> asyncio.WriteTransport: ...

    async def drain(self) -> None: ...

    def get_extra_info(self, name: str, default: Any = None) -> Any: ...


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


async def sendfile(writer: Writer, file_fd: int, position: int, count: int) -> int | None:
    """Send ``count`` bytes of ``file_fd`` from ``position``: the bytes sent (fewer when
    the file shrank), or None when this transport cannot send files."""
    loop = asyncio.get_running_loop()
    await writer.drain()
    if type(loop).sendfile is not asyncio.AbstractEventLoop.sendfile:
        try:
            return await loop.sendfile(
                writer.transport,
                _FdFile(file_fd),  # type: ignore[arg-type]
                position,
                count,
                fallback=False,
            )
        except (
            asyncio.SendfileNotAvailableError,
            NotImplementedError,
            TypeError,
            ValueError,
            AttributeError,
        ):
            return None
    sock = writer.get_extra_info("socket")
    if sock is None:
        return None
    await _empty_write_buffer(writer)
    return await asyncio.to_thread(_send_blocking, sock.fileno(), file_fd, position, count)


async def _empty_write_buffer(writer: Writer) -> None:
    transport = writer.transport
    if not transport.get_write_buffer_size():
        return
    low, high = transport.get_write_buffer_limits()  # (low, high), as asyncio's
    transport.set_write_buffer_limits(high=0)
    try:
        await writer.drain()
        while transport.get_write_buffer_size():
            await asyncio.sleep(0.001)
    finally:
        with contextlib.suppress(RuntimeError):
            transport.set_write_buffer_limits(high=high, low=low)


def _send_blocking(sock_fd: int, file_fd: int, position: int, count: int) -> int:
    """os.sendfile until ``count`` bytes are sent or the file ends (in a worker thread;
    the socket is non-blocking, so a full buffer is waited for with poll())."""
    poller = select.poll()
    poller.register(sock_fd, select.POLLOUT)
    sent = 0
    waited_ms = 0
    while sent < count:
        try:
            n = os.sendfile(sock_fd, file_fd, position + sent, count - sent)
        except BlockingIOError:
            if poller.poll(_POLL_MS):
                waited_ms = 0
            else:
                waited_ms += _POLL_MS
                if waited_ms >= _SEND_TIMEOUT_S * 1000:
                    raise ConnectionError("the peer read nothing for too long") from None
            continue
        if n == 0:
            break  # the file ended: it was truncated meanwhile
        sent += n
    return sent
