"""The client side of SASL authentication on a connection (KIP-43, KIP-152): after
ApiVersions, SaslHandshake names the mechanism, then SaslAuthenticate carries the
mechanism's tokens until it is done."""

from __future__ import annotations

from typing import TYPE_CHECKING

from strom.common.sasl import SaslAuthenticationError
from strom.protocol.api_versions import ApiKey
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.generated.sasl_authenticate import (
    SaslAuthenticateRequest,
    SaslAuthenticateResponse,
)
from strom.protocol.generated.sasl_handshake import SaslHandshakeRequest, SaslHandshakeResponse

if TYPE_CHECKING:
    from strom.net.connection import BrokerConnection
    from strom.net.security import ClientSecurity


async def authenticate(conn: BrokerConnection, security: ClientSecurity) -> int:
    """Authenticate ``conn``; the session lifetime the broker granted (ms, 0: none).
    KafkaError SASL_AUTHENTICATION_FAILED or UNSUPPORTED_SASL_MECHANISM on failure."""
    handshake_version = min(conn.broker_versions.get(ApiKey.SASL_HANDSHAKE, (0, 1))[1], 1)
    if handshake_version < 1:
        raise KafkaError(
            ErrorCode.UNSUPPORTED_VERSION, "the broker does not support SaslAuthenticate"
        )
    hs: SaslHandshakeResponse = await conn.send(
        SaslHandshakeRequest(mechanism=security.mechanism), version=1
    )
    if hs.error_code != ErrorCode.NONE:
        raise KafkaError(
            ErrorCode(hs.error_code),
            f"Unexpected handshake request with client mechanism {security.mechanism}, "
            f"enabled mechanisms are {hs.mechanisms}",
        )
    auth_version = min(conn.broker_versions.get(ApiKey.SASL_AUTHENTICATE, (0, 2))[1], 2)
    mechanism = security.mechanism_client()
    try:
        token = mechanism.step(None)
        lifetime_ms = 0
        while token is not None:
            resp: SaslAuthenticateResponse = await conn.send(
                SaslAuthenticateRequest(auth_bytes=token), version=auth_version
            )
            if resp.error_code != ErrorCode.NONE:
                raise KafkaError(ErrorCode(resp.error_code), resp.error_message or "")
            lifetime_ms = resp.session_lifetime_ms if auth_version >= 1 else 0
            token = mechanism.step(resp.auth_bytes)
    except SaslAuthenticationError as exc:
        raise KafkaError(ErrorCode.SASL_AUTHENTICATION_FAILED, str(exc)) from None
    return lifetime_ms
