"""The broker: wiring of config, metadata, storage and handlers; dispatch by api key.

``Broker.handle`` takes a decoded request and returns the response object (or
None for acks=0 produce). The server owns sockets and framing; the broker
owns no socket.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from strom.broker.group_runtime import GroupRuntime
from strom.broker.producer_ids import ProducerIdManager
from strom.broker.replica_manager import ReplicaManager
from strom.broker.txn_runtime import TxnRuntime
from strom.common.config import BrokerConfig, ConfigError, validate_topic_configs
from strom.common.names import INTERNAL_TOPICS, collision_key, topic_name_problem
from strom.common.types import Clock, SystemClock
from strom.metadata.embedded import EmbeddedMetadataStore
from strom.metadata.store import BrokerInfo, MetadataStore, TopicInfo
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.frame import RequestHeader
from strom.storage.config import LogConfig
from strom.storage.log_manager import LogManager

log = logging.getLogger(__name__)

# Request context, set per connection by strom.server: the client's address as Kafka
# records it ("/1.2.3.4"); JoinGroup stores it as the member's host.
CLIENT_HOST: ContextVar[str] = ContextVar("strom_client_host", default="")

Handler = Callable[["Broker", RequestHeader, Any], Awaitable[Any]]
HANDLERS: dict[int, Handler] = {}


def handles(api_key: int) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        HANDLERS[api_key] = fn
        return fn

    return register


def parse_listener(listener: str) -> tuple[str, str, int]:
    """'PLAINTEXT://host:port' -> (name, host, port)."""
    name, sep, rest = listener.partition("://")
    if not sep:
        raise ConfigError("listeners", f"invalid listener {listener!r}")
    host, _, port = rest.rpartition(":")
    try:
        port_n = int(port)
    except ValueError:
        raise ConfigError("listeners", f"invalid port in {listener!r}") from None
    return name, host.strip("[]") or "127.0.0.1", port_n


class Broker:
    def __init__(self, config: BrokerConfig, clock: Clock | None = None) -> None:
        self.config = config
        self.clock: Clock = clock or SystemClock()
        self.node_id = config.node_id
        listeners = config.get_list("listeners")
        if not listeners:
            raise ConfigError("listeners", "at least one listener is required")
        self.listener_name, self.host, self.port = parse_listener(listeners[0])
        advertised = config.get_list("advertised.listeners") or listeners
        _, adv_host, adv_port = parse_listener(advertised[0])
        self.advertised = BrokerInfo(
            self.node_id, adv_host, adv_port, config.get_str("broker.rack")
        )
        self.log_dirs = [Path(d) for d in config.log_dirs]
        self.metadata: MetadataStore = EmbeddedMetadataStore(
            self.log_dirs, self.advertised, config.get_str("cluster.id")
        )
        self._load_dynamic_configs()
        now = self.clock.now_ms()
        self.logs = LogManager(
            self.log_dirs, self.topic_log_config(None), now, topic_config=self.topic_log_config
        )
        self.replicas = ReplicaManager(config, self.logs, self.node_id)
        self.producer_ids = ProducerIdManager(self.metadata)
        for topic in list(self.metadata.topics().values()):
            self.replicas.ensure_topic(topic, now)
        self.transactions = TxnRuntime(self)
        self.groups = GroupRuntime(self)
        self.groups.load()

    def _load_dynamic_configs(self) -> None:
        """Dynamic broker configs stored by AlterConfigs. When the stored set no longer
        passes the checks, the values that fail are dropped (with a warning), one by
        one; the others still apply."""
        for entity, per_broker in (("", False), (str(self.node_id), True)):
            stored = dict(self.metadata.broker_configs(entity))
            if not stored:
                continue
            try:
                self.check_dynamic_configs(per_broker, stored)
            except ConfigError:
                good: dict[str, str] = {}
                for key, value in stored.items():
                    try:
                        self.check_dynamic_configs(per_broker, {**good, key: value})
                        good[key] = value
                    except ConfigError as exc:
                        log.warning("ignoring stored dynamic config %s=%r: %s", key, value, exc)
                stored = good
            self.config.set_dynamic(per_broker, stored)

    def check_dynamic_configs(self, per_broker: bool, configs: Mapping[str, str]) -> None:
        """ConfigError unless ``configs`` may become this broker's (or the cluster
        default's) dynamic configs: each value parses, and every topic's log config,
        and a new topic's, is still valid with them."""
        trial = self.config.with_dynamic(per_broker, configs)
        overrides = [info.configs for info in self.metadata.topics().values()]
        for topic_overrides in [{}, *overrides]:
            try:
                LogConfig.from_topic_config(trial.topic_config_strings(topic_overrides))
            except KafkaError as exc:
                raise ConfigError(next(iter(configs), ""), exc.message or str(exc)) from None

    def apply_dynamic_configs(self, per_broker: bool, configs: Mapping[str, str]) -> None:
        """Check, then store and apply this broker's (or the cluster default's) dynamic
        configs; every topic's log picks up the new broker-level defaults. ConfigError
        (and nothing changes) when they are invalid."""
        self.check_dynamic_configs(per_broker, configs)
        self.metadata.set_broker_configs(str(self.node_id) if per_broker else "", configs)
        self.config.set_dynamic(per_broker, configs)
        for topic in self.metadata.topics().values():
            self.replicas.update_topic_config(topic)

    def topic_log_config(self, topic: str | None) -> LogConfig:
        info = self.metadata.topics().get(topic) if topic is not None else None
        overrides = info.configs if info is not None else {}
        return LogConfig.from_topic_config(self.config.topic_config_strings(overrides))

    def now_ms(self) -> int:
        return self.clock.now_ms()

    # -- dispatch ----------------------------------------------------------
    async def handle(self, header: RequestHeader, request: Any) -> Any:
        handler = HANDLERS.get(header.api_key)
        if handler is None:
            raise KafkaError(ErrorCode.UNSUPPORTED_VERSION, f"api {header.api_key}")
        return await handler(self, header, request)

    # -- periodic work -------------------------------------------------------
    def cleanup_logs(self) -> int:
        return self.logs.cleanup(self.now_ms())

    def compact_logs(self) -> int:
        return self.logs.compact(self.now_ms())

    def flush_due(self) -> None:
        self.logs.flush_due(self.now_ms())

    def shutdown(self) -> None:
        self.groups.shutdown()
        self.logs.shutdown()

    # -- topics --------------------------------------------------------------
    def topic(self, name: str) -> TopicInfo | None:
        return self.metadata.topics().get(name)

    def effective_topic_config(self, topic: TopicInfo) -> dict[str, str]:
        return self.config.topic_config_strings(topic.configs)

    def check_new_topic(
        self,
        name: str,
        num_partitions: int,
        replication_factor: int,
        assignments: list[tuple[int, ...]] | None,
        configs: Mapping[str, str | None],
    ) -> tuple[list[tuple[int, ...]], dict[str, str]]:
        """Validate a topic creation; return (replica assignment, normalised configs)."""
        problem = topic_name_problem(name)
        if problem:
            raise KafkaError(ErrorCode.INVALID_TOPIC_EXCEPTION, problem)
        if name in self.metadata.topics():
            raise KafkaError(ErrorCode.TOPIC_ALREADY_EXISTS, f"Topic '{name}' already exists.")
        key = collision_key(name)
        for other in self.metadata.topics():
            if collision_key(other) == key:
                raise KafkaError(
                    ErrorCode.INVALID_TOPIC_EXCEPTION,
                    f"Topic '{name}' collides with existing topic: {other}",
                )
        try:
            normalised = validate_topic_configs(configs)
        except ConfigError as e:
            raise KafkaError(ErrorCode.INVALID_CONFIG, str(e)) from None
        broker_ids = {b.node_id for b in self.metadata.brokers()}
        if assignments:
            for replicas in assignments:
                if (
                    not replicas
                    or len(set(replicas)) != len(replicas)
                    or not set(replicas) <= broker_ids
                ):
                    raise KafkaError(
                        ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                        f"Invalid replica assignment {list(replicas)}",
                    )
            return list(assignments), normalised
        return self.assign_replicas(num_partitions, replication_factor, 0), normalised

    def assign_replicas(
        self, num_partitions: int, replication_factor: int, start: int
    ) -> list[tuple[int, ...]]:
        if num_partitions == -1:
            num_partitions = self.config.get_int("num.partitions")
        if replication_factor == -1:
            replication_factor = self.config.get_int("default.replication.factor")
        if num_partitions <= 0:
            raise KafkaError(
                ErrorCode.INVALID_PARTITIONS, "Number of partitions must be larger than 0."
            )
        if replication_factor <= 0:
            raise KafkaError(
                ErrorCode.INVALID_REPLICATION_FACTOR, "Replication factor must be larger than 0."
            )
        brokers = sorted(b.node_id for b in self.metadata.brokers())
        if replication_factor > len(brokers):
            raise KafkaError(
                ErrorCode.INVALID_REPLICATION_FACTOR,
                f"Unable to replicate the partition {replication_factor} time(s): The target "
                f"replication factor of {replication_factor} cannot be reached because only "
                f"{len(brokers)} broker(s) are registered.",
            )
        n = len(brokers)
        return [
            tuple(brokers[(start + p + r) % n] for r in range(replication_factor))
            for p in range(num_partitions)
        ]

    def create_topic(
        self,
        name: str,
        num_partitions: int,
        replication_factor: int,
        assignments: list[tuple[int, ...]] | None = None,
        configs: Mapping[str, str | None] | None = None,
        validate_only: bool = False,
    ) -> TopicInfo | None:
        assignment, normalised = self.check_new_topic(
            name, num_partitions, replication_factor, assignments, configs or {}
        )
        if validate_only:
            return None
        topic = self.metadata.create_topic(
            name, assignment, normalised, internal=name in INTERNAL_TOPICS
        )
        self.replicas.ensure_topic(topic, self.now_ms())
        log.info("created topic %s with %d partition(s)", name, len(assignment))
        return topic

    def delete_topic(self, name: str) -> None:
        self.metadata.delete_topic(name)
        self.replicas.delete_topic(name)
        log.info("deleted topic %s", name)

    def maybe_auto_create(self, name: str) -> TopicInfo | None:
        if not self.config.get_bool("auto.create.topics.enable"):
            return None
        return self.create_topic(name, -1, -1)
