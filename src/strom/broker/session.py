"""Who sent a request: the authenticated principal and the client's address, set per
connection by strom.server (a ContextVar, read by the authorizer)."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

from strom.common.principal import ANONYMOUS


@dataclass(frozen=True, slots=True)
class Session:
    principal: str = ANONYMOUS  # "User:alice"
    client_host: str = ""  # the client's IP address, as ACL hosts name it ("127.0.0.1")


ANONYMOUS_SESSION = Session()
SESSION: ContextVar[Session] = ContextVar("strom_session", default=ANONYMOUS_SESSION)
