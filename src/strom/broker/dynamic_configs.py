"""The broker's dynamic configs (mixed into Broker): what AlterConfigs stores for this
broker or as the cluster default, checked before it is stored (each value parses,
every topic's log config stays valid, a listener's new key and trust stores load),
applied to the config layers, every topic's log and the listeners' TLS contexts, and
loaded again when the store says they changed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from strom.broker.listeners import Listener
from strom.broker.replica_manager import ReplicaManager
from strom.common.config import BrokerConfig, ConfigError
from strom.common.security_config import listener_of, reconfigurable_listener_key
from strom.metadata.image import MetadataImage
from strom.metadata.store import MetadataStore
from strom.protocol.errors import KafkaError
from strom.storage.config import LogConfig

log = logging.getLogger(__name__)

R = TypeVar("R")


class DynamicConfigs:
    """Broker's dynamic configs; the host class provides the attributes below and
    ``store_call``."""

    config: BrokerConfig
    store: MetadataStore
    node_id: int
    image: MetadataImage
    listeners: list[Listener]
    replicas: ReplicaManager
    # the server's: rebuild the listeners' TLS contexts after a dynamic change
    on_listeners_changed: Callable[[], None] | None

    if TYPE_CHECKING:

        async def store_call(self, fn: Callable[..., R], *args: Any) -> R: ...

    def _load_dynamic_configs(self) -> None:
        """Dynamic broker configs stored by AlterConfigs. When the stored set no longer
        passes the checks, the values that fail are dropped (with a warning), one by
        one; the others still apply."""
        for entity, per_broker in (("", False), (str(self.node_id), True)):
            stored = dict(self.store.broker_configs(entity))
            if stored:
                try:
                    self.check_dynamic_configs(per_broker, stored)
                except ConfigError:
                    stored = self._good_dynamic_configs(per_broker, stored)
            self.config.set_dynamic(per_broker, stored)

    def _good_dynamic_configs(self, per_broker: bool, stored: dict[str, str]) -> dict[str, str]:
        good: dict[str, str] = {}
        for key, value in stored.items():
            try:
                self.check_dynamic_configs(per_broker, {**good, key: value})
                good[key] = value
            except ConfigError as exc:
                log.warning("ignoring stored dynamic config %s=%r: %s", key, value, exc)
        return good

    def check_dynamic_configs(self, per_broker: bool, configs: Mapping[str, str]) -> None:
        """ConfigError unless ``configs`` may become this broker's (or the cluster
        default's) dynamic configs: each value parses, and every topic's log config,
        and a new topic's, is still valid with them."""
        trial = self.config.with_dynamic(per_broker, configs)
        self._check_listener_stores(trial, configs)
        overrides = [info.configs for info in self.image.topics.values()]
        for topic_overrides in [{}, *overrides]:
            try:
                LogConfig.from_topic_config(trial.topic_config_strings(topic_overrides))
            except KafkaError as exc:
                raise ConfigError(next(iter(configs), ""), exc.message or str(exc)) from None

    def _check_listener_stores(self, trial: BrokerConfig, configs: Mapping[str, str]) -> None:
        """A listener's new key or trust store must load (ConfigError otherwise)."""
        names = {lst.name for lst in self.listeners}
        for key in configs:
            if reconfigurable_listener_key(key) is None:
                continue
            listener = listener_of(key)
            if listener not in names:
                raise ConfigError(key, f"{listener} is not a listener of this broker")
            from strom.net.tls import server_context  # TLS listeners only

            server_context(partial(trial.listener_get, listener))

    def _listeners_changed(self) -> None:
        if self.on_listeners_changed is not None:
            self.on_listeners_changed()

    async def apply_dynamic_configs(self, per_broker: bool, configs: Mapping[str, str]) -> None:
        """Check, then store and apply this broker's (or the cluster default's) dynamic
        configs; every topic's log picks up the new broker-level defaults. ConfigError
        (and nothing changes) when they are invalid."""
        self.check_dynamic_configs(per_broker, configs)
        entity = str(self.node_id) if per_broker else ""
        await self.store_call(self.store.set_broker_configs, entity, dict(configs))
        self.config.set_dynamic(per_broker, configs)
        for topic in self.image.topics.values():
            self.replicas.update_topic_config(topic)
        self._listeners_changed()
