"""Bad input to secured listeners gets Kafka's answer and the broker keeps serving:
plaintext on the TLS port, TLS on the plaintext port, a wrong password (answered after
connection.failed.authentication.delay.ms, logged without the secret), an unknown
mechanism, a request before authentication, garbled and fuzzed SASL frames. Also
KIP-368: an expired session is closed at its next request, and re-authentication on
the same connection keeps it."""

from __future__ import annotations

import random
import socket
import ssl
import struct
import time
from collections.abc import Iterator
from typing import Any

import pytest

from strom.common.sasl import plain_client_token
from strom.protocol.frame import RequestHeader, decode_response, encode_request
from strom.protocol.generated.api_versions import ApiVersionsRequest
from strom.protocol.generated.metadata import MetadataRequest
from strom.protocol.generated.sasl_authenticate import SaslAuthenticateRequest
from strom.protocol.generated.sasl_handshake import SaslHandshakeRequest
from strom.testing.broker import BrokerFactory, BrokerProcess
from tests.integration import security_helpers as sh

pytestmark = pytest.mark.integration

DELAY_MS = 400
REAUTH_MS = 1500


@pytest.fixture(scope="module")
def bad_broker(
    tmp_path_factory: pytest.TempPathFactory, broker_kind: str
) -> Iterator[tuple[sh.Secured, BrokerProcess]]:
    if broker_kind != "strom":
        pytest.skip("configures strom's listeners")
    sec = sh.Secured(tmp_path_factory.mktemp("certs"))
    factory = BrokerFactory(lambda: tmp_path_factory.mktemp("bad-input-broker"))
    proc = sec.start(
        factory,
        **{
            "connection.failed.authentication.delay.ms": str(DELAY_MS),
            "listener.name.sasl_plaintext.connections.max.reauth.ms": str(REAUTH_MS),
        },
    )
    yield sec, proc
    assert proc.is_running(), proc.log_tail()
    factory.close()


class Raw:
    """A bare connection speaking Kafka frames."""

    def __init__(self, port: int, tls: ssl.SSLContext | None = None) -> None:
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock = tls.wrap_socket(sock, server_hostname="127.0.0.1") if tls else sock
        self.correlation = 0

    def send(self, request: Any, version: int) -> None:
        self.correlation += 1
        header = RequestHeader(request.API_KEY, version, self.correlation, "raw")
        self.sock.sendall(encode_request(header, request))

    def send_bytes(self, body: bytes) -> None:
        self.sock.sendall(struct.pack(">i", len(body)) + body)

    def recv_frame(self) -> bytes | None:
        """A frame, or None when the broker closed the connection."""
        head = self._exactly(4)
        if head is None:
            return None
        return self._exactly(struct.unpack(">i", head)[0])

    def _exactly(self, n: int) -> bytes | None:
        data = b""
        while len(data) < n:
            try:
                chunk = self.sock.recv(n - len(data))
            except (ConnectionError, ssl.SSLError):
                return None
            if not chunk:
                return None
            data += chunk
        return data

    def call(self, request: Any, version: int) -> Any:
        self.send(request, version)
        frame = self.recv_frame()
        assert frame is not None, "the broker closed the connection"
        return decode_response(request.API_KEY, version, frame)[1]

    def closed(self) -> bool:
        return self.recv_frame() is None

    def close(self) -> None:
        self.sock.close()


def serves(sec: sh.Secured) -> bool:
    """A real client still gets through on every listener."""
    for scenario in ("SASL_PLAINTEXT/PLAIN", "SSL", "SASL_SSL/SCRAM-SHA-512", "PLAINTEXT"):
        if scenario == "SASL_SSL/SCRAM-SHA-512":
            scenario = "SASL_SSL/PLAIN"
        from confluent_kafka.admin import AdminClient

        AdminClient(sec.confluent(scenario, "alice")).list_topics(timeout=10)
    return True


def test_plaintext_client_on_the_tls_port_is_closed(
    bad_broker: tuple[sh.Secured, BrokerProcess],
) -> None:
    sec, proc = bad_broker
    raw = Raw(sec.ports["SSL"])
    raw.send(ApiVersionsRequest("raw", "1"), 3)
    raw.sock.settimeout(10)
    try:
        data = raw.sock.recv(1 << 16)
    except ConnectionError:
        data = b""
    raw.close()
    assert not data.startswith(b"\x00\x00")  # no Kafka frame: a TLS alert or nothing
    assert serves(sec)
    assert "(SSL handshake failed: " in proc.log_path.read_text()


def test_tls_client_on_the_plaintext_port_fails_its_handshake(
    bad_broker: tuple[sh.Secured, BrokerProcess],
) -> None:
    sec, _ = bad_broker
    ctx = ssl.create_default_context(cafile=sec.ca_path)
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        Raw(sec.ports["PLAINTEXT"], ctx)
    assert serves(sec)


def test_wrong_password_is_answered_after_the_delay_and_logged_without_it(
    bad_broker: tuple[sh.Secured, BrokerProcess],
) -> None:
    sec, proc = bad_broker
    raw = Raw(sec.ports["SASL_PLAINTEXT"])
    assert raw.call(SaslHandshakeRequest("PLAIN"), 1).error_code == 0
    started = time.monotonic()
    resp = raw.call(SaslAuthenticateRequest(plain_client_token("alice", "Sup3r-Secret-Guess")), 2)
    waited = time.monotonic() - started
    assert resp.error_code == 58  # SASL_AUTHENTICATION_FAILED
    assert resp.error_message == "Authentication failed: Invalid username or password"
    assert waited >= DELAY_MS / 1000 * 0.9  # a lower bound: the delay happened
    assert raw.closed()
    log = proc.log_path.read_text()
    assert "Failed authentication with 127.0.0.1" in log
    assert "Sup3r-Secret-Guess" not in log
    assert serves(sec)


