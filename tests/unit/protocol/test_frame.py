"""Framing, headers, and the generated code being current."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strom.protocol.errors import DecodeError
from strom.protocol.frame import (
    FrameDecoder,
    FrameTooLarge,
    RequestHeader,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
    parse_request_header,
)
from strom.protocol.generated.api_versions import ApiVersionsRequest, ApiVersionsResponse
from strom.protocol.generated.metadata import MetadataRequest, MetadataResponse

ROOT = Path(__file__).resolve().parents[3]
SCHEMAS = ROOT.parent / "shared" / "kafka-protocol" / "message"


def _frames(payloads: list[bytes]) -> bytes:
    return b"".join(len(p).to_bytes(4, "big") + p for p in payloads)


@given(st.lists(st.binary(max_size=50), max_size=5))
def test_frames_whole_and_byte_by_byte(payloads: list[bytes]) -> None:
    data = _frames(payloads)
    assert FrameDecoder().feed(data) == payloads
    dec = FrameDecoder()
    got: list[bytes] = []
    for i in range(len(data)):
        got += dec.feed(data[i : i + 1])
    assert got == payloads
    assert dec.pending() == 0


def test_oversized_frame_refused_before_body() -> None:
    dec = FrameDecoder(max_size=100)
    with pytest.raises(FrameTooLarge):
        dec.feed((101).to_bytes(4, "big"))
    with pytest.raises(DecodeError):
        FrameDecoder().feed(b"\xff\xff\xff\xff")


@settings(max_examples=300)
@given(st.binary(max_size=80))
def test_random_request_frames_raise_only_decode_error(blob: bytes) -> None:
    try:
        header, r = parse_request_header(blob)
        decode_request(header, r)
    except DecodeError:
        pass


@pytest.mark.parametrize("version", [0, 1, 4, 9, 12])
def test_request_header_round_trip(version: int) -> None:
    header = RequestHeader(3, version, 77, "client-x")
    frame = encode_request(header, MetadataRequest(topics=None if version else []))
    parsed, r = parse_request_header(frame[4:])
    assert parsed == header
    req = decode_request(parsed, r)
    assert isinstance(req, MetadataRequest)


@pytest.mark.parametrize("version", [0, 9, 12])
def test_response_header_flexibility(version: int) -> None:
    chunks = encode_response(3, version, 5, MetadataResponse(cluster_id="c"))
    frame = b"".join(bytes(c) for c in chunks)  # type: ignore[arg-type]
    assert int.from_bytes(frame[:4], "big") == len(frame) - 4
    cid, resp = decode_response(3, version, frame[4:])
    assert cid == 5
    assert isinstance(resp, MetadataResponse)


def test_api_versions_response_always_uses_header_v0() -> None:
    chunks = encode_response(18, 3, 9, ApiVersionsResponse())
    frame = b"".join(bytes(c) for c in chunks)  # type: ignore[arg-type]
    # correlation id, then straight into the body (error code): no tag buffer.
    assert frame[4:8] == (9).to_bytes(4, "big")
    assert frame[8:10] == b"\x00\x00"
    cid, _ = decode_response(18, 3, frame[4:])
    assert cid == 9
    assert ApiVersionsRequest().client_software_name == ""


@pytest.mark.skipif(not SCHEMAS.is_dir(), reason="Kafka schema folder not available")
def test_generated_code_matches_generator() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "gen_protocol.py"), str(SCHEMAS), "--check"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def _header(api_key: int, version: int, client_id: bytes) -> bytes:
    return (
        api_key.to_bytes(2, "big", signed=True)
        + version.to_bytes(2, "big")
        + b"\0\0\0\7"
        + client_id
    )


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        (b"", "need 2 bytes at 0"),
        (_header(3, 9, b"")[:5], "need 4 bytes at 4"),
        (_header(3, 9, b""), "need 2 bytes at 8"),  # no client id length
        (_header(3, 9, b"\xff"), "need 2 bytes at 8"),
        (_header(999, 9, b""), "unknown api key 999"),  # 8 bytes: the key is checked first
        (_header(-1, 0, b"\xff\xff"), "unknown api key -1"),
        (_header(3, 9, b"\x00\x05abc"), "need 5 bytes at 10, have 3"),  # client id cut short
        (_header(3, 9, b"\x00\x02\xc3\x28"), "invalid utf-8"),
        (_header(3, 9, b"\xff\xff"), "truncated varint"),  # v9 is flexible: no tag section
        (_header(3, 9, b"\xff\xff\x01\x05\x02x"), "length 2 exceeds remaining 1"),  # tag cut short
    ],
)
def test_malformed_request_headers_raise_decode_error(frame: bytes, error: str) -> None:
    with pytest.raises(DecodeError, match=error):
        parse_request_header(frame)


@pytest.mark.parametrize(
    ("frame", "client_id", "body_at"),
    [
        (_header(3, 8, b"\xff\xff"), None, 10),  # the smallest header: a null client id
        (_header(3, 8, b"\x00\x00"), "", 10),
        (_header(3, 9, b"\x00\x01c\x00"), "c", 12),  # flexible: an empty tag section
        (_header(3, 9, b"\x00\x01c\x01\x05\x01x"), "c", 15),  # an unknown tagged field
        (_header(3, 99, b"\x00\x01c\x00"), "c", 11),  # a version above the highest: no tags
    ],
)
def test_request_header_edges(frame: bytes, client_id: str | None, body_at: int) -> None:
    header, r = parse_request_header(memoryview(frame))
    assert (header.api_key, header.correlation_id, header.client_id) == (3, 7, client_id)
    assert r.pos == body_at


class _FileRange:
    """A Chunk: record data that is not in memory."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.length = len(data)

    def read(self) -> bytes:
        return self.data


@pytest.mark.parametrize("version", [4, 11, 12])
def test_response_chunks_pass_file_ranges_through(version: int) -> None:
    from strom.protocol.generated.fetch import FetchResponse
    from strom.protocol.wire import ChunkedRecords, is_buffer

    ranges = [_FileRange(b"a" * 200), _FileRange(b"b" * 3), _FileRange(b"c" * 50)]
    records = [
        ChunkedRecords([ranges[0], ranges[1], b"mem", ranges[2]]),
        ChunkedRecords([b"only in memory"]),
        b"plain",
    ]
    partitions = [
        FetchResponse.PartitionData(partition_index=i, records=r) for i, r in enumerate(records)
    ]
    response = FetchResponse(
        responses=[FetchResponse.FetchableTopicResponse(topic="t", partitions=partitions)]
    )
    chunks = encode_response(1, version, 7, response)
    assert [c for c in chunks if not is_buffer(c)] == ranges  # the same objects, in order
    frame = b"".join(bytes(c) if is_buffer(c) else c.read() for c in chunks)  # type: ignore[arg-type, union-attr]
    assert int.from_bytes(frame[:4], "big") == len(frame) - 4
    flat = [
        FetchResponse.PartitionData(partition_index=i, records=bytes(r))
        for i, r in enumerate(records)
    ]
    response.responses[0].partitions = flat
    whole = encode_response(1, version, 7, response)
    assert len(whole) == 1
    assert bytes(whole[0]) == frame  # type: ignore[arg-type]
    cid, decoded = decode_response(1, version, frame[4:])
    assert cid == 7
    assert [bytes(p.records) for p in decoded.responses[0].partitions] == [
        bytes(r) for r in records
    ]
