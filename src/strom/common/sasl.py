"""SASL mechanisms, sans-IO: what a server and a client exchange inside SaslAuthenticate
(or the raw tokens after a v0 SaslHandshake).

A server mechanism takes the client's token and returns its own (``evaluate``);
``complete`` says when it is done and ``username`` who authenticated. Two errors,
as Kafka distinguishes them (SaslServerAuthenticator):

- :class:`SaslCredentialsError` (Java's SaslException): the client is told only
  "Authentication failed during authentication due to invalid credentials with
  SASL mechanism X" (its detail could reveal whether a user exists);
- :class:`SaslAuthenticationError`: the message goes to the client as it is.

PLAIN (RFC 4616) and the unsecured OAUTHBEARER (RFC 7628 with Kafka's unsecured
JWS tokens) are here; SCRAM is in strom.common.scram.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

PLAIN = "PLAIN"
OAUTHBEARER = "OAUTHBEARER"
GSSAPI = "GSSAPI"
SCRAM_SHA_256 = "SCRAM-SHA-256"
SCRAM_SHA_512 = "SCRAM-SHA-512"
KNOWN_MECHANISMS = (GSSAPI, PLAIN, SCRAM_SHA_256, SCRAM_SHA_512, OAUTHBEARER)
CONTROL_A = "\x01"


class SaslCredentialsError(Exception):
    """Invalid credentials; the detail is for the broker's log only."""


class SaslAuthenticationError(Exception):
    """Authentication failed; the message is sent to the client."""


def invalid_credentials_message(mechanism: str, reauthenticating: bool = False) -> str:
    what = "re-authentication" if reauthenticating else "authentication"
    return (
        f"Authentication failed during {what} due to invalid credentials with SASL "
        f"mechanism {mechanism}"
    )


class ServerMechanism(Protocol):
    mechanism: str
    complete: bool
    username: str
    # when the credential expires (ms since the epoch), for KIP-368's session lifetime
    credential_expiry_ms: int | None

    def evaluate(self, token: bytes) -> bytes: ...


# -- PLAIN ------------------------------------------------------------------------------
class PlainServer:
    """PlainSaslServer: ``authzid NUL username NUL password``; the users are the
    ``user_NAME="password"`` options of the listener's PlainLoginModule."""

    mechanism = PLAIN

    def __init__(self, users: Mapping[str, str]) -> None:
        self._users = users
        self.complete = False
        self.username = ""
        self.credential_expiry_ms: int | None = None

    def evaluate(self, token: bytes) -> bytes:
        text = token.decode("utf-8", "replace")
        parts = text.split("\x00")
        if len(parts) != 3:
            raise SaslCredentialsError(
                f"Invalid SASL/PLAIN response: expected 3 tokens, got {len(parts)}"
            )
        authzid, username, password = parts
        if not username:
            raise SaslAuthenticationError("Authentication failed: username not specified")
        if not password:
            raise SaslAuthenticationError("Authentication failed: password not specified")
        expected = self._users.get(username)
        if expected is None or not hmac.compare_digest(expected.encode(), password.encode()):
            raise SaslAuthenticationError("Authentication failed: Invalid username or password")
        if authzid and authzid != username:
            raise SaslAuthenticationError(
                "Authentication failed: Client requested an authorization id that is different "
                "from username"
            )
        self.username = username
        self.complete = True
        return b""


def plain_client_token(username: str, password: str) -> bytes:
    return f"\x00{username}\x00{password}".encode()


# -- OAUTHBEARER (unsecured JWS) ----------------------------------------------------------
def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


@dataclass(frozen=True, slots=True)
class UnsecuredValidatorOptions:
    """OAuthBearerUnsecuredValidatorCallbackHandler's JAAS options."""

    principal_claim: str = "sub"
    scope_claim: str = "scope"
    required_scope: tuple[str, ...] = ()
    allowable_clock_skew_ms: int = 0

    @classmethod
    def from_jaas(cls, options: Mapping[str, str]) -> UnsecuredValidatorOptions:
        scope = options.get("unsecuredValidatorRequiredScope", "")
        return cls(
            principal_claim=options.get("unsecuredValidatorPrincipalClaimName", "sub") or "sub",
            scope_claim=options.get("unsecuredValidatorScopeClaimName", "scope") or "scope",
            required_scope=tuple(s for s in scope.split() if s),
            allowable_clock_skew_ms=int(
                options.get("unsecuredValidatorAllowableClockSkewMs", "0") or 0
            ),
        )


@dataclass(frozen=True, slots=True)
class UnsecuredToken:
    principal: str
    expiry_ms: int
    scope: tuple[str, ...] = field(default=())