def test_unknown_mechanism(bad_broker: tuple[sh.Secured, BrokerProcess]) -> None:
    sec, _ = bad_broker
    raw = Raw(sec.ports["SASL_PLAINTEXT"])
    versions = raw.call(ApiVersionsRequest("raw", "1"), 3)
    assert versions.error_code == 0
    resp = raw.call(SaslHandshakeRequest("GSSAPI"), 1)
    assert resp.error_code == 33  # UNSUPPORTED_SASL_MECHANISM
    assert resp.mechanisms == sh.MECHANISMS.split(",")
    assert raw.closed()


def test_request_before_authentication_closes_unanswered(
    bad_broker: tuple[sh.Secured, BrokerProcess],
) -> None:
    sec, _ = bad_broker
    for listener in ("SASL_PLAINTEXT",):
        raw = Raw(sec.ports[listener])
        raw.send(MetadataRequest(topics=None), 4)
        assert raw.closed()
    raw = Raw(sec.ports["SASL_PLAINTEXT"])
    raw.call(SaslHandshakeRequest("PLAIN"), 1)
    resp = raw.call(MetadataRequest(topics=None), 4)  # during authentication: Kafka answers
    assert resp.brokers == [] and resp.topics == []
    assert raw.closed()
    assert serves(sec)


def test_garbled_and_fuzzed_sasl_frames(bad_broker: tuple[sh.Secured, BrokerProcess]) -> None:
    sec, proc = bad_broker
    rng = random.Random(1414)
    handshake = encode_request(RequestHeader(17, 1, 1, "f"), SaslHandshakeRequest("PLAIN"))[4:]
    auth = encode_request(
        RequestHeader(36, 2, 2, "f"), SaslAuthenticateRequest(plain_client_token("alice", "x"))
    )[4:]
    answered = 0
    for i in range(120):
        raw = Raw(sec.ports["SASL_PLAINTEXT"])
        base = bytearray(handshake if i % 2 else auth)
        for _ in range(rng.randint(1, 5)):
            base[rng.randrange(len(base))] = rng.randrange(256)
        if i % 2 == 0:
            raw.send_bytes(handshake)
            raw.recv_frame()
        raw.send_bytes(bytes(base) if i % 7 else bytes(rng.randrange(256) for _ in range(40)))
        raw.sock.settimeout(0.3)
        try:
            while (frame := raw.recv_frame()) is not None:
                answered += 1
                assert len(frame) >= 4
        except TimeoutError:
            pass  # a frame that still parses: the broker waits for the next one
        raw.close()
    assert answered > 0
    assert "unexpected error" not in proc.log_path.read_text()
    assert "Traceback" not in proc.log_path.read_text()
    assert serves(sec)


def _authenticated(sec: sh.Secured) -> tuple[Raw, int]:
    raw = Raw(sec.ports["SASL_PLAINTEXT"])
    raw.call(SaslHandshakeRequest("PLAIN"), 1)
    resp = raw.call(SaslAuthenticateRequest(plain_client_token("alice", "alice-secret")), 2)
    assert resp.error_code == 0
    return raw, resp.session_lifetime_ms


def test_an_expired_session_is_closed_and_reauthentication_keeps_it(
    bad_broker: tuple[sh.Secured, BrokerProcess],
) -> None:
    sec, _ = bad_broker
    stale, lifetime = _authenticated(sec)
    assert 0 < lifetime <= REAUTH_MS
    fresh, _ = _authenticated(sec)
    assert fresh.call(MetadataRequest(topics=None), 4).brokers
    time.sleep(REAUTH_MS / 1000 * 0.6)
    # re-authenticate on the same connection before the session ends
    assert fresh.call(SaslHandshakeRequest("PLAIN"), 1).error_code == 0
    again = fresh.call(SaslAuthenticateRequest(plain_client_token("alice", "alice-secret")), 2)
    assert again.error_code == 0 and again.session_lifetime_ms > 0
    time.sleep(REAUTH_MS / 1000 * 0.6)
    assert fresh.call(MetadataRequest(topics=None), 4).brokers  # still within its new session
    stale.send(MetadataRequest(topics=None), 4)  # past its session: closed, unanswered
    assert stale.closed()
    fresh.close()


def test_a_long_lived_librdkafka_producer_outlives_its_sessions(
    bad_broker: tuple[sh.Secured, BrokerProcess],
) -> None:
    """Sessions of 1.5 s: librdkafka re-authenticates (KIP-368) or reconnects; either
    way every record is delivered."""
    from confluent_kafka import Producer

    sec, _ = bad_broker
    topic = sh.unique("reauth")
    delivered: list[Any] = []
    p = Producer(sec.confluent("SASL_PLAINTEXT/PLAIN"))
    try:
        for i in range(8):
            p.produce(topic, f"v{i}".encode(), on_delivery=lambda e, m: delivered.append(e))
            p.flush(10)
            time.sleep(0.5)
    finally:
        p.flush(10)
    assert len(delivered) == 8 and all(e is None for e in delivered), delivered
