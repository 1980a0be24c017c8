"""Size-prefixed frames and request/response headers.

Every Kafka message travels as ``int32 size`` followed by ``size`` bytes. The
size is checked against the maximum (``socket.request.max.bytes``) before any
of the body is read or buffered.

Request header v1 is ``api_key int16, api_version int16, correlation_id int32,
client_id nullable string``; v2 (flexible API versions) adds tagged fields.
The client id is never a compact string. Response header v0 is the
correlation id; v1 adds tagged fields. ApiVersionsResponse always uses v0 so
that a client that does not know the broker's versions can read it.
"""

from __future__ import annotations

import struct
from typing import Any, ClassVar, Final

from mypy_extensions import mypyc_attr

from strom.common.values import Value
from strom.protocol.errors import DecodeError
from strom.protocol.generated import (
    REQUEST_HEADERS,
    RESPONSE_FLEXIBLE,
    RESPONSES,
    request_class,
    response_class,
)
from strom.protocol.wire import Chunk, Reader, Writer

DEFAULT_MAX_FRAME: Final = 104_857_600  # socket.request.max.bytes
API_VERSIONS_KEY: Final = 18
_SIZE: Final = struct.Struct(">i")
# api_key, api_version, correlation_id and the client id's length: one unpack
_REQUEST_HEAD: Final = struct.Struct(">hhih")
_RESPONSE_HEAD: Final = struct.Struct(">ii")  # the size (written last) and the correlation id
# Final: the mypyc build reads these directly rather than from the module's dict
_REQUEST_HEADERS: Final = REQUEST_HEADERS
_RESPONSE_FLEXIBLE: Final = RESPONSE_FLEXIBLE


# A plain Python class in the mypyc build (setup.py): a compiled class must not derive
# from an interpreted one (DecodeError), which crashed the garbage collector in tests.
@mypyc_attr(native_class=False)
class FrameTooLarge(DecodeError):
    """A frame announced a size above the maximum."""


class FrameDecoder:
    """Splits a byte stream into frames; sans-IO (feed bytes, get frames)."""

    __slots__ = ("_buf", "_need", "max_size")

    def __init__(self, max_size: int = DEFAULT_MAX_FRAME) -> None:
        self.max_size = max_size
        self._buf = bytearray()
        self._need = -1

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        self._buf += data
        frames: list[bytes] = []
        while True:
            if self._need < 0:
                if len(self._buf) < 4:
                    return frames
                size = _SIZE.unpack_from(self._buf, 0)[0]
                if size < 0 or size > self.max_size:
                    raise FrameTooLarge(f"frame size {size} outside 0..{self.max_size}")
                del self._buf[:4]
                self._need = size
            if len(self._buf) < self._need:
                return frames
            frames.append(bytes(self._buf[: self._need]))
            del self._buf[: self._need]
            self._need = -1

    def pending(self) -> int:
        return len(self._buf)


class RequestHeader(Value):
    """A request's header (v1 and v2: the tagged fields are skipped)."""

    __slots__ = ("api_key", "api_version", "client_id", "correlation_id")
    FIELDS: ClassVar[tuple[str, ...]] = ("api_key", "api_version", "correlation_id", "client_id")
    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None

    def __init__(
        self, api_key: int, api_version: int, correlation_id: int, client_id: str | None
    ) -> None:
        self.api_key = api_key
        self.api_version = api_version
        self.correlation_id = correlation_id
        self.client_id = client_id

    __hash__ = None  # type: ignore[assignment]  # mutable, as an unfrozen dataclass


def is_flexible_request(api_key: int, api_version: int) -> bool:
    cls = request_class(api_key)
    return bool(api_version >= cls.FIRST_FLEXIBLE_VERSION)


def parse_request_header(frame: bytes | memoryview) -> tuple[RequestHeader, Reader]:
    """Decode a request header; return it and a reader positioned at the body.

    Raises DecodeError for truncated headers and unknown API keys.
    """
    r = Reader(frame)
    if r.end < _REQUEST_HEAD.size:
        return _parse_short_header(r)
    api_key, api_version, correlation_id, n = _REQUEST_HEAD.unpack_from(r.buf, 0)
    layout = _REQUEST_HEADERS.get(api_key)
    if layout is None:
        raise DecodeError(f"unknown api key {api_key}")
    r.pos = _REQUEST_HEAD.size
    header = RequestHeader(api_key, api_version, correlation_id, None if n < 0 else r._text(n))
    if layout[0] <= api_version <= layout[1]:
        r.skip_tags()
    return header, r


def _parse_short_header(r: Reader) -> tuple[RequestHeader, Reader]:
    """A frame too short for the one unpack, field by field (it raises the DecodeError
    of the first field that is cut short, or of an unknown API key)."""
    api_key = r.int16()
    api_version = r.int16()
    correlation_id = r.int32()
    if api_key not in _REQUEST_HEADERS:
        raise DecodeError(f"unknown api key {api_key}")
    return RequestHeader(api_key, api_version, correlation_id, r.nstring()), r


def decode_request(header: RequestHeader, r: Reader) -> Any:
    cls = request_class(header.api_key)
    return cls.decode(r, header.api_version)


def encode_request(header: RequestHeader, request: Any) -> bytes:
    """A complete size-prefixed request frame (client side)."""
    w = Writer()
    w.int16(header.api_key)
    w.int16(header.api_version)
    w.int32(header.correlation_id)
    w.nstring(header.client_id)
    if header.api_version >= request.FIRST_FLEXIBLE_VERSION:
        w.buf.append(0)
    request.encode(w, header.api_version)
    body = w.getvalue()
    return _SIZE.pack(len(body)) + body


def response_header_flexible(api_key: int, api_version: int) -> bool:
    if api_key == API_VERSIONS_KEY:
        return False
    return api_version >= _RESPONSE_FLEXIBLE[api_key]


def encode_response(
    api_key: int, api_version: int, correlation_id: int, response: Any
) -> list[bytes | bytearray | memoryview | Chunk]:
    """A response frame as chunks (size prefix first) ready to write in order."""
    w = Writer()
    head = w.buf
    head += _RESPONSE_HEAD.pack(0, correlation_id)  # the size is set below
    if api_key != API_VERSIONS_KEY and api_version >= _RESPONSE_FLEXIBLE[api_key]:
        head.append(0)
    response.encode(w, api_version)
    if not w.parts:
        _SIZE.pack_into(head, 0, len(head) - 4)
        return [head]
    # The head is the first part (Writer._splice hands its buffer over uncopied).
    _SIZE.pack_into(head, 0, w.size() - 4)
    return w.chunks()


def decode_response(api_key: int, api_version: int, frame: bytes | memoryview) -> tuple[int, Any]:
    """Decode a response frame body (without size prefix): (correlation_id, response)."""
    r = Reader(frame)
    correlation_id = r.int32()
    if response_header_flexible(api_key, api_version):
        r.skip_tags()
    if api_key not in RESPONSES:
        raise DecodeError(f"unknown api key {api_key}")
    return correlation_id, response_class(api_key).decode(r, api_version)
