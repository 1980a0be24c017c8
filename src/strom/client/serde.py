"""Key/value serializers and deserializers by name or callable (sans-IO).

Accepted specs: None or ``"bytes"`` (bytes-like passes through), ``"str"``
(UTF-8), ``"json"``, ``"int"`` (Kafka's IntegerSerializer: 4 bytes big-endian),
Kafka's Java class names (``org.apache.kafka.common.serialization.StringSerializer``
...), or any callable ``f(value) -> bytes | None`` (``f(data) -> object`` to
deserialize). None stays None (a null key or tombstone) for every built-in.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from typing import Any

from strom.client.config import ConfigError

Serializer = Callable[[Any], bytes | None]
Deserializer = Callable[[bytes | None], Any]

_JAVA = "org.apache.kafka.common.serialization."
_INT = struct.Struct(">i")


def _bytes_out(value: Any) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise TypeError(
        f"cannot send {type(value).__name__} with the bytes serializer; "
        "set key.serializer/value.serializer (e.g. 'str' or 'json')"
    )


def _str_out(value: Any) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    return str(value).encode("utf-8")


def _json_out(value: Any) -> bytes | None:
    return None if value is None else json.dumps(value, separators=(",", ":")).encode()


def _int_out(value: Any) -> bytes | None:
    return None if value is None else _INT.pack(int(value))


def _bytes_in(data: bytes | None) -> Any:
    return data


def passes_through(deserializer: Deserializer) -> bool:
    """True for the bytes deserializer: records need no deserializing pass."""
    return deserializer is _bytes_in


def _str_in(data: bytes | None) -> Any:
    return None if data is None else data.decode("utf-8", "replace")


def _json_in(data: bytes | None) -> Any:
    return None if data is None else json.loads(data)


def _int_in(data: bytes | None) -> Any:
    return None if data is None else _INT.unpack(data)[0]


_SERIALIZERS: dict[str, Serializer] = {
    "bytes": _bytes_out,
    "str": _str_out,
    "string": _str_out,
    "json": _json_out,
    "int": _int_out,
    _JAVA + "ByteArraySerializer": _bytes_out,
    _JAVA + "BytesSerializer": _bytes_out,
    _JAVA + "StringSerializer": _str_out,
    _JAVA + "IntegerSerializer": _int_out,
}
_DESERIALIZERS: dict[str, Deserializer] = {
    "bytes": _bytes_in,
    "str": _str_in,
    "string": _str_in,
    "json": _json_in,
    "int": _int_in,
    _JAVA + "ByteArrayDeserializer": _bytes_in,
    _JAVA + "BytesDeserializer": _bytes_in,
    _JAVA + "StringDeserializer": _str_in,
    _JAVA + "IntegerDeserializer": _int_in,
}


def serializer(spec: Any, option: str) -> Serializer:
    """The serializer for ``spec``; ConfigError naming ``option`` if unknown."""
    if spec is None:
        return _bytes_out
    if callable(spec):
        return spec  # type: ignore[no-any-return]
    found = _SERIALIZERS.get(str(spec).strip()) or _SERIALIZERS.get(str(spec).strip().lower())
    if found is None:
        raise ConfigError(f"{option}: unknown serializer {spec!r} (bytes, str, json, int)")
    return found


def deserializer(spec: Any, option: str) -> Deserializer:
    """The deserializer for ``spec``; ConfigError naming ``option`` if unknown."""
    if spec is None:
        return _bytes_in
    if callable(spec):
        return spec  # type: ignore[no-any-return]
    found = _DESERIALIZERS.get(str(spec).strip()) or _DESERIALIZERS.get(str(spec).strip().lower())
    if found is None:
        raise ConfigError(f"{option}: unknown deserializer {spec!r} (bytes, str, json, int)")
    return found


def header_bytes(value: bytes | str | None) -> bytes | None:
    """Header values may be given as str (UTF-8) or bytes."""
    return value.encode("utf-8") if isinstance(value, str) else value
