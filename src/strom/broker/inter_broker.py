"""Requests from this broker to other brokers (transaction markers, transaction
verification), over strom.net connections on the inter-broker listener, one
connection per peer, opened on demand and reopened after a failure."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from strom.common.config import BrokerConfig
from strom.common.config_defs import BROKER_CONFIGS
from strom.protocol.api_versions import INTER_BROKER_API_VERSIONS, ApiKey
from strom.protocol.errors import ErrorCode, KafkaError

if TYPE_CHECKING:
    from strom.broker.broker import Broker
    from strom.net.connection import BrokerConnection
    from strom.net.security import ClientSecurity

# what a broker asks of its peers beyond the controller's and the fetchers' requests
_VERSIONS = {
    **INTER_BROKER_API_VERSIONS,
    ApiKey.ADD_PARTITIONS_TO_TXN: (4, 5),
}


class InterBrokerClients:
    def __init__(self, broker: Broker, timeout_ms: int = 30_000) -> None:
        self.broker = broker
        self.timeout_ms = timeout_ms
        self._conns: dict[int, BrokerConnection] = {}

    async def send(self, node_id: int, request: Any) -> Any:
        """Send ``request`` to broker ``node_id``; KafkaError when it cannot be reached
        (the connection is dropped, the next call reconnects)."""
        conn = self._conns.get(node_id)
        if conn is None or conn.closed:
            info = self.broker.image.brokers.get(node_id)
            ep = info.endpoint(self.broker.inter_broker_listener_name) if info else None
            if ep is None:
                raise KafkaError(ErrorCode.BROKER_NOT_AVAILABLE, f"broker {node_id} is not live")
            from strom.net.connection import BrokerConnection  # with the first peer (a cluster)

            conn = await BrokerConnection.open(
                ep.host,
                ep.port,
                client_id=f"broker-{self.broker.node_id}",
                request_timeout_ms=self.timeout_ms,
                api_versions=_VERSIONS,
                security=self.broker.inter_broker_security,
            )
            self._conns[node_id] = conn
        try:
            return await conn.send(request)
        except (KafkaError, OSError):
            self._conns.pop(node_id, None)
            with contextlib.suppress(Exception):
                await conn.close()
            raise

    async def close(self) -> None:
        for conn in self._conns.values():
            with contextlib.suppress(Exception):
                await conn.close()
        self._conns.clear()


def inter_broker_security(
    config: BrokerConfig, listener: str, protocol: str
) -> ClientSecurity | None:
    """How this broker connects to the others' ``listener`` (the inter-broker one):
    its TLS settings (``listener.name.<listener>.ssl.*``), the mechanism
    ``sasl.mechanism.inter.broker.protocol`` with the username and password of the
    listener's JAAS config for it. None for PLAINTEXT."""
    if protocol == "PLAINTEXT":
        return None
    from strom.net.security import client_security  # TLS and SASL: imported only for them

    mechanism = config.get_str("sasl.mechanism.inter.broker.protocol") or "GSSAPI"

    def get(key: str) -> object:
        if key == "security.protocol":
            return protocol
        if key == "sasl.mechanism":
            return mechanism
        if key == "sasl.jaas.config":
            return config.listener_get(listener, key, mechanism)
        return config.listener_get(listener, key) if key in BROKER_CONFIGS else None

    return client_security(get)
