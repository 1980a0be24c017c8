"""Round trips of every generated message at every version, and decoder fuzzing."""

from __future__ import annotations

import contextlib
import sys
import types
import typing
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strom.protocol.errors import DecodeError
from strom.protocol.generated import REQUESTS, RESPONSES, request_class, response_class
from strom.protocol.message import fields, is_message
from strom.protocol.wire import ZERO_UUID, Reader, Writer

CLASSES = sorted(
    {request_class(k) for k in REQUESTS} | {response_class(k) for k in RESPONSES},
    key=lambda c: c.__name__,
)
CASES = [(cls, v) for cls in CLASSES for v in range(cls.MIN_VERSION, cls.MAX_VERSION + 1)]

_text = st.text(max_size=8)
_small = st.integers(min_value=0, max_value=127)


def _strategy(cls: type, depth: int = 0) -> st.SearchStrategy[Any]:
    hints = typing.get_type_hints(cls, globalns=vars(sys.modules[cls.__module__]))
    defaults = cls()
    strategies: dict[str, st.SearchStrategy[Any]] = {}
    for name in fields(cls):
        strategies[name] = _for_hint(hints[name], getattr(defaults, name), depth)
    return st.builds(cls, **strategies)


def _for_hint(hint: Any, default: Any, depth: int) -> st.SearchStrategy[Any]:
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return st.one_of(st.none(), _for_hint(inner[0], default, depth))
    if typing.get_origin(hint) is list:
        (elem,) = args
        if depth > 2:
            return st.just([])
        return st.lists(_for_hint(elem, None, depth + 1), max_size=2)
    if hint is bool:
        return st.booleans()
    if hint is int:
        return _small
    if hint is float:
        return st.floats(allow_nan=False)
    if hint is str:
        return _text
    if hint is bytes:
        return (
            st.binary(min_size=16, max_size=16) if default == ZERO_UUID else st.binary(max_size=8)
        )
    if is_message(hint):
        return _strategy(typing.cast(type, hint), depth + 1)
    return st.just(default)


def _encode(obj: Any, version: int) -> bytes:
    w = Writer()
    obj.encode(w, version)
    return w.getvalue()


@pytest.mark.parametrize(("cls", "version"), CASES, ids=[f"{c.__name__}-v{v}" for c, v in CASES])
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_round_trip(cls: type, version: int, data: st.DataObject) -> None:
    obj = data.draw(_strategy(cls))
    try:
        wire = _encode(obj, version)
    except (TypeError, ValueError, AttributeError):
        # A value that the version cannot carry (e.g. a null where it is not nullable).
        return
    decoded = cls.decode(Reader(wire), version)  # type: ignore[attr-defined]
    assert _encode(decoded, version) == wire
    # Whole, and with trailing bytes left for the caller.
    r = Reader(wire + b"\x00\x01")
    cls.decode(r, version)  # type: ignore[attr-defined]
    assert r.remaining() == 2


@pytest.mark.parametrize(
    ("cls", "version"), CASES[::7], ids=[f"{c.__name__}-v{v}" for c, v in CASES[::7]]
)
@settings(max_examples=30, deadline=None)
@given(blob=st.binary(max_size=64))
def test_garbage_raises_only_decode_error(cls: type, version: int, blob: bytes) -> None:
    with contextlib.suppress(DecodeError):
        cls.decode(Reader(blob), version)  # type: ignore[attr-defined]


def test_truncation_at_every_byte_raises_decode_error() -> None:
    from strom.protocol.generated.metadata import MetadataResponse

    resp = MetadataResponse(
        brokers=[MetadataResponse.MetadataResponseBroker(1, "localhost", 9092, None)],
        cluster_id="abc",
        controller_id=1,
        topics=[
            MetadataResponse.MetadataResponseTopic(
                name="t",
                partitions=[MetadataResponse.MetadataResponsePartition(0, 0, 1, 0, [1], [1], [])],
            )
        ],
    )
    for version in (0, 9, 12):
        wire = _encode(resp, version)
        for cut in range(len(wire)):
            with pytest.raises(DecodeError):
                MetadataResponse.decode(Reader(wire[:cut]), version)


def test_huge_array_length_is_refused_before_allocation() -> None:
    from strom.protocol.generated.metadata import MetadataRequest

    wire = b"\x7f\xff\xff\xff"
    with pytest.raises(DecodeError):
        MetadataRequest.decode(Reader(wire), 1)


def test_unknown_tagged_fields_are_skipped() -> None:
    from strom.protocol.generated.api_versions import ApiVersionsRequest

    w = Writer()
    w.cstring("c")
    w.cstring("1")
    w.uvarint(1)
    w.uvarint(99)  # unknown tag
    w.uvarint(3)
    w.buf += b"xyz"
    req = ApiVersionsRequest.decode(Reader(w.getvalue()), 3)
    assert (req.client_software_name, req.client_software_version) == ("c", "1")


def test_fixed_fields_then_tags_decode_alike_inline_and_through_fixed_tags() -> None:
    """A struct of fixed-width fields and its tag section (a fetch's partitions): the
    decoders read the usual empty section inline; cut short at every byte, bounded by
    the reader's end (a zero byte beyond it), or with tags, they read as fixed_tags."""
    from strom.protocol.generated import fetch

    part = fetch.FetchRequest_FetchPartition(3, 7, 100, 6, 0, 1 << 20)
    w = Writer()
    fetch._e_FetchRequest_FetchPartition_12(part, w)
    wire = bytes(w.getvalue())
    assert wire[-1] == 0
    decode = fetch._d_FetchRequest_FetchPartition_12
    assert decode(Reader(wire)) == part
    for cut in range(len(wire)):
        with pytest.raises(DecodeError):
            decode(Reader(wire[:cut] + b"\x00\x00", 0, cut))
        with pytest.raises(DecodeError):
            decode(Reader(wire[:cut]))
    tagged = wire[:-1] + b"\x01\x63\x02ab"  # an unknown tag, skipped
    r = Reader(tagged + b"rest")
    assert decode(r) == part
    assert r.pos == len(tagged)
