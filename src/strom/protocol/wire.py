"""Primitive readers and writers of the Kafka wire format.

Sans-IO: a :class:`Reader` walks a ``memoryview`` and raises only
:class:`~strom.protocol.errors.DecodeError`; every length read from the wire is
checked against the bytes that remain before anything is allocated. A
:class:`Writer` appends to a ``bytearray`` and can splice in opaque record
chunks (file regions served with sendfile) without copying them.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any, Final, Protocol

from strom.protocol.errors import DecodeError

if TYPE_CHECKING:
    import uuid

# Final: the mypyc build reads a Final module constant directly, not from the module dict
_I8: Final = struct.Struct(">b")
_I16: Final = struct.Struct(">h")
_U16: Final = struct.Struct(">H")
_I32: Final = struct.Struct(">i")
_U32: Final = struct.Struct(">I")
_I64: Final = struct.Struct(">q")
_F64: Final = struct.Struct(">d")

ZERO_UUID: Final = b"\x00" * 16


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
        length = 0
        for p in parts:
            length += len(p) if isinstance(p, _BUFFERS) else p.length
        self.length = length

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
_BUFFERS: Final = (bytes, bytearray, memoryview)


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
            raise _short(n, p, self.end)
        self.pos = p + n
        return p

    # The fixed-width readers check the bounds themselves rather than through _take (one
    # call fewer per field: they are most of a request's decoding).
    def int8(self) -> int:
        p = self.pos
        if p + 1 > self.end:
            raise _short(1, p, self.end)
        self.pos = p + 1
        v: int = _I8.unpack_from(self.buf, p)[0]
        return v

    def fixed(self, s: struct.Struct) -> tuple[Any, ...]:
        """Consecutive fixed-width fields, read with one unpack (generated decoders)."""
        p = self.pos
        n = s.size
        if p + n > self.end:
            raise _short(n, p, self.end)
        self.pos = p + n
        return s.unpack_from(self.buf, p)

    def fixed_tags(self, s: struct.Struct) -> tuple[Any, ...]:
        """fixed(s), then skip_tags(): a struct that ends with fixed-width fields (one
        call instead of two per struct; generated decoders)."""
        p = self.pos
        end = self.end
        n = s.size
        if p + n > end:
            raise _short(n, p, end)
        values = s.unpack_from(self.buf, p)
        p += n
        if p < end and self.buf[p] == 0:  # no tagged fields: the usual case
            self.pos = p + 1
        else:
            self.pos = p
            self.skip_tags()
        return values

    def bool(self) -> bool:
        p = self.pos
        if p + 1 > self.end:
            raise _short(1, p, self.end)
        self.pos = p + 1
        return self.buf[p] != 0

    def int16(self) -> int:
        p = self.pos
        if p + 2 > self.end:
            raise _short(2, p, self.end)
        self.pos = p + 2
        v: int = _I16.unpack_from(self.buf, p)[0]
        return v

    def uint16(self) -> int:
        p = self.pos
        if p + 2 > self.end:
            raise _short(2, p, self.end)
        self.pos = p + 2
        v: int = _U16.unpack_from(self.buf, p)[0]
        return v

    def int32(self) -> int:
        p = self.pos
        if p + 4 > self.end:
            raise _short(4, p, self.end)
        self.pos = p + 4
        v: int = _I32.unpack_from(self.buf, p)[0]
        return v

    def uint32(self) -> int:
        p = self.pos
        if p + 4 > self.end:
            raise _short(4, p, self.end)
        self.pos = p + 4
        v: int = _U32.unpack_from(self.buf, p)[0]
        return v

    def int64(self) -> int:
        p = self.pos
        if p + 8 > self.end:
            raise _short(8, p, self.end)
        self.pos = p + 8
        v: int = _I64.unpack_from(self.buf, p)[0]
        return v

    def float64(self) -> float:
        p = self.pos
        if p + 8 > self.end:
            raise _short(8, p, self.end)
        self.pos = p + 8
        v: float = _F64.unpack_from(self.buf, p)[0]
        return v

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
        p = self.pos
        if n < 0 or p + n > self.end:
            raise _short(n, p, self.end)
        self.pos = p + n
        try:
            return self.buf[p : p + n].tobytes().decode()  # cheaper than str(view, "utf-8")
        except UnicodeDecodeError as e:
            raise DecodeError(f"invalid utf-8: {e}") from None

    def _clen(self) -> int:
        """A compact length: uvarint - 1 (-1 for null); one byte read inline, mostly."""
        p = self.pos
        if p < self.end:
            b = self.buf[p]
            if b < 0x80:
                self.pos = p + 1
                return b - 1
        return self.uvarint() - 1

    def string(self) -> str:
        n = self.int16()
        if n < 0:
            raise DecodeError("null string in a non-nullable field")
        return self._text(n)

    def nstring(self) -> str | None:
        n = self.int16()
        return None if n < 0 else self._text(n)

    def cstring(self) -> str:
        # _clen() and _text() written out: topic names, the commonest strings
        p = self.pos
        end = self.end
        buf = self.buf
        if p < end and buf[p] < 0x80:
            n = buf[p] - 1
            p += 1
            self.pos = p
        else:
            n = self.uvarint() - 1
            p = self.pos
        if n < 0:
            raise DecodeError("null string in a non-nullable field")
        if p + n > end:
            raise _short(n, p, end)
        self.pos = p + n
        try:
            return buf[p : p + n].tobytes().decode()
        except UnicodeDecodeError as e:
            raise DecodeError(f"invalid utf-8: {e}") from None

    def cnstring(self) -> str | None:
        n = self._clen()
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
        n = self._clen()
        if n < 0:
            raise DecodeError("null bytes in a non-nullable field")
        return self._raw(n)

    def cnbytes(self) -> bytes | None:
        n = self._clen()
        return None if n < 0 else self._raw(n)

    def _view(self, n: int) -> memoryview | None:
        if n < 0:
            return None
        p = self.pos
        if p + n > self.end:
            raise _short(n, p, self.end)
        self.pos = p + n
        return self.buf[p : p + n]

    def records(self) -> memoryview | None:
        return self._view(self.int32())

    def crecords(self) -> memoryview | None:
        return self._view(self._clen())

    def _count(self, n: int) -> int:
        if n < 0:
            raise DecodeError("null array in a non-nullable field")
        if n > self.end - self.pos:
            raise DecodeError(f"length {n} exceeds remaining {self.end - self.pos}")
        return n

    def array_len(self) -> int:
        """Length of a non-nullable classic array."""
        return self._count(self.int32())

    def narray_len(self) -> int:
        n = self.int32()
        return -1 if n < 0 else self._count(n)

    def carray_len(self) -> int:
        return self._count(self._clen())

    def cnarray_len(self) -> int:
        n = self._clen()
        return -1 if n < 0 else self._count(n)

    def tag_count(self) -> int:
        """The number of tagged fields (generated decoders); an empty section, a single
        zero byte, is the usual case."""
        p = self.pos
        if p < self.end and self.buf[p] == 0:
            self.pos = p + 1
            return 0
        return self._length(self.uvarint())

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


def _short(n: int, p: int, end: int) -> DecodeError:
    return DecodeError(f"need {n} bytes at {p}, have {end - p}")


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
        buf = self.buf
        buf += _I16.pack(len(b))
        buf += b

    def nstring(self, v: str | None) -> None:
        if v is None:
            self.buf += b"\xff\xff"
            return
        b = v.encode()
        buf = self.buf
        buf += _I16.pack(len(b))
        buf += b

    def cstring(self, v: str) -> None:
        b = v.encode()
        n = len(b) + 1
        buf = self.buf
        if n < 0x80:
            buf.append(n)
        else:
            self.uvarint(n)
        buf += b

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
                    # The buffer so far becomes a part as it is (not copied); a new one
                    # takes what follows the chunk.
                    self.parts.append(self.buf)
                    self.parts.append(p)
                    self.buf = bytearray()
        else:
            self.buf += v

    def records(self, v: Records | None) -> None:
        if v is None:
            self.buf += b"\xff\xff\xff\xff"
            return
        self.buf += _I32.pack(v.length if isinstance(v, ChunkedRecords) else len(v))
        self._splice(v)

    def crecords(self, v: Records | None) -> None:
        buf = self.buf
        if v is None:
            buf.append(0)
        elif isinstance(v, ChunkedRecords):
            self.uvarint(v.length + 1)
            self._splice(v)
        else:
            n = len(v) + 1
            if n < 0x80:
                buf.append(n)
            else:
                self.uvarint(n)
            buf += v

    def array_len(self, n: int) -> None:
        self.buf += _I32.pack(n)

    def carray_len(self, n: int) -> None:
        if 0 <= n < 0x7F:
            self.buf.append(n + 1)
        else:
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
            return [*self.parts, self.buf]
        return [self.buf]

    def getvalue(self) -> bytes:
        out = bytearray()
        for p in self.chunks():
            out += p if isinstance(p, _BUFFERS) else p.read()
        return bytes(out)

    def size(self) -> int:
        size = len(self.buf)
        for p in self.parts:
            size += len(p) if isinstance(p, _BUFFERS) else p.length
        return size
