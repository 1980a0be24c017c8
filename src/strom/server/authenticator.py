"""Authenticating one connection: the principal of a TLS client certificate, the
SASL exchange of SASL listeners (strom.server.sasl_server), KIP-368 session expiry
and re-authentication. The result goes into the request context
(strom.broker.session.SESSION) that the authorizer reads.

A failed authentication is logged (at INFO, as Kafka, with the client's address and
the reason, never a password), answered after
``connection.failed.authentication.delay.ms``, and the connection closed; the
broker goes on serving everyone else.

The SASL code (strom.common.sasl, strom.common.scram, strom.server.sasl_server) is
imported by the first SASL exchange: a broker without SASL listeners never loads it.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import ssl
import struct
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Protocol

from strom.broker.session import SESSION, Session
from strom.common.principal import ANONYMOUS, NoMatchingRule, distinguished_name
from strom.common.principal import map_distinguished_name as map_dn
from strom.protocol.api_versions import ApiKey

if TYPE_CHECKING:
    from strom.common.sasl import ServerMechanism
    from strom.common.scram import ScramCredential
    from strom.server.listener_security import ListenerSecurity
    from strom.server.sasl_server import SaslServerSession
    from strom.server.stream import ClientStream

log = logging.getLogger(__name__)
_API_KEY = struct.Struct(">h")
MIN_REAUTH_INTERVAL_S = 1.0


class Verdict(enum.Enum):
    PROCESS = 1  # an ordinary request: handle it
    HANDLED = 2  # a re-authentication step, answered here
    CLOSE = 3


class FrameIO(Protocol):
    """What the authenticator needs of the connection."""

    peer: str
    stream: ClientStream

    async def read_frame(self, max_size: int) -> bytes | None: ...


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class Authenticator:
    def __init__(
        self,
        security: ListenerSecurity,
        scram_lookup: Callable[[str], Mapping[str, ScramCredential]],
        client_host: str,
    ) -> None:
        self.security = security
        self._scram_lookup = scram_lookup
        self.client_host = client_host
        self.principal = ANONYMOUS
        self._session: SaslServerSession | None = None
        self._expiry_ms: int | None = None
        self._last_reauth = 0.0

    @property
    def needs_requests(self) -> bool:
        """Whether requests must pass :meth:`on_request` (a session that expires)."""
        return self._expiry_ms is not None

    def _mechanism(self, name: str) -> ServerMechanism:
        from strom.common.sasl import (
            OAUTHBEARER,
            PLAIN,
            OAuthBearerServer,
            PlainServer,
            UnsecuredValidatorOptions,
        )
        from strom.common.scram import HASHES, ScramServer

        if name == PLAIN:
            return PlainServer(self.security.plain_users)
        if name == OAUTHBEARER:
            return OAuthBearerServer(self.security.oauth or UnsecuredValidatorOptions())
        if name in HASHES:
            return ScramServer(name, lambda user: self._scram_lookup(user).get(name))
        raise AssertionError(f"mechanism {name} is not enabled")

    def _new_session(self, previous: tuple[str, str] | None = None) -> SaslServerSession:
        from strom.server.sasl_server import SaslServerSession

        reauth = previous[0] if previous else None
        return SaslServerSession(
            self.security.mechanisms,
            self._mechanism,
            reauth_ms=max(self.security.reauth_ms.values(), default=0)
            if reauth is None
            else self.security.reauth_ms.get(reauth, 0),
            now_ms=_now_ms,
            previous=previous,
        )

    async def _start_tls(self, io: FrameIO) -> bool:
        """The TLS handshake (here rather than in asyncio's server, so that a failed
        one is logged as Kafka logs a failed authentication)."""
        context = self.security.ssl_context
        assert context is not None
        try:
            await io.stream.start_tls(context)
        except (ssl.SSLError, ConnectionError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", None) or type(exc).__name__
            log.info("Failed authentication with %s (SSL handshake failed: %s)", io.peer, reason)
            return False
        return True

    async def authenticate(self, io: FrameIO) -> bool:
        """Establish the principal; False when the connection must close."""
        if self.security.ssl_context is not None and not await self._start_tls(io):
            return False
        tls_only = self.security.ssl_context is not None and not self.security.sasl
        if tls_only and not self._tls_principal(io):
            return False
        if self.security.sasl:
            self._session = self._new_session()
            if not await self._exchange(io, self._session, None):
                return False
        SESSION.set(Session(self.principal, self.client_host))
        return True

    def _tls_principal(self, io: FrameIO) -> bool:
        cert = io.stream.get_extra_info("peercert")
        if not cert:
            self.principal = ANONYMOUS
            return True
        dn = distinguished_name(cert.get("subject", ()))
        try:
            self.principal = f"User:{map_dn(self.security.mapping_rules, dn)}"
        except NoMatchingRule as exc:
            log.info("Failed authentication with %s (%s)", io.peer, exc)
            return False
        return True

    async def _exchange(self, io: FrameIO, session: SaslServerSession, first: bytes | None) -> bool:
        """Run the SASL exchange (starting with ``first`` when re-authenticating)."""
        frame = first
        while not session.complete:
            if frame is None:
                frame = await io.read_frame(self.security.max_receive)
                if frame is None:
                    return False
            reply = session.on_frame(frame)  # DecodeError closes, unanswered
            frame = None
            if reply.failed:
                log.info("Failed authentication with %s (%s)", io.peer, reply.reason)
                await asyncio.sleep(self.security.failed_delay_ms / 1000)
                if reply.data:
                    io.stream.write(reply.data)
                    await io.stream.drain()
                return False
            if reply.data:
                io.stream.write(reply.data)
                await io.stream.drain()
        self.principal = session.principal
        self._expiry_ms = session.session_expiry_ms
        return True

    async def on_request(self, io: FrameIO, frame: bytes | memoryview) -> Verdict:
        """A request after authentication: a SaslHandshake starts re-authentication;
        anything else on an expired session closes the connection."""
        api_key = _API_KEY.unpack_from(frame, 0)[0] if len(frame) >= 2 else -1
        session = self._session
        if api_key == ApiKey.SASL_HANDSHAKE and session is not None and self._expiry_ms:
            now = time.monotonic()
            if now - self._last_reauth >= MIN_REAUTH_INTERVAL_S:
                self._last_reauth = now
                mechanism = session.mechanism.mechanism if session.mechanism else ""
                self._session = self._new_session((mechanism, self.principal))
                ok = await self._exchange(io, self._session, bytes(frame))
                return Verdict.HANDLED if ok else Verdict.CLOSE
        if self._expiry_ms is not None and _now_ms() >= self._expiry_ms:
            log.debug("Disconnecting expired channel of %s (%s)", io.peer, self.principal)
            return Verdict.CLOSE
        return Verdict.PROCESS
