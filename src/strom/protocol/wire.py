"""Primitive readers and writers of the Kafka wire format.

Sans-IO: a :class:`Reader` walks a ``memoryview`` and raises only
:class:`~strom.protocol.errors.DecodeError`; every length read from the wire is
checked against the bytes that remain before anything is allocated. A
:class:`Writer` appends to a ``bytearray`` and can splice in opaque record
chunks (file regions served with sendfile) without copying them.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any, Protocol

from strom.protocol.errors import DecodeError

if TYPE_CHECKING:
    import uuid

_I8 = struct.Struct(">b")
_I16 = struct.Struct(">h")
_U16 = struct.Struct(">H")
_I32 = struct.Struct(">i")
_U32 = struct.Struct(">I")
_I64 = struct.Struct(">q")
_F64 = struct.Struct(">d")

ZERO_UUID = b"\x00" * 16


class Chunk(Protocol):
    """An opaque piece of record data that is not in memory (e.g. a file range)."""

    @property
    def length(self) -> int: ...

    def read(self) -> bytes: ...


class ChunkedRecords:
    """Record data made of in-memory buffers and :class:`Chunk` regions."""

    __slots__ = ("length", "parts")

    def __init__(self, parts: list[bytes | memoryview | Chunk]) -> None:
        self.parts = parts
        self.length = sum(len(p) if isinstance(p, _BUFFERS) else p.length for p in parts)

    def __len__(self) -> int:
        return self.length

    def __bytes__(self) -> bytes:
        out = bytearray()
        for p in self.parts:
            out += p if isinstance(p, _BUFFERS) else p.read()
        return bytes(out)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (bytes, bytearray, memoryview, ChunkedRecords)):
            return bytes(self) == bytes(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]


Records = bytes | bytearray | memoryview | ChunkedRecords
Buffer = bytes | bytearray | memoryview
_BUFFERS = (bytes, bytearray, memoryview)


def is_buffer(part: object) -> bool:
    """True for in-memory bytes; False for a Chunk (cheaper than isinstance on a Protocol)."""
    return isinstance(part, _BUFFERS)


class Reader:
    """Reads Kafka primitives from a buffer; every failure is a DecodeError."""

    __slots__ = ("buf", "end", "pos")

    def __init__(self, buf: bytes | bytearray | memoryview, pos: int = 0, end: int = -1) -> None:
        self.buf = memoryview(buf).cast("B") if not isinstance(buf, memoryview) else buf
        self.pos = pos
        self.end = len(self.buf) if end < 0 else end

    def remaining(self) -> int:
        return self.end - self.pos

    def _take(self, n: int) -> int:
        p = self.pos
        if n < 0 or p + n > self.end:
            raise DecodeError(f"need {n} bytes at {p}, have {self.end - p}")
        self.pos = p + n
        return p

    def int8(self) -> int:
        return int(_I8.unpack_from(self.buf, self._take(1))[0])

    def fixed(self, s: struct.Struct) -> tuple[Any, ...]:
        """Consecutive fixed-width fields, read with one unpack (generated decoders)."""
        return s.unpack_from(self.buf, self._take(s.size))

    def bool(self) -> bool:
        return self.buf[self._take(1)] != 0

    def int16(self) -> int:
        return int(_I16.unpack_from(self.buf, self._take(2))[0])

    def uint16(self) -> int:
        return int(_U16.unpack_from(self.buf, self._take(2))[0])

    def int32(self) -> int:
        return int(_I32.unpack_from(self.buf, self._take(4))[0])

    def uint32(self) -> int:
        return int(_U32.unpack_from(self.buf, self._take(4))[0])

    def int64(self) -> int:
        return int(_I64.unpack_from(self.buf, self._take(8))[0])

    def float64(self) -> float:
        return float(_F64.unpack_from(self.buf, self._take(8))[0])

    def uuid(self) -> bytes:
        p = self._take(16)
        return bytes(self.buf[p : p + 16])

    def uvarint(self) -> int:
        pos = self.pos
        if pos < self.end:
            b = self.buf[pos]
            if b < 0x80:  # one byte: lengths, counts and empty tag sections mostly
                self.pos = pos + 1
                return b
        value = 0
        shift = 0
        buf = self.buf
        while True:
            if self.pos >= self.end:
                raise DecodeError("truncated varint")
            b = buf[self.pos]
            self.pos += 1
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                return value
            shift += 7
            if shift > 28:
                raise DecodeError("varint too long")

    def varint(self) -> int:
        v = self.uvarint()
        return (v >> 1) ^ -(v & 1)

    def _length(self, n: int) -> int:
        if n > self.end - self.pos:
            raise DecodeError(f"length {n} exceeds remaining {self.end - self.pos}")
        return n

    def _text(self, n: int) -> str:
        p = self._take(n)
        try:
            return str(self.buf[p : p + n], "utf-8")
        except UnicodeDecodeError as e:
            raise DecodeError(f"invalid utf-8: {e}") from None

    def string(self) -> str:
        n = self.int16()
        if n < 0:
            raise DecodeError("null string in a non-nullable field")
        return self._text(n)

    def nstring(self) -> str | None:
        n = self.int16()
        return None if n < 0 else self._text(n)

    def cstring(self) -> str:
        n = self.uvarint() - 1
        if n < 0:
            raise DecodeError("null string in a non-nullable field")
        return self._text(n)

    def cnstring(self) -> str | None:
        n = self.uvarint() - 1
        return None if n < 0 else self._text(n)

    def _raw(self, n: int) -> bytes:
        p = self._take(n)
        return bytes(self.buf[p : p + n])

    def bytes_(self) -> bytes:
        n = self.int32()
        if n < 0:
            raise DecodeError("null bytes in a non-nullable field")
        return self._raw(n)

    def nbytes(self) -> bytes | None:
        n = self.int32()
        return None if n < 0 else self._raw(n)

    def cbytes(self) -> bytes:
        n = self.uvarint() - 1
        if n < 0:
            raise DecodeError("null bytes in a non-nullable field")
        return self._raw(n)

    def cnbytes(self) -> bytes | None:
        n = self.uvarint() - 1
        return None if n < 0 else self._raw(n)

    def records(self) -> memoryview | None:
        n = self.int32()
        if n < 0:
            return None
        p = self._take(n)
        return self.buf[p : p + n]

    def crecords(self) -> memoryview | None:
        n = self.uvarint() - 1
        if n < 0:
            return None
        p = self._take(n)
        return self.buf[p : p + n]

    def array_len(self) -> int:
        """Length of a non-nullable classic array."""
        n = self.int32()
        if n < 0:
            raise DecodeError("null array in a non-nullable field")
        return self._length(n)

    def narray_len(self) -> int:
        n = self.int32()
        return -1 if n < 0 else self._length(n)

    def carray_len(self) -> int:
        n = self.uvarint() - 1
        if n < 0:
            raise DecodeError("null array in a non-nullable field")
        return self._length(n)

    def cnarray_len(self) -> int:
        n = self.uvarint() - 1
        return -1 if n < 0 else self._length(n)

    def tag_header(self) -> tuple[int, int]:
        tag = self.uvarint()
        size = self._length(self.uvarint())
        return tag, size

    def sub(self, size: int) -> Reader:
        """A reader over the next ``size`` bytes (a tagged field's value)."""
        p = self._take(size)
        return Reader(self.buf, p, p + size)

    def skip(self, size: int) -> None:
        self._take(size)

    def skip_tags(self) -> None:
        pos = self.pos
        if pos < self.end and self.buf[pos] == 0:  # no tagged fields: the usual case
            self.pos = pos + 1
            return
        for _ in range(self._length(self.uvarint())):
            _, size = self.tag_header()
            self._take(size)


def uvarint_bytes(v: int) -> bytes:
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


class Writer:
    """Appends Kafka primitives; record data may be spliced in as chunks."""

    __slots__ = ("buf", "parts")

    def __init__(self) -> None:
        self.buf = bytearray()
        self.parts: list[bytes | bytearray | memoryview | Chunk] = []

    def int8(self, v: int) -> None:
        self.buf += _I8.pack(v)

    def bool(self, v: bool) -> None:
        self.buf.append(1 if v else 0)

    def int16(self, v: int) -> None:
        self.buf += _I16.pack(v)

    def uint16(self, v: int) -> None:
        self.buf += _U16.pack(v)

    def int32(self, v: int) -> None:
        self.buf += _I32.pack(v)

    def uint32(self, v: int) -> None:
        self.buf += _U32.pack(v)

    def int64(self, v: int) -> None:
        self.buf += _I64.pack(v)

    def float64(self, v: float) -> None:
        self.buf += _F64.pack(v)

    def uuid(self, v: bytes | uuid.UUID) -> None:
        b = v if isinstance(v, bytes | bytearray | memoryview) else v.bytes
        if len(b) != 16:
            raise ValueError("uuid must be 16 bytes")
        self.buf += b

    def uvarint(self, v: int) -> None:
        buf = self.buf
        if 0 <= v < 0x80:
            buf.append(v)
            return
        while v >= 0x80:
            buf.append((v & 0x7F) | 0x80)
            v >>= 7
        buf.append(v)

    def varint(self, v: int) -> None:
        self.uvarint((v << 1) ^ (v >> 63))

    def string(self, v: str) -> None:
        b = v.encode()
        self.buf += _I16.pack(len(b))
        self.buf += b

    def nstring(self, v: str | None) -> None:
        if v is None:
            self.buf += b"\xff\xff"
        else:
            self.string(v)

    def cstring(self, v: str) -> None:
        b = v.encode()
        self.uvarint(len(b) + 1)
        self.buf += b

    def cnstring(self, v: str | None) -> None:
        if v is None:
            self.buf.append(0)
        else:
            self.cstring(v)

    def bytes_(self, v: bytes | bytearray | memoryview) -> None:
        self.buf += _I32.pack(len(v))
        self.buf += v

    def nbytes(self, v: bytes | bytearray | memoryview | None) -> None:
        if v is None:
            self.buf += b"\xff\xff\xff\xff"
        else:
            self.bytes_(v)

    def cbytes(self, v: bytes | bytearray | memoryview) -> None:
        self.uvarint(len(v) + 1)
        self.buf += v

    def cnbytes(self, v: bytes | bytearray | memoryview | None) -> None:
        if v is None:
            self.buf.append(0)
        else:
            self.cbytes(v)

    def _splice(self, v: Records) -> None:
        if isinstance(v, ChunkedRecords):
            for p in v.parts:
                if isinstance(p, _BUFFERS):
                    self.buf += p
                else:
                    self.parts.append(bytes(self.buf))
                    self.buf = bytearray()
                    self.parts.append(p)
        else:
            self.buf += v

    def records(self, v: Records | None) -> None:
        if v is None:
            self.buf += b"\xff\xff\xff\xff"
            return
        self.buf += _I32.pack(len(v))
        self._splice(v)

    def crecords(self, v: Records | None) -> None:
        if v is None:
            self.buf.append(0)
            return
        self.uvarint(len(v) + 1)
        self._splice(v)

    def array_len(self, n: int) -> None:
        self.buf += _I32.pack(n)

    def carray_len(self, n: int) -> None:
        self.uvarint(n + 1)

    def sub(self) -> Writer:
        return Writer()

    def tagged(self, tags: list[tuple[int, Writer]]) -> None:
        if not tags:
            self.buf.append(0)
            return
        self.uvarint(len(tags))
        for tag, w in tags:
            self.uvarint(tag)
            self.uvarint(len(w.buf))
            self.buf += w.buf

    def chunks(self) -> list[bytes | bytearray | memoryview | Chunk]:
        """Everything written, as buffers and chunks to send in order."""
        if self.parts:
            return [*self.parts, bytes(self.buf)]
        return [self.buf]

    def getvalue(self) -> bytes:
        out = bytearray()
        for p in self.chunks():
            out += p if isinstance(p, _BUFFERS) else p.read()
        return bytes(out)

    def size(self) -> int:
        return len(self.buf) + sum(
            len(p) if isinstance(p, _BUFFERS) else p.length for p in self.parts
        )
