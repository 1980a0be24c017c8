"""Kafka's console-consumer message formatters and deserializers.

``--formatter`` takes Kafka's class names (``org.apache.kafka.tools.consumer.
DefaultMessageFormatter``, the 3.x ``kafka.tools.*`` names, or just the simple
name): DefaultMessageFormatter prints what the ``print.*`` properties ask for,
LoggingMessageFormatter prints the same and also logs each record at INFO (not
shown by default, as with Kafka's tools-log4j), NoOpMessageFormatter prints
nothing. ``key.deserializer`` / ``value.deserializer`` / ``headers.deserializer``
take the class names of org.apache.kafka.common.serialization and print what
Java's ``toString()`` of the deserialized object prints.

Differences from Kafka, where Kafka's output is of no use: a null key or value
prints ``null.literal`` instead of running the deserializer on its bytes, and
ByteArrayDeserializer prints the bytes instead of Java's ``[B@1b6d3586``.
"""

from __future__ import annotations

import logging
import math
import struct
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import BinaryIO, Protocol

from strom.cli.common import CliError, parse_bool
from strom.client.messages import ConsumerRecord

log = logging.getLogger(__name__)

# print.* / separators of DefaultMessageFormatter, for the help text
FORMATTER_PROPERTIES = (
    "print.timestamp=true|false",
    "print.key=true|false",
    "print.offset=true|false",
    "print.partition=true|false",
    "print.headers=true|false",
    "print.value=true|false",
    "print.delivery=true|false",
    "key.separator=<key.separator> (default tab)",
    "line.separator=<line.separator> (default newline)",
    "headers.separator=<headers.separator> (default ,)",
    "null.literal=<null.literal> (default null)",
    "key.deserializer=<key.deserializer>",
    "value.deserializer=<value.deserializer>",
    "headers.deserializer=<headers.deserializer>",
)


class SerializationError(Exception):
    """A deserializer refused the bytes (Kafka's SerializationException)."""


Deserializer = Callable[[bytes], bytes]


def _fixed(name: str, size: int, fmt: str, show: Callable[[float], str]) -> Deserializer:
    def deserialize(data: bytes) -> bytes:
        if len(data) != size:
            raise SerializationError(f"Size of data received by {name} is not {size}")
        return show(struct.unpack(fmt, data)[0]).encode()

    return deserialize


def java_double(x: float, single: bool = False) -> str:
    """Java's Double.toString (Float.toString with ``single``): the shortest digits that
    read back as ``x``; plain notation from 10^-3 to 10^7, else ``d.dddE<n>``."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if x == 0:
        return "-0.0" if math.copysign(1.0, x) < 0 else "0.0"
    d = Decimal(_shortest_single(x) if single else repr(x)).normalize()
    sign = "-" if d < 0 else ""
    if 1e-3 <= abs(x) < 1e7:
        text = format(abs(d), "f")
        return sign + (text if "." in text else text + ".0")
    _, digit_tuple, exponent = d.as_tuple()
    digits = "".join(map(str, digit_tuple))
    assert isinstance(exponent, int)
    return f"{sign}{digits[0]}.{digits[1:] or '0'}E{len(digits) - 1 + exponent}"


def _shortest_single(x: float) -> str:
    packed = struct.pack(">f", x)
    for precision in range(1, 10):
        text = f"{x:.{precision}g}"
        if struct.pack(">f", float(text)) == packed:
            return text
    return repr(x)


def _bytes_str(data: bytes) -> bytes:
    """Kafka's Bytes.toString: printable ASCII as is, the rest as \\xHH."""
    return "".join(chr(b) if 32 <= b <= 126 and b != 92 else f"\\x{b:02X}" for b in data).encode()


def _uuid(data: bytes) -> bytes:
    try:
        return str(uuid.UUID(data.decode())).encode()
    except ValueError:
        raise SerializationError("Error parsing data into UUID") from None


