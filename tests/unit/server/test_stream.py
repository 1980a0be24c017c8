"""ClientStream over real loopback sockets: frames in order, the end of the stream,
answers after the client's half-close, reading paused while the connection is busy
and resumed when it asks for more."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import pytest

from strom.server.stream import PAUSE_BYTES, ClientStream


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Callable[[Coroutine[Any, Any, None]], None]:
    """Run a test coroutine on asyncio's loop, then on uvloop's (the broker's default)."""
    if request.param == "asyncio":
        factory = None
    else:
        uvloop = pytest.importorskip("uvloop")
        factory = uvloop.new_event_loop

    def run(coro: Coroutine[Any, Any, None]) -> None:
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(asyncio.wait_for(coro, 60))

    return run


def framed(body: bytes) -> bytes:
    return struct.pack(">i", len(body)) + body


async def serve(
    handler: Callable[[ClientStream], Awaitable[None]], max_frame: int = 1 << 26
) -> tuple[asyncio.Server, int, list[ClientStream]]:
    streams: list[ClientStream] = []

    async def on_connect(stream: ClientStream) -> None:
        streams.append(stream)
        await handler(stream)

    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: ClientStream(max_frame, on_connect), "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], streams


async def frames_of(stream: ClientStream) -> list[bytes]:
    """Every frame until the end of the stream."""
    out: list[bytes] = []
    while True:
        while (frame := stream.frames.next_frame()) is not None:
            out.append(bytes(frame))
        if not await stream.read_more():
            return out


async def _frames_small_and_large_arrive_in_order_until_the_end() -> None:
    got: asyncio.Future[list[bytes]] = asyncio.get_running_loop().create_future()

    async def handler(stream: ClientStream) -> None:
        got.set_result(await frames_of(stream))
        stream.close()

    server, port, _ = await serve(handler)
    bodies = [b"a", bytes(range(256)) * 1000, b"", b"z" * 40_000, b"tail"]
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    for body in bodies:
        writer.write(framed(body))
    await writer.drain()
    writer.close()
    assert await asyncio.wait_for(got, 10) == bodies
    server.close()


def test_frames_small_and_large_arrive_in_order_until_the_end(
    run: Callable[[Coroutine[Any, Any, None]], None],
) -> None:
    run(_frames_small_and_large_arrive_in_order_until_the_end())


async def _answers_still_go_out_after_the_client_half_closes() -> None:
    async def handler(stream: ClientStream) -> None:
        for body in await frames_of(stream):  # until the client's FIN
            stream.write(framed(body.upper()))
        await stream.drain()
        stream.close()

    server, port, _ = await serve(handler)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(framed(b"one") + framed(b"two"))
    writer.write_eof()
    answers = await asyncio.wait_for(reader.read(), 10)
    assert answers == framed(b"ONE") + framed(b"TWO")
    writer.close()
    server.close()


def test_answers_still_go_out_after_the_client_half_closes(
    run: Callable[[Coroutine[Any, Any, None]], None],
) -> None:
    run(_answers_still_go_out_after_the_client_half_closes())


async def _reading_pauses_while_the_connection_is_busy_and_resumes_when_it_asks() -> None:
    busy = asyncio.Event()
    counted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def handler(stream: ClientStream) -> None:
        while stream.frames.next_frame() is None:
            await stream.read_more()
        await busy.wait()  # handling the first request while the client pipelines on
        n = 1 + len(await frames_of(stream))
        counted.set_result(n)
        stream.close()

    server, port, streams = await serve(handler)
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setblocking(False)
    frame = framed(b"x" * 60_000)
    total = 2 + (16 * PAUSE_BYTES) // len(frame)
    data = memoryview(frame * total)
    loop = asyncio.get_running_loop()
    sent = 0
    progress = loop.time()
    while sent < len(data) and loop.time() - progress < 0.5:  # until nothing more goes
        try:
            sent += sock.send(data[sent:])
            progress = loop.time()
        except BlockingIOError:
            await asyncio.sleep(0.01)
    # the broker side stopped reading: what it holds is bounded, the rest waits in the
    # sockets' buffers
    assert sent < len(data)
    stream = streams[0]
    assert stream.frames.buffered() <= PAUSE_BYTES + len(frame) + 4 * 1024 * 1024
    busy.set()
    while sent < len(data):
        try:
            sent += sock.send(data[sent:])
        except BlockingIOError:
            await asyncio.sleep(0.001)
    sock.shutdown(socket.SHUT_WR)
    assert await asyncio.wait_for(counted, 20) == total
    sock.close()
    server.close()


def test_reading_pauses_while_the_connection_is_busy_and_resumes_when_it_asks(
    run: Callable[[Coroutine[Any, Any, None]], None],
) -> None:
    run(_reading_pauses_while_the_connection_is_busy_and_resumes_when_it_asks())


async def _a_frame_over_the_limit_is_refused_when_asked_for(size: int) -> None:
    from strom.protocol.errors import DecodeError

    refused: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def handler(stream: ClientStream) -> None:
        try:
            await frames_of(stream)
        except DecodeError as exc:
            refused.set_result(str(exc))
        stream.close()

    server, port, _ = await serve(handler, max_frame=1000)
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(struct.pack(">i", size) + b"junk" * 10_000)
    await writer.drain()
    assert "socket.request.max.bytes=1000" in await asyncio.wait_for(refused, 10)
    writer.close()
    server.close()


@pytest.mark.parametrize("size", [-1, 1001])
def test_a_frame_over_the_limit_is_refused_when_asked_for(
    run: Callable[[Coroutine[Any, Any, None]], None], size: int
) -> None:
    run(_a_frame_over_the_limit_is_refused_when_asked_for(size))