class TokenInvalid(Exception):
    def __init__(self, status: str, scope: str | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.scope = scope


def _claims(token: str) -> dict[str, object]:
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenInvalid("invalid_token")
    try:
        header = json.loads(_b64url_decode(parts[0]))
        claims = json.loads(_b64url_decode(parts[1]))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise TokenInvalid("invalid_token") from None
    if not isinstance(header, dict) or header.get("alg") != "none" or parts[2]:
        raise TokenInvalid("invalid_token")  # only unsecured tokens: alg none, no signature
    if not isinstance(claims, dict):
        raise TokenInvalid("invalid_token")
    return claims


def validate_unsecured_token(
    token: str, options: UnsecuredValidatorOptions, now_ms: int
) -> UnsecuredToken:
    """OAuthBearerUnsecuredJws and its validation utils: a principal claim that is a
    non-empty string, an ``exp`` (seconds) not passed, an ``iat`` not in the future
    (within the allowed skew), and every required scope."""
    claims = _claims(token)
    principal = claims.get(options.principal_claim)
    exp = claims.get("exp")
    if not isinstance(principal, str) or not principal.strip():
        raise TokenInvalid("invalid_token")
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        raise TokenInvalid("invalid_token")
    skew = options.allowable_clock_skew_ms
    expiry_ms = int(exp * 1000)
    if now_ms - skew >= expiry_ms:
        raise TokenInvalid("invalid_token")
    iat = claims.get("iat")
    if iat is not None and (
        not isinstance(iat, int | float) or isinstance(iat, bool) or iat * 1000 > now_ms + skew
    ):
        raise TokenInvalid("invalid_token")
    raw_scope = claims.get(options.scope_claim)
    if isinstance(raw_scope, str):
        scope: tuple[str, ...] = tuple(raw_scope.split())
    elif isinstance(raw_scope, list):
        scope = tuple(str(s) for s in raw_scope)
    else:
        scope = ()
    missing = [s for s in options.required_scope if s not in scope]
    if missing:
        raise TokenInvalid("insufficient_scope", " ".join(options.required_scope))
    return UnsecuredToken(principal, expiry_ms, scope)


def unsecured_token(
    principal: str,
    lifetime_s: int = 3600,
    now_ms: int | None = None,
    extra: Mapping[str, object] | None = None,
) -> str:
    """OAuthBearerUnsecuredLoginCallbackHandler's token: alg none, no signature."""
    now_s = (time.time_ns() // 1_000_000 if now_ms is None else now_ms) / 1000
    header = _b64url(json.dumps({"alg": "none"}).encode())
    claims = {"sub": principal, "iat": now_s, "exp": now_s + lifetime_s, **(extra or {})}
    return f"{header}.{_b64url(json.dumps(claims).encode())}."


def parse_oauth_initial_response(token: bytes) -> tuple[str, str, dict[str, str]]:
    """OAuthBearerClientInitialResponse: ``n,[a=authzid],\\x01auth=Bearer T\\x01k=v\\x01\\x01``
    -> (token, authzid, extensions)."""
    text = token.decode("utf-8", "replace")
    gs2, sep, rest = text.partition(",")
    authz, sep2, kvs = rest.partition(",")
    if gs2 != "n" or not sep or not sep2 or not kvs.startswith(CONTROL_A):
        raise SaslCredentialsError("Invalid OAUTHBEARER client first message")
    authzid = authz[2:] if authz.startswith("a=") else ""
    if authz and not authz.startswith("a="):
        raise SaslCredentialsError("Invalid OAUTHBEARER client first message")
    if not kvs.endswith(CONTROL_A * 2):
        raise SaslCredentialsError("Invalid OAUTHBEARER client first message")
    values: dict[str, str] = {}
    for item in kvs.strip(CONTROL_A).split(CONTROL_A):
        key, eq, value = item.partition("=")
        if not eq:
            raise SaslCredentialsError("Invalid OAUTHBEARER client first message")
        values[key] = value
    auth = values.pop("auth", "")
    scheme, _, bearer = auth.partition(" ")
    if scheme.lower() != "bearer" or not bearer:
        raise SaslCredentialsError("Invalid OAUTHBEARER client first message")
    return bearer, authzid, values


def oauth_client_token(token: str, extensions: Mapping[str, str] | None = None) -> bytes:
    kvs = "".join(f"{k}={v}{CONTROL_A}" for k, v in (extensions or {}).items())
    return f"n,,{CONTROL_A}auth=Bearer {token}{CONTROL_A}{kvs}{CONTROL_A}".encode()


class OAuthBearerServer:
    """OAuthBearerSaslServer with the unsecured validator: a bad token is answered
    with a JSON error challenge; the client's ``\\x01`` then fails with it."""

    mechanism = OAUTHBEARER

    def __init__(
        self, options: UnsecuredValidatorOptions, now_ms: Callable[[], int] | None = None
    ) -> None:
        self._options = options
        self._now_ms = now_ms or (lambda: time.time_ns() // 1_000_000)
        self._error: str | None = None
        self.complete = False
        self.username = ""
        self.credential_expiry_ms: int | None = None

    def evaluate(self, token: bytes) -> bytes:
        if token == CONTROL_A.encode() and self._error is not None:
            raise SaslAuthenticationError(self._error)
        self._error = None
        bearer, authzid, _extensions = parse_oauth_initial_response(token)
        try:
            valid = validate_unsecured_token(bearer, self._options, self._now_ms())
        except TokenInvalid as exc:
            error: dict[str, str] = {"status": exc.status}
            if exc.scope is not None:
                error["scope"] = exc.scope
            self._error = json.dumps(error, separators=(",", ":"))
            return self._error.encode()
        if authzid and authzid != valid.principal:
            raise SaslAuthenticationError(
                f"Authentication failed: Client requested an authorization id ({authzid}) that "
                f"is different from the token's principal name ({valid.principal})"
            )
        self.username = valid.principal
        self.credential_expiry_ms = valid.expiry_ms
        self.complete = True
        return b""
