"""A live broker fed garbage, oversized, truncated and unknown frames keeps serving other clients.

The frames are built by hand with struct (not with strom's codec) so that the
tests check the broker against Kafka's wire format, not against itself. Kafka
closes a connection whose frame it cannot parse; the one request it answers
with an error instead is an ApiVersions request of a version it does not
know: UNSUPPORTED_VERSION in the v0 layout, listing the supported versions.
"""

from __future__ import annotations

import random
import socket
import struct
import time
from collections.abc import Iterator

import pytest

from strom.testing import BrokerProcess
from strom.testing.kafka import create_topic, produce_acked, read_all

pytestmark = pytest.mark.integration

MAX_REQUEST_BYTES = 1_048_576
API_VERSIONS = 18
METADATA = 3
UNSUPPORTED_VERSION = 35
IO_TIMEOUT_S = 10.0


@pytest.fixture(scope="module")
def broker_overrides() -> dict[str, str]:
    return {"socket.request.max.bytes": str(MAX_REQUEST_BYTES)}


@pytest.fixture(scope="module")
def witness_topic(broker: BrokerProcess) -> str:
    topic = f"witness-{random.randrange(1 << 32):08x}"
    create_topic(broker.bootstrap, topic, 1)
    return topic


def assert_still_serving(broker: BrokerProcess, topic: str) -> None:
    """The broker process lives and a real client can produce and read back."""
    assert broker.is_running(), f"broker died\n{broker.log_tail()}"
    value = f"alive-{time.monotonic_ns()}".encode()
    (acked,) = produce_acked(broker.bootstrap, topic, [(0, b"k", value)])
    (read,) = read_all(broker.bootstrap, topic, 1, start=acked.offset)
    assert (read.offset, read.value) == (acked.offset, value)


# -- raw wire helpers ---------------------------------------------------------------------


def uvarint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def compact_string(s: str) -> bytes:
    raw = s.encode()
    return uvarint(len(raw) + 1) + raw


def request_header(api_key: int, version: int, correlation_id: int, *, flexible: bool) -> bytes:
    client_id = b"strom-bad-input"
    head = struct.pack(">hhih", api_key, version, correlation_id, len(client_id)) + client_id
    return head + (b"\x00" if flexible else b"")


def api_versions_request(version: int, correlation_id: int) -> bytes:
    if version >= 3:
        body = compact_string("strom-tests") + compact_string("1.0") + b"\x00"
        return request_header(API_VERSIONS, version, correlation_id, flexible=True) + body
    return request_header(API_VERSIONS, version, correlation_id, flexible=False)


def frame(payload: bytes) -> bytes:
    return struct.pack(">i", len(payload)) + payload


@pytest.fixture
def connect(broker: BrokerProcess) -> Iterator[socket.socket]:
    sock = socket.create_connection(("127.0.0.1", broker.port), timeout=IO_TIMEOUT_S)
    yield sock
    sock.close()


def recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError(f"connection closed after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


def recv_frame(sock: socket.socket) -> bytes:
    (size,) = struct.unpack(">i", recv_exact(sock, 4))
    return recv_exact(sock, size)


def outcome(sock: socket.socket) -> str | bytes:
    """'closed' if the broker closes the connection, else the response frame it sends."""
    try:
        head = sock.recv(4)
    except ConnectionResetError:
        return "closed"
    except TimeoutError:
        return "no answer"
    if not head:
        return "closed"
    try:
        head += recv_exact(sock, 4 - len(head))
        (size,) = struct.unpack(">i", head)
        return recv_exact(sock, size)
    except (ConnectionError, TimeoutError):
        return "closed"


def assert_closed(sock: socket.socket, what: str) -> None:
    result = outcome(sock)
    assert result == "closed", (
        f"{what}: expected the broker to close the connection, got {result!r}"
    )


class Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, fmt: str) -> int:
        (value,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return int(value)

    def uvarint(self) -> int:
        shift = result = 0
        while True:
            byte = self.data[self.pos]
            self.pos += 1
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return result
            shift += 7

    def skip_tags(self) -> None:
        for _ in range(self.uvarint()):
            self.uvarint()  # tag
            size = self.uvarint()
            self.pos += size

    def at_end(self) -> bool:
        return self.pos == len(self.data)


def parse_api_versions_v0(body: bytes) -> tuple[int, int, dict[int, tuple[int, int]]]:
    try:
        return _parse_api_versions_v0(body)
    except (struct.error, IndexError) as e:
        raise AssertionError(f"not an ApiVersions v0 response ({e}): {body.hex()}") from None


def _parse_api_versions_v0(body: bytes) -> tuple[int, int, dict[int, tuple[int, int]]]:
    r = Reader(body)
    correlation_id = r.take(">i")
    error = r.take(">h")
    table = {}
    for _ in range(r.take(">i")):
        api, lo, hi = r.take(">h"), r.take(">h"), r.take(">h")
        table[api] = (lo, hi)
    assert r.at_end(), f"{len(body) - r.pos} trailing bytes after an ApiVersions v0 body"
    return correlation_id, error, table


def parse_api_versions_v3(body: bytes) -> tuple[int, int, dict[int, tuple[int, int]]]:
    try:
        return _parse_api_versions_v3(body)
    except (struct.error, IndexError) as e:
        raise AssertionError(f"not an ApiVersions v3 response ({e}): {body.hex()}") from None


def _parse_api_versions_v3(body: bytes) -> tuple[int, int, dict[int, tuple[int, int]]]:
    r = Reader(body)
    correlation_id = r.take(">i")  # ApiVersions responses always use response header v0
    error = r.take(">h")
    table = {}
    for _ in range(r.uvarint() - 1):
        api, lo, hi = r.take(">h"), r.take(">h"), r.take(">h")
        r.skip_tags()
        table[api] = (lo, hi)
    r.take(">i")  # throttle_time_ms
    r.skip_tags()
    assert r.at_end(), f"{len(body) - r.pos} trailing bytes after an ApiVersions v3 body"
    return correlation_id, error, table


# -- the tests ----------------------------------------------------------------------------


def test_api_versions_v0_and_v3(connect: socket.socket) -> None:
    connect.sendall(frame(api_versions_request(0, 1)))
    cid, err, table0 = parse_api_versions_v0(recv_frame(connect))
    assert (cid, err) == (1, 0)
    connect.sendall(frame(api_versions_request(3, 2)))
    cid, err, table3 = parse_api_versions_v3(recv_frame(connect))
    assert (cid, err) == (2, 0)
    assert table0 == table3
    assert table3[API_VERSIONS][0] == 0 and table3[API_VERSIONS][1] >= 3


def test_unsupported_api_versions_version(
    broker: BrokerProcess, witness_topic: str, connect: socket.socket
) -> None:
    connect.sendall(frame(api_versions_request(999, 7)))
    cid, err, table = parse_api_versions_v0(recv_frame(connect))
    assert cid == 7
    assert err == UNSUPPORTED_VERSION
    assert API_VERSIONS in table, f"the error response must list the supported versions: {table}"
    lo, hi = table[API_VERSIONS]
    assert lo == 0 and 3 <= hi < 999
    # The client retries with a version it now knows, on the same connection.
    connect.sendall(frame(api_versions_request(hi if hi <= 4 else 3, 8)))
    cid, err, table3 = parse_api_versions_v3(recv_frame(connect))
    assert (cid, err) == (8, 0)
    assert table3 == table
    assert_still_serving(broker, witness_topic)


def test_unknown_api_key_closes_connection(
    broker: BrokerProcess, witness_topic: str, connect: socket.socket
) -> None:
    connect.sendall(frame(request_header(1000, 0, 9, flexible=False) + b"\x00" * 16))
    assert_closed(connect, "unknown api key 1000")
    assert_still_serving(broker, witness_topic)


@pytest.mark.parametrize("size", [MAX_REQUEST_BYTES + 1, 0x7FFF_FFFF, -1, -0x8000_0000], ids=str)
def test_oversized_or_negative_frame_size_closes_connection(
    broker: BrokerProcess, witness_topic: str, connect: socket.socket, size: int
) -> None:
    # Only the size is sent: the broker must refuse it before waiting for a body.
    connect.sendall(struct.pack(">i", size))
    assert_closed(connect, f"frame size {size}")
    assert_still_serving(broker, witness_topic)


def test_truncated_frames_do_not_block_others(broker: BrokerProcess, witness_topic: str) -> None:
    stalled = []
    try:
        for cut in (2, 4, 9, 20):  # inside the size, after it, inside the header, in the body
            sock = socket.create_connection(("127.0.0.1", broker.port), timeout=IO_TIMEOUT_S)
            sock.sendall(frame(api_versions_request(3, 11))[:cut])
            stalled.append(sock)
        # Half-finished requests hold their own connections only.
        assert_still_serving(broker, witness_topic)
        for sock in stalled:
            sock.shutdown(socket.SHUT_WR)  # EOF in the middle of a frame
            assert_closed(sock, "EOF inside a frame")
    finally:
        for sock in stalled:
            sock.close()
    assert_still_serving(broker, witness_topic)


@pytest.mark.parametrize(
    "body",
    [
        b"",  # empty frame: not even an api key
        b"\x00\x03",  # api key only
        struct.pack(">hhi", METADATA, 12, 5),  # header without client id or tags
        request_header(METADATA, 12, 5, flexible=True) + b"\x05\xff\xff",  # truncated body
        request_header(METADATA, 1, 5, flexible=False) + struct.pack(">i", 0x7FFF_FFFF),
        request_header(API_VERSIONS, 3, 5, flexible=True) + b"\xff\xff\xff\xff\xff\xff",
    ],
    ids=["empty", "api-key-only", "short-header", "truncated-body", "huge-array", "bad-varint"],
)
def test_malformed_request_closes_connection(
    broker: BrokerProcess, witness_topic: str, connect: socket.socket, body: bytes
) -> None:
    connect.sendall(frame(body))
    assert_closed(connect, f"malformed request {body!r}")
    assert_still_serving(broker, witness_topic)


def test_garbage_bytes(broker: BrokerProcess, witness_topic: str) -> None:
    """Random bytes and random frames: each connection is answered or closed, never hangs."""
    rng = random.Random(20241124)
    payloads = [b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"\x16\x03\x01\x02\x00\x01" + bytes(200)]
    payloads += [rng.randbytes(rng.randrange(1, 300)) for _ in range(40)]
    payloads += [frame(rng.randbytes(rng.randrange(0, 300))) for _ in range(150)]
    payloads += [
        frame(
            struct.pack(">hhi", rng.choice([0, 1, 2, 3, 18, 19]), rng.randrange(-1, 20), 1)
            + rng.randbytes(rng.randrange(0, 100))
        )
        for _ in range(150)
    ]
    for payload in payloads:
        with socket.create_connection(("127.0.0.1", broker.port), timeout=IO_TIMEOUT_S) as sock:
            try:
                sock.sendall(payload)
                sock.shutdown(socket.SHUT_WR)
            except OSError:
                continue  # closed by the broker before we finished: fine
            deadline = time.monotonic() + IO_TIMEOUT_S
            while outcome(sock) != "closed":  # responses, if any, then the close
                assert time.monotonic() < deadline, f"no close after {payload!r}"
    assert_still_serving(broker, witness_topic)
