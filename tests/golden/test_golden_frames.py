"""Request frames captured from librdkafka and kafka-python (tools/capture_golden.py).

Each frame must decode with strom's codec, re-encode to the same bytes, and
carry what the client sent.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strom.protocol.errors import DecodeError
from strom.protocol.frame import decode_request, parse_request_header
from strom.protocol.record_decoder import decode_batch
from strom.protocol.records import validate_batches
from strom.protocol.wire import Writer

FRAMES = sorted((Path(__file__).parent / "frames").glob("*.bin"))
CODECS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


def _decode(path: Path) -> tuple[int, int, object, bytes]:
    frame = path.read_bytes()
    header, r = parse_request_header(frame)
    body_start = r.pos
    request = decode_request(header, r)
    assert r.remaining() == 0, "trailing bytes after the request body"
    return header.api_key, header.api_version, request, frame[body_start:]


def test_frames_were_captured_from_both_clients() -> None:
    clients = {p.name.split("-")[0] for p in FRAMES}
    assert {"librdkafka", "kafka"} <= clients
    apis = {int(p.name.split("-")[-3]) for p in FRAMES}
    assert {0, 1, 3, 18} <= apis


@pytest.mark.parametrize("path", FRAMES, ids=[p.name for p in FRAMES])
def test_frame_decodes_and_re_encodes_exactly(path: Path) -> None:
    _, version, request, body = _decode(path)
    w = Writer()
    request.encode(w, version)  # type: ignore[attr-defined]
    assert w.getvalue() == body


@pytest.mark.parametrize("path", [p for p in FRAMES if "-0-v" in p.name], ids=lambda p: p.name)
def test_produce_frames_carry_the_record(path: Path) -> None:
    _, _, request, _ = _decode(path)
    topic = request.topic_data[0]  # type: ignore[attr-defined]
    assert topic.name == "golden"
    records = bytes(topic.partition_data[0].records)
    (header,) = validate_batches(records, 1 << 20)
    assert header.compression in CODECS.values()
    _, decoded = decode_batch(records)
    assert decoded[0].key == b"key"
    assert decoded[0].headers == (("h", b"v"),)


@pytest.mark.parametrize("path", [p for p in FRAMES if "-18-v" in p.name], ids=lambda p: p.name)
def test_api_versions_frames_name_the_client(path: Path) -> None:
    _, version, request, _ = _decode(path)
    if version >= 3:
        name = request.client_software_name  # type: ignore[attr-defined]
        assert name in ("confluent-kafka-python", "kafka-python")


def test_produce_frames_cover_every_codec() -> None:
    seen = set()
    for path in FRAMES:
        if "-0-v" in path.name:
            _, _, request, _ = _decode(path)
            records = bytes(request.topic_data[0].partition_data[0].records)  # type: ignore[attr-defined]
            seen.add(validate_batches(records, 1 << 20)[0].compression)
    assert seen == set(CODECS.values())


@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_mutated_frames_raise_only_decode_error(data: st.DataObject) -> None:
    """Flip, drop or insert bytes in real frames: the codec either decodes or raises its error."""
    frame = bytearray(data.draw(st.sampled_from(FRAMES)).read_bytes())
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(frame) - 1))
        action = data.draw(st.sampled_from(["flip", "drop", "insert", "cut"]))
        if action == "flip":
            frame[pos] ^= data.draw(st.integers(1, 255))
        elif action == "drop":
            del frame[pos]
        elif action == "insert":
            frame.insert(pos, data.draw(st.integers(0, 255)))
        else:
            del frame[pos:]
        if not frame:
            return
    with contextlib.suppress(DecodeError):
        header, r = parse_request_header(bytes(frame))
        decode_request(header, r)