def _boolean(data: bytes) -> bytes:
    if len(data) != 1:
        raise SerializationError("Size of data received by BooleanDeserializer is not 1")
    if data[0] not in (0, 1):
        raise SerializationError(f"Unexpected byte received by BooleanDeserializer: {data[0]}")
    return b"true" if data[0] else b"false"


def _void(data: bytes) -> bytes:
    raise SerializationError("Data should be null for a VoidDeserializer.")


_DESERIALIZERS: dict[str, Deserializer] = {
    "StringDeserializer": lambda data: data.decode("utf-8", "replace").encode(),
    "ByteArrayDeserializer": lambda data: data,
    "BytesDeserializer": _bytes_str,
    "ByteBufferDeserializer": lambda data: (
        f"java.nio.HeapByteBuffer[pos=0 lim={len(data)} cap={len(data)}]".encode()
    ),
    "IntegerDeserializer": _fixed("IntegerDeserializer", 4, ">i", lambda v: str(int(v))),
    "LongDeserializer": _fixed("LongDeserializer", 8, ">q", lambda v: str(int(v))),
    "ShortDeserializer": _fixed("ShortDeserializer", 2, ">h", lambda v: str(int(v))),
    "FloatDeserializer": _fixed("FloatDeserializer", 4, ">f", lambda v: java_double(v, True)),
    "DoubleDeserializer": _fixed("DoubleDeserializer", 8, ">d", java_double),
    "UUIDDeserializer": _uuid,
    "BooleanDeserializer": _boolean,
    "VoidDeserializer": _void,
}
DESERIALIZER_NAMES = tuple(_DESERIALIZERS)


def _simple_name(class_name: str, packages: tuple[str, ...]) -> str:
    name = class_name.strip()
    for package in packages:
        if name.startswith(package):
            return name[len(package) :]
    return name


def deserializer(class_name: str) -> Deserializer:
    """Kafka's deserializer class (full or simple name) -> bytes -> printed bytes."""
    simple = _simple_name(class_name, ("org.apache.kafka.common.serialization.",))
    found = _DESERIALIZERS.get(simple)
    if found is None:
        raise CliError(
            f"Unknown deserializer {class_name}: strom knows {', '.join(DESERIALIZER_NAMES)}"
        )
    return found


class MessageFormatter(Protocol):
    """Writes one record to the output (Kafka's MessageFormatter.writeTo)."""

    def write_to(self, record: ConsumerRecord, out: BinaryIO) -> None: ...


def _flag(props: Mapping[str, str], name: str, default: bool) -> bool:
    return parse_bool(props.get(name), default)


def _separator(props: Mapping[str, str], name: str, default: str) -> bytes:
    """A separator property; ``\\t``-style escapes are resolved (strom accepts them
    from the command line, where Kafka takes the characters as typed)."""
    text = props.get(name, default)
    return text.encode().decode("unicode_escape").encode()


