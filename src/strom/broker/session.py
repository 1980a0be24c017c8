"""Who sent a request: the authenticated principal and the client's address, set per
connection by strom.server (a ContextVar, read by the authorizer)."""

from __future__ import annotations

from contextvars import ContextVar
from typing import ClassVar, Final

from strom.common.principal import ANONYMOUS
from strom.common.values import Value


class Session(Value):
    __slots__ = ("client_host", "principal")
    FIELDS: ClassVar[tuple[str, ...]] = ("principal", "client_host")
    principal: Final[str]  # "User:alice"
    client_host: Final[str]  # the client's IP address, as ACL hosts name it ("127.0.0.1")

    def __init__(self, principal: str = ANONYMOUS, client_host: str = "") -> None:
        self.principal = principal
        self.client_host = client_host


ANONYMOUS_SESSION = Session()
SESSION: ContextVar[Session] = ContextVar("strom_session", default=ANONYMOUS_SESSION)
