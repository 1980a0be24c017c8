"""FrameSplitter: pipelined frames out of arbitrary reads, without copying whole chunks."""

from __future__ import annotations

import itertools
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strom.protocol.errors import DecodeError
from strom.server.frames import FrameSplitter


def framed(*bodies: bytes) -> bytes:
    return b"".join(struct.pack(">i", len(b)) + b for b in bodies)


def split_all(splitter: FrameSplitter, reads: list[bytes]) -> list[bytes]:
    out: list[bytes] = []
    for data in reads:
        splitter.feed(data)
        while (frame := splitter.next_frame()) is not None:
            out.append(bytes(frame))
    return out


def test_several_frames_in_one_read_come_out_in_order() -> None:
    s = FrameSplitter(100)
    assert split_all(s, [framed(b"a", b"", b"ccc")]) == [b"a", b"", b"ccc"]
    assert s.buffered() == 0


def test_a_frame_split_anywhere_is_assembled() -> None:
    data = framed(b"hello", b"world!")
    for cut in range(len(data) + 1):
        s = FrameSplitter(100)
        assert split_all(s, [data[:cut], data[cut:]]) == [b"hello", b"world!"], cut


def test_byte_by_byte() -> None:
    data = framed(b"x" * 300, b"y")
    s = FrameSplitter(1000)
    assert split_all(s, [data[i : i + 1] for i in range(len(data))]) == [b"x" * 300, b"y"]


def test_a_partial_frame_stays_buffered() -> None:
    s = FrameSplitter(100)
    assert split_all(s, [framed(b"abc")[:5]]) == []
    assert s.buffered() == 5


def test_a_whole_frame_is_a_view_of_the_read_not_a_copy() -> None:
    data = framed(b"payload")
    s = FrameSplitter(100)
    s.feed(data)
    frame = s.next_frame()
    assert frame is not None and frame.obj is data


@pytest.mark.parametrize("size", [-1, 101])
def test_a_size_outside_the_limit_is_refused_before_the_body(size: int) -> None:
    s = FrameSplitter(100)
    s.feed(struct.pack(">i", size))
    with pytest.raises(DecodeError, match=r"socket\.request\.max\.bytes=100"):
        s.next_frame()


@given(
    st.lists(st.binary(max_size=40), max_size=8),
    st.lists(st.integers(min_value=0, max_value=400), max_size=10),
)
def test_any_cutting_of_the_stream_gives_the_same_frames(
    bodies: list[bytes], cuts: list[int]
) -> None:
    data = framed(*bodies)
    points = sorted({min(c, len(data)) for c in cuts} | {0, len(data)})
    reads = [data[a:b] for a, b in itertools.pairwise(points)]
    s = FrameSplitter(100)
    assert split_all(s, reads) == bodies
    assert s.buffered() == 0
