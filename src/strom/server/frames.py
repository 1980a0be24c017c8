"""Size-prefixed request frames out of the bytes a connection receives; sans-IO.

:class:`FrameBuffer` is the connection's receive buffer: the transport receives
straight into it (:meth:`FrameBuffer.get_buffer`, asyncio's BufferedProtocol) and
:meth:`FrameBuffer.next_frame` hands out complete frames as read-only views of it,
so a request's bytes are copied once, by the kernel, and never again:

- Small frames are received into a chunk (CHUNK bytes) that is filled front to
  back and never written over: a frame handed out stays valid for as long as
  anything holds it (a produce request's records, say). When the chunk's room
  runs out, a new one is made and the start of a frame that spans the two is
  copied over (at most one frame's head).
- A frame larger than a chunk gets a buffer of exactly its size as soon as its
  size is known; the rest of it is received straight into that buffer.

The size is checked against ``socket.request.max.bytes`` as soon as its four
bytes are there (in :meth:`next_frame`), before a buffer for the body is made.
"""

from __future__ import annotations

import collections
import struct

from strom.protocol.errors import DecodeError

_SIZE = struct.Struct(">i")
CHUNK = 32 * 1024  # bytes of small frames received into one buffer
MIN_ROOM = 2048  # a chunk with less room than this is replaced before the next receive


class FrameBuffer:
    __slots__ = ("_big", "_buf", "_end", "_filled", "_pos", "_ready", "chunk", "max_frame")

    def __init__(self, max_frame: int, chunk: int = CHUNK) -> None:
        self.max_frame = max_frame
        self.chunk = chunk
        self._buf = bytearray()  # the chunk; [_pos:_end] received and not handed out
        self._pos = 0
        self._end = 0
        self._big: bytearray | None = None  # the body of a frame larger than a chunk
        self._filled = 0  # bytes of _big received
        # whole frames received before what the chunk (or _big) holds, in order
        self._ready: collections.deque[memoryview] = collections.deque()

    # -- the transport's side ---------------------------------------------------------
    def get_buffer(self) -> memoryview:
        """Where the next receive goes (never empty)."""
        big = self._big
        if big is None:
            room = len(self._buf) - self._end
            missing = self._missing()
            if room >= missing and (missing or room >= min(MIN_ROOM, self.chunk // 4 + 1)):
                return memoryview(self._buf)[self._end :]
            big = self._next_chunk()
            if big is None:
                return memoryview(self._buf)[self._end :]
        return memoryview(big)[self._filled :]

    def received(self, nbytes: int) -> None:
        """``nbytes`` were written at the start of the last :meth:`get_buffer`."""
        big = self._big
        if big is None:
            self._end += nbytes
            return
        self._filled += nbytes
        if self._filled == len(big):  # what comes next goes to a chunk
            self._ready.append(memoryview(big).toreadonly())
            self._big = None

    # -- the connection's side --------------------------------------------------------
    def next_frame(self) -> memoryview | None:
        """The next complete frame (without its size), or None until more is received.
        DecodeError for a size outside 0..max_frame."""
        if self._ready:
            return self._ready.popleft()
        buf, pos = self._buf, self._pos
        if self._end - pos < 4:
            return None
        size = _SIZE.unpack_from(buf, pos)[0]
        if size < 0 or size > self.max_frame:
            raise DecodeError(
                f"frame of {size} bytes is larger than socket.request.max.bytes={self.max_frame}"
            )
        end = pos + 4 + size
        if end > self._end:
            return None
        self._pos = end
        return memoryview(buf)[pos + 4 : end].toreadonly()

    def buffered(self) -> int:
        """Bytes received and not yet handed out as frames."""
        ready = sum(4 + len(frame) for frame in self._ready) if self._ready else 0
        big = 4 + self._filled if self._big is not None else 0
        return ready + big + self._end - self._pos

    # -- chunks -----------------------------------------------------------------------
    def _missing(self) -> int:
        """Bytes still missing from the frame begun in the chunk (0 when none is)."""
        left = self._end - self._pos
        if not left:
            return 0
        if left < 4:
            return 4 - left
        size = _SIZE.unpack_from(self._buf, self._pos)[0]
        return max(0, 4 + size - left) if 0 <= size <= self.max_frame else 0

    def _next_chunk(self) -> bytearray | None:
        """A new chunk, or a buffer for a large frame (returned). Whole frames left in the
        old chunk are queued as they are; only the head of a begun frame is copied over."""
        buf, pos, end = self._buf, self._pos, self._end
        size = -1
        while end - pos >= 4:
            size = _SIZE.unpack_from(buf, pos)[0]
            if size < 0 or size > self.max_frame:
                end = pos + 4  # refused when asked for; nothing after it is kept
                break
            if pos + 4 + size > end:
                break
            self._ready.append(memoryview(buf)[pos + 4 : pos + 4 + size].toreadonly())
            pos += 4 + size
        head = memoryview(buf)[pos:end]
        if len(head) >= 4 and self.chunk - 4 < size <= self.max_frame:
            big = bytearray(size)
            big[: len(head) - 4] = head[4:]
            self._big, self._filled = big, len(head) - 4
            self._buf, self._pos, self._end = bytearray(), 0, 0
            return big
        new = bytearray(self.chunk)
        new[: len(head)] = head
        self._buf, self._pos, self._end = new, 0, len(head)
        return None
