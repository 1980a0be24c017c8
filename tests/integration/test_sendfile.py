"""strom.server.sendfile on a loopback connection, on either event loop."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from strom.server.sendfile import sendfile

LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {"asyncio": asyncio.new_event_loop}
if importlib.util.find_spec("uvloop") is not None:
    import uvloop

    LOOPS["uvloop"] = uvloop.new_event_loop


@pytest.mark.parametrize("loop_name", ["asyncio", "uvloop"])
def test_a_range_after_buffered_writes_arrives_whole_and_in_order(
    tmp_path: Path, loop_name: str
) -> None:
    """The transport still holds written bytes when the file range is due (the peer
    reads slowly): they go first, the range follows, and the connection's write-buffer
    limits are as before (uvloop has no loop.sendfile: strom waits for the buffer to
    empty itself, then restores the limits)."""
    if loop_name not in LOOPS:
        pytest.skip("uvloop is not installed (the optional `fast` extra)")
    data = os.urandom(3 << 20)
    path = tmp_path / "range.bin"
    path.write_bytes(data)
    head = b"h" * (16 << 20)  # more than the socket buffers hold: the transport keeps some
    got: dict[str, object] = {}

    async def main() -> None:
        done = asyncio.Event()

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            limits = writer.transport.get_write_buffer_limits()
            writer.write(head)
            fd = os.open(path, os.O_RDONLY)
            try:
                got["sent"] = await sendfile(writer, fd, 1000, len(data) - 1000)
            finally:
                os.close(fd)
            got["limits"] = (limits, writer.transport.get_write_buffer_limits())
            writer.close()
            done.set()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)  # a slow reader's
        sock.connect(("127.0.0.1", port))
        reader, writer = await asyncio.open_connection(sock=sock)
        await asyncio.sleep(0.2)  # the server's buffers fill meanwhile
        got["body"] = await asyncio.wait_for(reader.readexactly(len(head) + len(data) - 1000), 30)
        await asyncio.wait_for(done.wait(), 30)
        writer.close()
        server.close()

    with asyncio.Runner(loop_factory=LOOPS[loop_name]) as runner:
        runner.run(main())
    assert got["sent"] == len(data) - 1000
    assert got["body"] == head + data[1000:]
    before, after = got["limits"]  # type: ignore[misc]
    assert before == after
