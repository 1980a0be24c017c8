"""The broker side of SASL authentication on one connection, sans-IO: frames in,
replies out (Kafka's SaslServerAuthenticator).

States: a connection may send ApiVersions (once) and must then send SaslHandshake;
anything else before the handshake closes the connection, unanswered. A v0
handshake is followed by raw size-prefixed tokens; v1 by SaslAuthenticate
requests, where any other request is answered with ILLEGAL_SASL_STATE and the
connection closed. An unknown mechanism is answered UNSUPPORTED_SASL_MECHANISM
(with the enabled ones); bad credentials SASL_AUTHENTICATION_FAILED. A failed
authentication's answer is sent after ``connection.failed.authentication.delay.ms``,
then the connection is closed (the driver in strom.server.authenticator does that).

Re-authentication (KIP-368): a new instance with ``previous`` = (mechanism,
principal) handles the SaslHandshake that starts it; the mechanism and the
principal may not change.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from strom.broker.api_versions import api_versions_response
from strom.broker.errors import error_response
from strom.common.sasl import (
    SaslAuthenticationError,
    SaslCredentialsError,
    ServerMechanism,
    invalid_credentials_message,
)
from strom.protocol.api_versions import BROKER_API_VERSIONS, ApiKey
from strom.protocol.errors import DecodeError, ErrorCode
from strom.protocol.frame import decode_request, encode_response, parse_request_header
from strom.protocol.generated import response_class
from strom.protocol.generated.sasl_authenticate import SaslAuthenticateResponse
from strom.protocol.generated.sasl_handshake import SaslHandshakeResponse

_SIZE = struct.Struct(">i")


class State(Enum):
    INITIAL = 1
    HANDSHAKE_OR_VERSIONS = 2
    HANDSHAKE = 3
    AUTHENTICATE = 4
    REAUTH_BAD_MECHANISM = 5
    COMPLETE = 6
    FAILED = 7


@dataclass(frozen=True, slots=True)
class Reply:
    """What to send (possibly nothing); ``failed``: send it after the failed
    authentication delay, then close; ``reason`` is for the log (never a secret)."""

    data: bytes = b""
    failed: bool = False
    reason: str = ""


def _encode(api_key: int, version: int, correlation_id: int, response: Any) -> bytes:
    return b"".join(bytes(c) for c in encode_response(api_key, version, correlation_id, response))  # type: ignore[arg-type]


class SaslServerSession:
    def __init__(
        self,
        mechanisms: Sequence[str],
        new_mechanism: Callable[[str], ServerMechanism],
        *,
        reauth_ms: int = 0,
        now_ms: Callable[[], int],
        previous: tuple[str, str] | None = None,
    ) -> None:
        self.mechanisms = list(mechanisms)
        self.reauth_ms = reauth_ms
        self._now_ms = now_ms
        # KIP-368: when the session ends (ms since the epoch), None for never
        self.session_expiry_ms: int | None = None
        self._new_mechanism = new_mechanism
        self.previous = previous
        self.state = State.HANDSHAKE if previous else State.INITIAL
        self.mechanism: ServerMechanism | None = None
        self.kafka_headers = False  # SaslHandshake v1+: tokens inside SaslAuthenticate
        self.supports_reauthentication = False
        self.principal = ""
        self._bad_mechanism = ""

    @property
    def complete(self) -> bool:
        return self.state == State.COMPLETE

    def _fail(self, data: bytes, reason: str) -> Reply:
        self.state = State.FAILED
        return Reply(data, failed=True, reason=reason)

    def on_frame(self, frame: bytes) -> Reply:
        """One frame from the client -> the reply. DecodeError: close, no answer."""
        if self.state in (State.INITIAL, State.HANDSHAKE_OR_VERSIONS, State.HANDSHAKE):
            return self._kafka_request(frame)
        if self.state == State.REAUTH_BAD_MECHANISM:
            return self._fail(b"", self._bad_mechanism)
        if self.state == State.AUTHENTICATE:
            return self._token(frame) if self.kafka_headers else self._raw_token(frame)
        raise DecodeError(f"unexpected frame in SASL state {self.state.name}")

    # -- before the mechanism ----------------------------------------------------------------
    def _kafka_request(self, frame: bytes) -> Reply:
        try:
            header, r = parse_request_header(frame)
        except DecodeError:
            raise DecodeError(
                "Invalid request, potential reasons: kafka client configured with the wrong "
                "security protocol, it does not support KIP-43 or it is not a kafka client."
            ) from None
        if header.api_key not in (ApiKey.API_VERSIONS, ApiKey.SASL_HANDSHAKE):
            raise DecodeError(
                f"Unexpected Kafka request of type {_name(header.api_key)} during SASL handshake."
            )
        lo, hi = BROKER_API_VERSIONS[header.api_key]
        if header.api_key == ApiKey.API_VERSIONS:
            if self.state == State.HANDSHAKE:
                raise DecodeError("Unexpected ApiVersions request during SASL authentication")
            self.state = State.HANDSHAKE_OR_VERSIONS
            if not lo <= header.api_version <= hi:
                refused = api_versions_response(ErrorCode.UNSUPPORTED_VERSION)
                return Reply(_encode(header.api_key, 0, header.correlation_id, refused))
            decode_request(header, r)
            self.state = State.HANDSHAKE
            versions = api_versions_response()
            return Reply(
                _encode(header.api_key, header.api_version, header.correlation_id, versions)
            )
        if not lo <= header.api_version <= hi:
            raise DecodeError(f"unsupported SaslHandshake version {header.api_version}")
        request = decode_request(header, r)
        self.kafka_headers = header.api_version >= 1
        name: str = request.mechanism
        if name not in self.mechanisms:
            resp = SaslHandshakeResponse(ErrorCode.UNSUPPORTED_SASL_MECHANISM, self.mechanisms)
            data = _encode(header.api_key, header.api_version, header.correlation_id, resp)
            return self._fail(data, f"Unsupported SASL mechanism {name}")
        resp = SaslHandshakeResponse(ErrorCode.NONE, self.mechanisms)
        data = _encode(header.api_key, header.api_version, header.correlation_id, resp)
        if self.previous is not None and self.previous[0] != name:
            self._bad_mechanism = (
                f"SASL mechanism '{name}' requested by client is not supported for "
                f"re-authentication of mechanism '{self.previous[0]}'"
            )
            self.state = State.REAUTH_BAD_MECHANISM
            return Reply(data)
        self.mechanism = self._new_mechanism(name)
        self.state = State.AUTHENTICATE
        return Reply(data)

    # -- the mechanism's tokens ----------------------------------------------------------
    def _evaluate(self, token: bytes) -> bytes:
        """The mechanism's answer; SaslAuthenticationError with the client's message."""
        mech = self.mechanism
        assert mech is not None
        try:
            answer = mech.evaluate(token)
        except SaslCredentialsError as exc:
            raise SaslAuthenticationError(
                invalid_credentials_message(mech.mechanism, self.previous is not None)
            ) from exc
        if mech.complete:
            now = self._now_ms()
            lifetime = self.session_lifetime_ms(self.reauth_ms, now)
            self.session_expiry_ms = None if lifetime is None else now + lifetime
            principal = f"User:{mech.username}"
            if self.previous is not None and self.previous[1] != principal:
                old, new = self.previous[1].replace(":", "."), principal.replace(":", ".")
                raise SaslAuthenticationError(
                    f"Cannot change principals during re-authentication from {old}: {new}"
                )
            self.principal = principal
        return answer

    def _raw_token(self, frame: bytes) -> Reply:
        try:
            answer = self._evaluate(frame)
        except SaslAuthenticationError as exc:
            return self._fail(b"", _reason(exc))
        if self.mechanism is not None and self.mechanism.complete:
            self.state = State.COMPLETE
        return Reply(_SIZE.pack(len(answer)) + answer)

    def _token(self, frame: bytes) -> Reply:
        header, r = parse_request_header(frame)
        if header.api_key != ApiKey.SASL_AUTHENTICATE:
            request = decode_request(header, r)
            resp = error_response(
                response_class(header.api_key), request, ErrorCode.ILLEGAL_SASL_STATE
            )
            data = _encode(header.api_key, header.api_version, header.correlation_id, resp)
            name = _name(header.api_key)
            reason = f"Unexpected Kafka request of type {name} during SASL authentication."
            return self._fail(data, reason)
        lo, hi = BROKER_API_VERSIONS[header.api_key]
        if not lo <= header.api_version <= hi:
            raise DecodeError(f"Version {header.api_version} is not supported for SaslAuthenticate")
        self.supports_reauthentication |= header.api_version > 0
        request = decode_request(header, r)
        try:
            answer = self._evaluate(request.auth_bytes)
        except SaslAuthenticationError as exc:
            resp = SaslAuthenticateResponse(ErrorCode.SASL_AUTHENTICATION_FAILED, str(exc), b"", 0)
            data = _encode(header.api_key, header.api_version, header.correlation_id, resp)
            return self._fail(data, _reason(exc))
        resp = SaslAuthenticateResponse(ErrorCode.NONE, None, answer, 0)
        if self.mechanism is not None and self.mechanism.complete:
            self.state = State.COMPLETE
            if self.session_expiry_ms is not None:
                resp.session_lifetime_ms = max(0, self.session_expiry_ms - self._now_ms())
        return Reply(_encode(header.api_key, header.api_version, header.correlation_id, resp))

    def session_lifetime_ms(self, reauth_ms: int, now_ms: int) -> int | None:
        """KIP-368: the session's lifetime once complete, None for no expiry."""
        mech = self.mechanism
        expiry = mech.credential_expiry_ms if mech is not None else None
        if expiry is None and reauth_ms <= 0:
            return None
        if expiry is None:
            return reauth_ms
        if reauth_ms <= 0:
            return max(0, expiry - now_ms)
        return max(0, min(expiry - now_ms, reauth_ms))


def _name(api_key: int) -> str:
    return ApiKey(api_key).name if api_key in ApiKey._value2member_map_ else str(api_key)


def _reason(exc: SaslAuthenticationError) -> str:
    cause = exc.__cause__
    return f"{exc} ({cause})" if isinstance(cause, SaslCredentialsError) else str(exc)
