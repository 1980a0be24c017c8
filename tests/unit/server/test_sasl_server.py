"""The broker's SASL state machine (Kafka's SaslServerAuthenticator), frame by frame:
what each state accepts, Kafka's answers and errors, v0 raw tokens, re-authentication
rules, and a fuzz of handshake frames (only DecodeError or a reply comes out)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from strom.common.sasl import PlainServer, ServerMechanism, plain_client_token
from strom.protocol.errors import DecodeError, ErrorCode
from strom.protocol.frame import RequestHeader, decode_response, encode_request
from strom.protocol.generated.api_versions import ApiVersionsRequest
from strom.protocol.generated.metadata import MetadataRequest
from strom.protocol.generated.sasl_authenticate import SaslAuthenticateRequest
from strom.protocol.generated.sasl_handshake import SaslHandshakeRequest
from strom.server.sasl_server import SaslServerSession, State

USERS = {"alice": "alice-secret", "bob": "bob-secret"}
NOW = 1_000_000


def session(**kw: Any) -> SaslServerSession:
    def mechanism(name: str) -> ServerMechanism:
        return PlainServer(USERS)

    return SaslServerSession(["PLAIN", "SCRAM-SHA-256"], mechanism, now_ms=lambda: NOW, **kw)


def frame(request: Any, version: int, correlation_id: int = 7) -> bytes:
    return encode_request(RequestHeader(request.API_KEY, version, correlation_id, "c"), request)[4:]


def answer(api_key: int, version: int, data: bytes) -> Any:
    corr, resp = decode_response(api_key, version, data[4:])
    assert corr == 7
    return resp


def authenticate(s: SaslServerSession, user: str, password: str, version: int = 2) -> Any:
    reply = s.on_frame(frame(SaslAuthenticateRequest(plain_client_token(user, password)), version))
    return reply, answer(36, version, reply.data)


def test_api_versions_then_handshake_then_authenticate() -> None:
    s = session(reauth_ms=60_000)
    versions = answer(18, 3, s.on_frame(frame(ApiVersionsRequest("c", "1"), 3)).data)
    assert versions.error_code == 0 and any(k.api_key == 36 for k in versions.api_keys)
    hs = answer(17, 1, s.on_frame(frame(SaslHandshakeRequest("PLAIN"), 1)).data)
    assert (hs.error_code, hs.mechanisms) == (0, ["PLAIN", "SCRAM-SHA-256"])
    reply, resp = authenticate(s, "alice", "alice-secret")
    assert not reply.failed and resp.error_code == 0
    assert resp.session_lifetime_ms == 60_000
    assert s.complete and s.principal == "User:alice" and s.session_expiry_ms == NOW + 60_000


def test_wrong_password_fails_with_kafkas_message() -> None:
    s = session()
    s.on_frame(frame(SaslHandshakeRequest("PLAIN"), 1))
    reply, resp = authenticate(s, "alice", "nope")
    assert reply.failed
    assert resp.error_code == ErrorCode.SASL_AUTHENTICATION_FAILED
    assert resp.error_message == "Authentication failed: Invalid username or password"
    assert "nope" not in reply.reason


def test_unknown_mechanism_is_answered_then_closed() -> None:
    s = session()
    reply = s.on_frame(frame(SaslHandshakeRequest("GSSAPI"), 1))
    assert reply.failed
    resp = answer(17, 1, reply.data)
    assert resp.error_code == ErrorCode.UNSUPPORTED_SASL_MECHANISM
    assert resp.mechanisms == ["PLAIN", "SCRAM-SHA-256"]


def test_a_request_before_the_handshake_closes_unanswered() -> None:
    with pytest.raises(DecodeError, match="Unexpected Kafka request of type METADATA"):
        session().on_frame(frame(MetadataRequest(topics=[]), 4))
    with pytest.raises(DecodeError, match="wrong security protocol"):
        session().on_frame(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # a TLS hello


def test_a_request_during_authentication_is_answered_illegal_sasl_state() -> None:
    s = session()
    s.on_frame(frame(SaslHandshakeRequest("PLAIN"), 1))
    reply = s.on_frame(frame(MetadataRequest(topics=[]), 4))
    assert reply.failed
    assert answer(3, 4, reply.data).topics == []  # Metadata's error response
    assert s.state == State.FAILED


def test_a_second_api_versions_closes() -> None:
    s = session()
    s.on_frame(frame(ApiVersionsRequest("c", "1"), 3))
    with pytest.raises(DecodeError):
        s.on_frame(frame(ApiVersionsRequest("c", "1"), 3))


def test_handshake_v0_exchanges_raw_tokens() -> None:
    s = session()
    s.on_frame(frame(SaslHandshakeRequest("PLAIN"), 0))
    reply = s.on_frame(plain_client_token("bob", "bob-secret"))
    assert reply.data == b"\x00\x00\x00\x00" and s.complete
    bad = session()
    bad.on_frame(frame(SaslHandshakeRequest("PLAIN"), 0))
    assert bad.on_frame(plain_client_token("bob", "x")).failed


def test_reauthentication_keeps_the_principal_and_mechanism() -> None:
    s = session(previous=("PLAIN", "User:alice"))
    s.on_frame(frame(SaslHandshakeRequest("PLAIN"), 1))
    reply, resp = authenticate(s, "bob", "bob-secret")
    assert reply.failed
    assert (
        resp.error_message
        == "Cannot change principals during re-authentication from User.alice: User.bob"
    )
    other = session(previous=("SCRAM-SHA-256", "User:alice"))
    other.on_frame(frame(SaslHandshakeRequest("PLAIN"), 1))
    failed = other.on_frame(frame(SaslAuthenticateRequest(b"x"), 1))
    assert failed.failed and "not supported for re-authentication" in failed.reason


def test_fuzzed_handshake_frames_give_only_decode_errors_or_replies() -> None:
    rng = random.Random(14)
    seeds = [
        frame(SaslHandshakeRequest("PLAIN"), 1),
        frame(ApiVersionsRequest("c", "1"), 3),
        frame(SaslAuthenticateRequest(plain_client_token("alice", "alice-secret")), 2),
    ]
    for _ in range(3000):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 4)):
            op = rng.random()
            if op < 0.5 and data:
                data[rng.randrange(len(data))] = rng.randrange(256)
            elif op < 0.75:
                del data[rng.randrange(len(data) + 1) :]
            else:
                data += bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        s = session()
        for step in (
            (frame(SaslHandshakeRequest("PLAIN"), 1), bytes(data))
            if rng.random() < 0.5
            else (bytes(data),)
        ):
            try:
                s.on_frame(step)
            except DecodeError:
                break
