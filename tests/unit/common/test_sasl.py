"""PLAIN and the unsecured OAUTHBEARER, as Kafka's PlainSaslServer and
OAuthBearerSaslServer with the unsecured validator answer them."""

from __future__ import annotations

import base64
import json

import pytest

from strom.common.sasl import (
    OAuthBearerServer,
    PlainServer,
    SaslAuthenticationError,
    SaslCredentialsError,
    TokenInvalid,
    UnsecuredValidatorOptions,
    oauth_client_token,
    parse_oauth_initial_response,
    plain_client_token,
    unsecured_token,
    validate_unsecured_token,
)

USERS = {"alice": "alice-secret"}
NOW_MS = 1_700_000_000_000


def test_plain_accepts_a_user_and_refuses_others() -> None:
    server = PlainServer(USERS)
    assert server.evaluate(plain_client_token("alice", "alice-secret")) == b""
    assert server.complete and server.username == "alice"
    for token, message in [
        (plain_client_token("alice", "wrong"), "Invalid username or password"),
        (plain_client_token("bob", "x"), "Invalid username or password"),
        (b"\x00\x00pw", "username not specified"),
        (b"\x00alice\x00", "password not specified"),
        (b"bob\x00alice\x00alice-secret", "authorization id that is different"),
    ]:
        with pytest.raises(SaslAuthenticationError, match=message):
            PlainServer(USERS).evaluate(token)
    with pytest.raises(SaslCredentialsError, match="expected 3 tokens, got 2"):
        PlainServer(USERS).evaluate(b"alice\x00secret")


def _token(claims: dict[str, object], header: dict[str, object] | None = None) -> str:
    def b64(obj: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    return f"{b64(header or {'alg': 'none'})}.{b64(claims)}."


def test_unsecured_tokens_are_validated() -> None:
    options = UnsecuredValidatorOptions(required_scope=("read",))
    good = _token({"sub": "alice", "exp": NOW_MS / 1000 + 60, "scope": "read write"})
    assert validate_unsecured_token(good, options, NOW_MS).principal == "alice"
    bad = {
        "expired": _token({"sub": "a", "exp": NOW_MS / 1000 - 1, "scope": "read"}),
        "no exp": _token({"sub": "a", "scope": "read"}),
        "no sub": _token({"exp": NOW_MS / 1000 + 60, "scope": "read"}),
        "signed": _token({"sub": "a", "exp": NOW_MS / 1000 + 60}, {"alg": "HS256"}),
        "garbage": "not.a.token",
        "future iat": _token({"sub": "a", "exp": NOW_MS / 1000 + 60, "iat": NOW_MS / 1000 + 30}),
    }
    for what, token in bad.items():
        with pytest.raises(TokenInvalid):
            validate_unsecured_token(token, options, NOW_MS)
        assert what
    no_scope = _token({"sub": "a", "exp": NOW_MS / 1000 + 60})
    with pytest.raises(TokenInvalid) as info:
        validate_unsecured_token(no_scope, options, NOW_MS)
    assert info.value.status == "insufficient_scope"


def test_oauthbearer_server_answers_a_bad_token_with_its_error_challenge() -> None:
    server = OAuthBearerServer(UnsecuredValidatorOptions(), now_ms=lambda: NOW_MS)
    expired = _token({"sub": "alice", "exp": NOW_MS / 1000 - 10})
    assert json.loads(server.evaluate(oauth_client_token(expired))) == {"status": "invalid_token"}
    with pytest.raises(SaslAuthenticationError, match="invalid_token"):
        server.evaluate(b"\x01")
    ok = OAuthBearerServer(UnsecuredValidatorOptions(), now_ms=lambda: NOW_MS)
    token = unsecured_token("alice", 60, now_ms=NOW_MS)
    assert ok.evaluate(oauth_client_token(token, {"traceId": "1"})) == b""
    assert ok.complete and ok.username == "alice"
    assert ok.credential_expiry_ms == NOW_MS + 60_000


def test_oauthbearer_initial_response_format() -> None:
    assert parse_oauth_initial_response(b"n,a=bob,\x01auth=Bearer T\x01k=v\x01\x01") == (
        "T",
        "bob",
        {"k": "v"},
    )
    for bad in [
        b"",
        b"n,,auth=Bearer T",
        b"y,,\x01auth=Bearer T\x01\x01",
        b"n,,\x01auth=T\x01\x01",
    ]:
        with pytest.raises(SaslCredentialsError):
            parse_oauth_initial_response(bad)
    server = OAuthBearerServer(UnsecuredValidatorOptions(), now_ms=lambda: NOW_MS)
    token = unsecured_token("alice", 60, now_ms=NOW_MS)
    with pytest.raises(SaslAuthenticationError, match="authorization id"):
        server.evaluate(f"n,a=bob,\x01auth=Bearer {token}\x01\x01".encode())