@dataclass(frozen=True, slots=True)
class DefaultMessageFormatter:
    """Kafka's DefaultMessageFormatter (print.* properties, separators, deserializers)."""

    print_timestamp: bool = False
    print_partition: bool = False
    print_offset: bool = False
    print_delivery: bool = False
    print_headers: bool = False
    print_key: bool = False
    print_value: bool = True
    key_separator: bytes = b"\t"
    line_separator: bytes = b"\n"
    headers_separator: bytes = b","
    null_literal: bytes = b"null"
    key_deserializer: Deserializer | None = None
    value_deserializer: Deserializer | None = None
    headers_deserializer: Deserializer | None = None

    @classmethod
    def from_properties(cls, props: Mapping[str, str]) -> DefaultMessageFormatter:
        """Configure from formatter properties (DefaultMessageFormatter.configure)."""

        def deser(name: str) -> Deserializer | None:
            return deserializer(props[name]) if props.get(name) else None

        return cls(
            _flag(props, "print.timestamp", False),
            _flag(props, "print.partition", False),
            _flag(props, "print.offset", False),
            _flag(props, "print.delivery", False),
            _flag(props, "print.headers", False),
            _flag(props, "print.key", False),
            _flag(props, "print.value", True),
            _separator(props, "key.separator", "\t"),
            _separator(props, "line.separator", "\n"),
            _separator(props, "headers.separator", ","),
            props.get("null.literal", "null").encode(),
            deser("key.deserializer"),
            deser("value.deserializer"),
            deser("headers.deserializer"),
        )

    def _data(self, data: bytes | None, deser: Deserializer | None) -> bytes:
        if data is None:
            return self.null_literal
        return data if deser is None else deser(data)

    def fields(self, r: ConsumerRecord) -> list[bytes]:
        """The printed fields of one record, in Kafka's order."""
        out: list[bytes] = []
        if self.print_timestamp:
            kind = "LogAppendTime" if r.timestamp_type == 1 else "CreateTime"
            out.append(f"{kind}:{r.timestamp}".encode() if r.timestamp >= 0 else b"NO_TIMESTAMP")
        if self.print_partition:
            out.append(f"Partition:{r.partition}".encode())
        if self.print_offset:
            out.append(f"Offset:{r.offset}".encode())
        if self.print_delivery:
            out.append(b"Delivery:NONE")
        if self.print_headers:
            headers = [
                k.encode() + b":" + self._data(v, self.headers_deserializer) for k, v in r.headers
            ]
            out.append(self.headers_separator.join(headers) if headers else b"NO_HEADERS")
        if self.print_key:
            out.append(self._data(r.key, self.key_deserializer))
        if self.print_value:
            out.append(self._data(r.value, self.value_deserializer))
        return out

    def write_to(self, record: ConsumerRecord, out: BinaryIO) -> None:
        """Fields joined by key.separator, then line.separator (nothing when no field
        is printed)."""
        fields = self.fields(record)
        if fields:
            out.write(self.key_separator.join(fields) + self.line_separator)


@dataclass(frozen=True, slots=True)
class LoggingMessageFormatter:
    """Kafka's LoggingMessageFormatter: the default output, and an INFO log line."""

    default: DefaultMessageFormatter

    def write_to(self, record: ConsumerRecord, out: BinaryIO) -> None:
        """Write as DefaultMessageFormatter does, then log the record at INFO."""
        self.default.write_to(record, out)
        kind = "LogAppendTime" if record.timestamp_type == 1 else "CreateTime"
        key = "null " if record.key is None else record.key.decode("utf-8", "replace") + ", "
        value = "null" if record.value is None else record.value.decode("utf-8", "replace")
        log.info("%s:%s, key:%svalue:%s", kind, record.timestamp, key, value)


class NoOpMessageFormatter:
    """Kafka's NoOpMessageFormatter: prints nothing."""

    def write_to(self, record: ConsumerRecord, out: BinaryIO) -> None:
        """Write nothing."""


FORMATTER_NAMES = ("DefaultMessageFormatter", "LoggingMessageFormatter", "NoOpMessageFormatter")
_PACKAGES = ("org.apache.kafka.tools.consumer.", "kafka.tools.", "kafka.coordinator.")


def formatter(class_name: str, props: Mapping[str, str]) -> MessageFormatter:
    """The formatter named by ``--formatter``, configured with its properties."""
    simple = _simple_name(class_name, _PACKAGES)
    if simple == "NoOpMessageFormatter":
        return NoOpMessageFormatter()
    default = DefaultMessageFormatter.from_properties(props)
    if simple == "DefaultMessageFormatter":
        return default
    if simple == "LoggingMessageFormatter":
        return LoggingMessageFormatter(default)
    raise CliError(f"Unknown formatter {class_name}: strom knows {', '.join(FORMATTER_NAMES)}")
