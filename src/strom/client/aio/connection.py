"""The client's broker connection: strom.net's, speaking the client's API versions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from strom.client.versions import CLIENT_API_VERSIONS
from strom.net.connection import BrokerConnection as _NetConnection

__all__ = ["BrokerConnection"]


class BrokerConnection(_NetConnection):
    """A :class:`strom.net.connection.BrokerConnection` that negotiates the versions
    strom's client speaks (``CLIENT_API_VERSIONS``) unless told otherwise."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["api_versions"] = kwargs.get("api_versions") or CLIENT_API_VERSIONS
        super().__init__(*args, **kwargs)

    @classmethod
    async def open(
        cls,
        host: str,
        port: int,
        *,
        api_versions: Mapping[int, tuple[int, int]] | None = None,
        **kwargs: Any,
    ) -> BrokerConnection:
        """Connect and negotiate the client's API versions."""
        conn = await super().open(
            host, port, api_versions=api_versions or CLIENT_API_VERSIONS, **kwargs
        )
        assert isinstance(conn, BrokerConnection)
        return conn
