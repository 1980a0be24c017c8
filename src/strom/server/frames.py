"""Size-prefixed request frames out of the bytes a connection reads; sans-IO.

The connection reads whatever the socket has (one read may hold several pipelined
requests, or part of one) and feeds it here; :meth:`FrameSplitter.next_frame`
hands out complete frames without copying them (a memoryview of the chunk that
was read, which is immutable). Only a frame that spans reads is assembled in a
buffer, and each byte of it is copied once more at most. The size is checked
against ``socket.request.max.bytes`` as soon as its four bytes are there, before
any of the body is buffered.
"""

from __future__ import annotations

import struct

from strom.protocol.errors import DecodeError

_SIZE = struct.Struct(">i")


class FrameSplitter:
    __slots__ = ("_data", "_need", "_pending", "_pos", "max_frame")

    def __init__(self, max_frame: int) -> None:
        self.max_frame = max_frame
        self._data = b""  # the chunk being split
        self._pos = 0
        self._pending = bytearray()  # the start of a frame that spans reads
        self._need = 4  # bytes the pending buffer needs before it is worth splitting

    def feed(self, data: bytes) -> None:
        """Bytes read from the socket (call only once next_frame returned None)."""
        if self._pending:
            self._pending += data
            if len(self._pending) < self._need:
                return
            data = bytes(self._pending)
            self._pending = bytearray()
        self._data, self._pos = data, 0

    def next_frame(self) -> memoryview | None:
        """The next complete frame (without its size), or None until more is fed.
        DecodeError for a size outside 0..max_frame."""
        data, pos = self._data, self._pos
        left = len(data) - pos
        if not left:
            return None
        if left >= 4:
            size = _SIZE.unpack_from(data, pos)[0]
            if size < 0 or size > self.max_frame:
                raise DecodeError(
                    f"frame of {size} bytes is larger than socket.request.max.bytes="
                    f"{self.max_frame}"
                )
            end = pos + 4 + size
            if end <= len(data):
                self._pos = end
                return memoryview(data)[pos + 4 : end]
            self._need = 4 + size
        else:
            self._need = 4
        self._pending = bytearray(memoryview(data)[pos:])
        self._data, self._pos = b"", 0
        return None

    def buffered(self) -> int:
        """Bytes received and not yet handed out as frames."""
        return len(self._data) - self._pos + len(self._pending)
