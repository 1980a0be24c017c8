"""FrameBuffer: pipelined frames out of arbitrary reads, without copying whole chunks."""

from __future__ import annotations

import itertools
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strom.protocol.errors import DecodeError
from strom.server.frames import FrameBuffer


def framed(*bodies: bytes) -> bytes:
    return b"".join(struct.pack(">i", len(b)) + b for b in bodies)


def receive(s: FrameBuffer, data: bytes) -> None:
    """As the transport does: into the buffer get_buffer gives, as much as fits."""
    while data:
        target = s.get_buffer()
        assert len(target) > 0
        n = min(len(target), len(data))
        target[:n] = data[:n]
        s.received(n)
        data = data[n:]


def split_all(splitter: FrameBuffer, reads: list[bytes]) -> list[bytes]:
    out: list[bytes] = []
    for data in reads:
        receive(splitter, data)
        while (frame := splitter.next_frame()) is not None:
            out.append(bytes(frame))
    return out


def test_several_frames_in_one_read_come_out_in_order() -> None:
    s = FrameBuffer(100)
    assert split_all(s, [framed(b"a", b"", b"ccc")]) == [b"a", b"", b"ccc"]
    assert s.buffered() == 0


def test_a_frame_split_anywhere_is_assembled() -> None:
    data = framed(b"hello", b"world!")
    for cut in range(len(data) + 1):
        s = FrameBuffer(100)
        assert split_all(s, [data[:cut], data[cut:]]) == [b"hello", b"world!"], cut


def test_byte_by_byte() -> None:
    data = framed(b"x" * 300, b"y")
    s = FrameBuffer(1000)
    assert split_all(s, [data[i : i + 1] for i in range(len(data))]) == [b"x" * 300, b"y"]


def test_a_partial_frame_stays_buffered() -> None:
    s = FrameBuffer(100)
    assert split_all(s, [framed(b"abc")[:5]]) == []
    assert s.buffered() == 5


def test_a_frame_is_a_read_only_view_of_the_buffer_it_was_received_into() -> None:
    s = FrameBuffer(100)
    target = s.get_buffer()
    data = framed(b"payload")
    target[: len(data)] = data
    s.received(len(data))
    frame = s.next_frame()
    assert frame is not None and frame.readonly and frame.obj is target.obj
    assert bytes(frame) == b"payload"


def test_frames_handed_out_are_never_written_over() -> None:
    """Small frames fill chunks front to back; a full chunk is replaced, not reused."""
    s = FrameBuffer(1000, chunk=64)
    kept = []
    for i in range(200):
        receive(s, framed(bytes([i % 256]) * (i % 50)))
        frame = s.next_frame()
        assert frame is not None
        kept.append((frame, bytes([i % 256]) * (i % 50)))
    assert all(bytes(frame) == want for frame, want in kept)


def test_frames_waiting_to_be_asked_for_are_not_copied_to_the_next_chunk() -> None:
    """A client pipelining while its connection is busy: each byte is received once."""
    s = FrameBuffer(1000, chunk=64)
    bodies = [bytes([i]) * 20 for i in range(50)]
    for body in bodies:
        receive(s, framed(body))
    assert s.buffered() == 50 * 24
    frames = []
    while (frame := s.next_frame()) is not None:
        frames.append(frame)
    assert [bytes(f) for f in frames] == bodies
    assert all(len(f.obj) == 64 for f in frames)  # type: ignore[arg-type]


def test_a_frame_larger_than_a_chunk_gets_a_buffer_of_its_own() -> None:
    body = bytes(range(256)) * 40  # 10,240 bytes
    s = FrameBuffer(1 << 20, chunk=1024)
    receive(s, framed(b"small") + framed(body)[:100])
    assert bytes(s.next_frame() or b"") == b"small"
    assert s.next_frame() is None
    target = s.get_buffer()  # the big frame's own buffer: exactly the rest of it
    assert len(target) == len(body) - 96
    receive(s, framed(body)[100:] + framed(b"next"))
    frame = s.next_frame()
    assert frame is not None and bytes(frame) == body and len(frame.obj) == len(body)  # type: ignore[arg-type]
    assert bytes(s.next_frame() or b"") == b"next"
    assert s.buffered() == 0


def test_a_frame_spanning_chunks_keeps_its_head() -> None:
    s = FrameBuffer(1000, chunk=32)
    data = framed(b"a" * 20, b"b" * 20, b"c" * 27)
    receive(s, data)
    got = []
    while (frame := s.next_frame()) is not None:
        got.append(bytes(frame))
    assert got == [b"a" * 20, b"b" * 20, b"c" * 27]


@pytest.mark.parametrize("size", [-1, 101])
def test_a_size_outside_the_limit_is_refused_before_the_body(size: int) -> None:
    s = FrameBuffer(100)
    receive(s, struct.pack(">i", size))
    s.get_buffer()  # receiving on is not refused; the size is, when the frame is asked for
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
    for chunk in (16, 64, 4096):
        s = FrameBuffer(100, chunk=chunk)
        assert split_all(s, reads) == bodies
        assert s.buffered() == 0
