"""The broker: wiring of config, metadata, storage and handlers; dispatch by api key.

``Broker.handle`` takes a decoded request and returns the response object (or
None for acks=0 produce), through the handler table of strom.broker.handlers.
The server owns sockets and framing; the broker owns no socket. Its storage
jobs (retention, flushes, compaction) are strom.broker.log_jobs.

Metadata: handlers read ``broker.image`` (an immutable MetadataImage, swapped
whole). Changes go through the MetadataStore (``broker.store``), whose
blocking calls run in worker threads (:meth:`Broker.store_call`); the new
image comes back from the embedded store through :meth:`on_image`, or from the
controller (UpdateMetadata) in a ZooKeeper cluster. Partition leadership comes
from the same image for the embedded single node and from LeaderAndIsr in a
cluster; either way it reaches :meth:`apply_partition_state`, which also loads
and unloads the coordinators' partitions.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from strom.broker.dynamic_configs import DynamicConfigs
from strom.broker.group_runtime import GroupRuntime
from strom.broker.handlers import AUTHZ_RULES, handler_for, load_authorizer
from strom.broker.inter_broker import inter_broker_security
from strom.broker.listeners import (
    Listener,
    advertised_endpoints,
    bound_listeners,
    inter_broker_listener,
)
from strom.broker.log_jobs import LogJobs
from strom.broker.metrics import BrokerMetrics
from strom.broker.replica_manager import ReplicaManager
from strom.common.config import BrokerConfig, ConfigError
from strom.common.types import Clock, SystemClock, TopicPartition
from strom.metadata.image import BrokerInfo, MetadataImage, PartitionInfo, TopicInfo
from strom.metadata.store import BROKERS, USERS, MetadataStore
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.frame import RequestHeader
from strom.replication.replica_selector import selector_enabled
from strom.storage.config import LogConfig
from strom.storage.log_manager import LogManager

if TYPE_CHECKING:
    from strom.broker.cluster_member import ClusterMember
    from strom.broker.fetch_sessions import FetchSessionCache
    from strom.broker.fetcher_manager import ReplicaFetcherManager
    from strom.broker.inter_broker import InterBrokerClients
    from strom.broker.producer_ids import ProducerIdManager
    from strom.broker.topic_admin import TopicAdmin
    from strom.broker.txn_runtime import TxnRuntime
    from strom.net.security import ClientSecurity

log = logging.getLogger(__name__)

# Request context, set per connection by strom.server: the client's address as Kafka
# records it ("/1.2.3.4"), and the name of the listener it connected to.
CLIENT_HOST: ContextVar[str] = ContextVar("strom_client_host", default="")
LISTENER_NAME: ContextVar[str] = ContextVar("strom_listener_name", default="")

R = TypeVar("R")


class Broker(LogJobs, DynamicConfigs):
    def __init__(
        self, config: BrokerConfig, store: MetadataStore, clock: Clock | None = None
    ) -> None:
        self.config = config
        self.clock: Clock = clock or SystemClock()
        self.node_id = config.node_id
        if self.node_id < 0:
            raise ConfigError("broker.id", "the broker id is not known yet")
        self.listeners: list[Listener] = bound_listeners(config)
        self.store = store
        self.image = MetadataImage.empty(store.cluster_id)
        self.registration: BrokerInfo | None = None
        self.log_dirs = [Path(d) for d in config.log_dirs]
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._metadata_waiters: list[asyncio.Future[None]] = []
        self.leadership_from_image = True  # the embedded store; a cluster uses LeaderAndIsr
        self.authorizer = load_authorizer(config)  # None: no authorizer.class.name
        self.inter_broker_security: ClientSecurity | None = None  # set at start
        # the server's: rebuild the listeners' TLS contexts after a dynamic change
        self.on_listeners_changed: Callable[[], None] | None = None
        self._load_dynamic_configs()
        now = self.clock.now_ms()
        self.logs = LogManager(
            self.log_dirs,
            self.topic_log_config(None),
            now,
            topic_config=self.topic_log_config,
            producer_id_expiration_ms=config.get_int("producer.id.expiration.ms"),
        )
        self.logs.on_dir_offline = self._dir_offline
        self.replicas = ReplicaManager(config, self.logs, self.node_id)
        self.replicas.exists = lambda tp: self.image.partition(tp) is not None
        self._fetch_session_slots = config.get_int("max.incremental.fetch.session.cache.slots")
        # read by every Fetch; not a dynamic config (DYNAMIC_BROKER_CONFIGS), so read once
        self.fetch_max_bytes = config.get_int("fetch.max.bytes")
        self.read_from_closest_replica = selector_enabled(config.get_str("replica.selector.class"))
        self.replicas.on_follower = lambda tp, part: self.fetchers.follow(tp, part)
        self.replicas.on_leader = lambda tp, part: self._unfollow(tp)
        # A broker of a ZooKeeper cluster (set by the server before start): its place in
        # the cluster, controller runtime, ISR reporting; None for the single node.
        self.cluster: ClusterMember | None = None
        self.groups = GroupRuntime(self)
        self.metrics = BrokerMetrics()  # counted on the loop; read by metrics.listener
        self.metrics_url: str | None = None  # where metrics.listener serves them, if set

    # Made, and their modules imported, on first use rather than at start (issue 15).
    @cached_property
    def topics(self) -> TopicAdmin:
        from strom.broker.topic_admin import TopicAdmin

        return TopicAdmin(self)

    @cached_property
    def transactions(self) -> TxnRuntime:
        from strom.broker.txn_runtime import TxnRuntime

        return TxnRuntime(self)

    @cached_property
    def producer_ids(self) -> ProducerIdManager:
        from strom.broker.producer_ids import ProducerIdManager

        return ProducerIdManager(self.store)

    @cached_property
    def fetchers(self) -> ReplicaFetcherManager:
        """The replica fetchers of the partitions this broker follows (a cluster)."""
        from strom.broker.fetcher_manager import ReplicaFetcherManager

        return ReplicaFetcherManager(self)

    @cached_property
    def peers(self) -> InterBrokerClients:
        from strom.broker.inter_broker import InterBrokerClients

        return InterBrokerClients(self)

    def _unfollow(self, tp: TopicPartition) -> None:
        if "fetchers" in self.__dict__:  # nothing to stop before the first follower
            self.fetchers.unfollow(tp)

    @cached_property
    def fetch_sessions(self) -> FetchSessionCache:
        """The incremental fetch sessions (KIP-227), made with the first Fetch (and the
        Fetch codec then imported)."""
        from strom.broker.fetch_sessions import FetchSessionCache

        return FetchSessionCache(self._fetch_session_slots)

    # -- start -------------------------------------------------------------------
    def start(self, bound_ports: Mapping[str, int] | None = None) -> BrokerInfo:
        """Register with the store (the listeners bound, ``bound_ports`` by listener name
        for those bound to port 0) and start hearing its changes. Call on the loop."""
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None
        self._loop_thread = threading.get_ident()
        ports = dict(bound_ports or {})
        self.listeners = [
            Listener(lst.name, lst.host, ports.get(lst.name, lst.port), lst.security_protocol)
            for lst in self.listeners
        ]
        endpoints = advertised_endpoints(self.config, self.listeners)
        self.inter_broker_listener = inter_broker_listener(self.config, endpoints)
        protocol = next(
            ep.security_protocol for ep in endpoints if ep.listener == self.inter_broker_listener
        )
        self.inter_broker_security = inter_broker_security(
            self.config, self.inter_broker_listener, protocol
        )
        registration = BrokerInfo(self.node_id, endpoints, self.config.get_str("broker.rack"))
        self.store.start(self)
        if self.authorizer is not None:
            self.authorizer.load(self.store.acls())
        self.registration = self.store.register_broker(registration)
        if self.cluster is not None:
            self.leadership_from_image = False
            self.cluster.broker_epoch = self.registration.epoch
            self.cluster.start()
        return self.registration

    def _on_loop(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the broker's event loop (now, when called from it)."""
        loop = self._loop
        if loop is None or threading.get_ident() == self._loop_thread or loop.is_closed():
            fn()
        else:
            loop.call_soon_threadsafe(fn)

    async def store_call(self, fn: Callable[..., R], *args: Any) -> R:
        """A blocking MetadataStore call, in a worker thread."""
        return await asyncio.to_thread(fn, *args)

    def _dir_offline(self, log_dir: Path) -> None:
        """A log directory failed. In a cluster, a broker whose every log directory has
        failed stops at once (Kafka halts it): its ZooKeeper session ends and the
        controller moves its leaderships; its data comes back when it restarts with
        the directory working again."""
        online = [d for d in self.log_dirs if d not in self.logs.offline_dirs]
        if self.cluster is not None and not online:
            log.critical(
                "Shutdown broker because all log dirs in %s have failed",
                ", ".join(str(d) for d in self.log_dirs),
            )
            self.halt(1)

    def halt(self, status: int) -> None:
        """Exit the process now, without any clean-up (Kafka's Exit.halt)."""
        import os
        import sys

        sys.stderr.flush()
        os._exit(status)

    # -- MetadataListener (called from the store's thread) -----------------------
    def on_image(self, image: MetadataImage) -> None:
        self._on_loop(lambda: self.apply_image(image))

    def on_config_change(self, entity_type: str, name: str) -> None:
        self._on_loop(lambda: self._apply_config_change(entity_type, name))

    def on_acls_change(self) -> None:
        if self.authorizer is not None:
            acls = self.store.acls()
            self._on_loop(lambda: self.authorizer.load(acls) if self.authorizer else None)

    def _apply_config_change(self, entity_type: str, name: str) -> None:
        if entity_type == USERS:
            return  # SCRAM credentials: the store's cache is read at each authentication
        if entity_type == BROKERS:
            self._load_dynamic_configs()
            self._listeners_changed()
            for topic in self.image.topics.values():
                self.replicas.update_topic_config(topic)
            return
        current = self.image.topic(name)
        if current is not None:
            configs = self.store.topic_configs(name)
            updated = TopicInfo(
                current.name, current.topic_id, current.partitions, configs, current.internal
            )
            self.set_image(self.image.replace(topics={**self.image.topics, name: updated}))

    # -- applying metadata -------------------------------------------------------
    def set_image(self, image: MetadataImage) -> None:
        """Swap the metadata image (UpdateMetadata in a cluster): configs of changed
        topics reach their logs; deleted topics are forgotten; waiters are woken."""
        old, self.image = self.image, image
        for name, topic in image.topics.items():
            before = old.topic(name)
            if before is not None and before.configs != topic.configs:
                self.replicas.update_topic_config(topic)
        self._wake_metadata_waiters()

    def apply_image(self, image: MetadataImage) -> None:
        """The embedded store's new image: it is also the leadership of every local
        replica, and a topic missing from it has been deleted."""
        old = self.image
        self.set_image(image)
        if not self.leadership_from_image:
            return
        for name, topic in old.topics.items():
            now = image.topic(name)
            if now is None or now.topic_id != topic.topic_id:
                self.stop_replicas(name, delete=True)
        for topic in image.topics.values():
            for p in topic.partitions:
                if self.node_id in p.replicas:
                    self.apply_partition_state(topic, p)

    def apply_partition_state(self, topic: TopicInfo, state: PartitionInfo) -> None:
        """Make the local replica of one partition leader or follower as ``state`` says;
        the coordinators load or unload their partition of an internal topic."""
        tp = TopicPartition(topic.name, state.partition)
        change = self.replicas.apply_partition_state(topic, state, self.now_ms())
        if change is None:
            return
        self.groups.on_leadership(tp, change.is_leader, state.leader_epoch)
        self.transactions.on_leadership(tp, change.is_leader, state.leader_epoch)

    def stop_replicas(self, topic: str, delete: bool) -> None:
        for tp in [tp for tp in self.replicas.partitions if tp.topic == topic]:
            self.stop_replica(tp, delete)
        if delete:
            log.info("deleted topic %s", topic)

    def stop_replica(self, tp: TopicPartition, delete: bool) -> None:
        """StopReplica: the local replica stops fetching and serving; with ``delete`` its
        log is removed."""
        self._unfollow(tp)
        self.groups.on_leadership(tp, False, -1)
        self.transactions.on_leadership(tp, False, -1)
        self.replicas.stop_replica(tp, delete)

    def _wake_metadata_waiters(self) -> None:
        waiters, self._metadata_waiters = self._metadata_waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    async def wait_for_metadata(
        self, ready: Callable[[MetadataImage], bool], timeout_s: float
    ) -> bool:
        """Wait until ``ready(self.image)``; False after ``timeout_s``."""
        try:
            async with asyncio.timeout(timeout_s):
                while not ready(self.image):
                    fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                    self._metadata_waiters.append(fut)
                    await fut
        except TimeoutError:
            return ready(self.image)
        return True

    def topic_log_config(self, topic: str | None) -> LogConfig:
        info = self.image.topic(topic) if topic is not None else None
        overrides = info.configs if info is not None else {}
        return LogConfig.from_topic_config(self.config.topic_config_strings(overrides))

    def now_ms(self) -> int:
        return self.clock.now_ms()

    # -- dispatch ----------------------------------------------------------------
    async def handle(self, header: RequestHeader, request: Any) -> Any:
        handler = handler_for(header.api_key)
        if handler is None:
            raise KafkaError(ErrorCode.UNSUPPORTED_VERSION, f"api {header.api_key}")
        if self.authorizer is not None:
            rule = AUTHZ_RULES.get(header.api_key)
            if rule is not None:
                return await rule(self, header, request, handler)
        return await handler(self, header, request)

    def shutdown(self) -> None:
        self.groups.shutdown()
        self.logs.shutdown()
        self.store.close()

    # -- topics --------------------------------------------------------------------
    def topic(self, name: str) -> TopicInfo | None:
        return self.image.topic(name)

    def effective_topic_config(self, topic: TopicInfo) -> dict[str, str]:
        return self.config.topic_config_strings(topic.configs)

    def broker_endpoint(self, node_id: int) -> tuple[str, int] | None:
        """(host, port) of broker ``node_id`` on the listener of the current request."""
        info = self.image.brokers.get(node_id)
        if info is None:
            return None
        ep = info.endpoint(LISTENER_NAME.get() or self.inter_broker_listener_name)
        return (ep.host, ep.port) if ep is not None else None

    @property
    def inter_broker_listener_name(self) -> str:
        return getattr(self, "inter_broker_listener", "") or self.listeners[0].name
