"""The ZooKeeper MetadataStore of a broker in a cluster (Kafka's KafkaZkClient and
AdminZkClient, the parts a broker uses).

It registers the broker (an ephemeral /brokers/ids/<id>; its czxid is the broker
epoch), answers the admin writes any broker may make (create and delete topics,
add partitions, change configs, reserve producer ids), and keeps a cache of topic
and broker configs fed by the /config/changes notifications (config_store.py),
which it reports to its listener. Partition leadership and the cluster image do
not come from here: the controller sends them (LeaderAndIsr, UpdateMetadata).

Session story: when the session is LOST (expired), ephemerals are gone; once a new
session is CONNECTED the broker registers again with a new broker epoch (the
controller then treats it as a new broker), and every cache is re-read.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from kazoo.exceptions import BadVersionError, NodeExistsError, NoNodeError

from strom.common.acl import AclBinding
from strom.common.errors import MetadataUnavailableError
from strom.common.scram import ScramCredential
from strom.metadata.image import BrokerInfo, TopicAssignment
from strom.metadata.store import BROKERS, TOPICS, MetadataListener, StoreError
from strom.metadata.zk import data as zd
from strom.metadata.zk.config_store import ZkConfigs
from strom.metadata.zk.security_store import ZkSecurity
from strom.metadata.zk.session import CONNECTED, LOST, SUSPENDED, ZkSession

log = logging.getLogger(__name__)

TOPIC_ALREADY_EXISTS = 36
UNKNOWN_TOPIC_OR_PARTITION = 3
INVALID_REQUEST = 42


class ZkMetadataStore:
    def __init__(
        self,
        connect: str,
        *,
        session_timeout_ms: int,
        connection_timeout_ms: int | None = None,
    ) -> None:
        self.session = ZkSession(
            connect, session_timeout_ms, connection_timeout_ms, on_state=self._on_state
        )
        self._cluster_id = ""
        self._listener: MetadataListener | None = None
        self._registration: BrokerInfo | None = None
        self._lost = False
        self.on_registered: Callable[[BrokerInfo], None] | None = None
        self.on_session_lost: Callable[[], None] | None = None
        self.on_suspended: Callable[[], None] | None = None
        self.on_connected: Callable[[], None] | None = None
        # ZooKeeper callbacks only enqueue work; this thread does it (kazoo's own
        # threads must never block).
        self._work: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self._worker = threading.Thread(target=self._run_work, name="zk-store", daemon=True)
        self._worker.start()
        # a user's config change re-reads its credentials; a SCRAM write is a config write
        self.configs = ZkConfigs(
            self.session, self._work.put, lambda user: self.security.refresh_user(user)
        )
        self.security = ZkSecurity(self.session, self._work.put, self.configs.write)

    def _run_work(self) -> None:
        while True:
            job = self._work.get()
            if job is None:
                return
            try:
                job()
            except Exception:
                log.exception("ZooKeeper store work failed")

    # -- opening -------------------------------------------------------------------------
    def open(self, configured_cluster_id: str | None = None) -> None:
        """Connect, create Kafka's persistent paths, read or create the cluster id."""
        self.session.start()
        for path in zd.PERSISTENT_PATHS:
            self.session.ensure_path(path)
        self.security.ensure_paths()
        self._cluster_id = self._get_or_create_cluster_id(configured_cluster_id)

    def _get_or_create_cluster_id(self, wanted: str | None) -> str:
        try:
            return zd.decode_cluster_id(self.session.get(zd.CLUSTER_ID)[0])
        except NoNodeError:
            pass
        from strom.metadata.meta_properties import new_cluster_id

        cid = wanted or new_cluster_id()
        try:
            self.session.create(zd.CLUSTER_ID, zd.encode_cluster_id(cid))
        except NodeExistsError:
            return zd.decode_cluster_id(self.session.get(zd.CLUSTER_ID)[0])
        return cid

    def generate_broker_id(self, reserved_max_id: int) -> int:
        """Kafka's broker.id.generation.enable: reserved.broker.max.id + the new version
        of /brokers/seqid."""
        try:
            stat = self.session.set(zd.BROKER_SEQID, b"")
        except NoNodeError:
            with contextlib.suppress(NodeExistsError):
                self.session.create(zd.BROKER_SEQID, b"")
            stat = self.session.set(zd.BROKER_SEQID, b"")
        return reserved_max_id + int(stat.version)

    @property
    def cluster_id(self) -> str:
        return self._cluster_id

    # -- MetadataStore ------------------------------------------------------------------
    def start(self, listener: MetadataListener) -> None:
        self._listener = self.configs.listener = listener
        self.configs.load()
        self.security.start(listener)
        self.configs.watch()

    def close(self) -> None:
        self._listener = self.configs.listener = None
        self._work.put(None)
        self.session.close()

    def register_broker(self, info: BrokerInfo) -> BrokerInfo:
        """Create /brokers/ids/<id> (ephemeral). An old registration still owned by a
        previous session of this broker is waited out (up to the session timeout); one
        owned by a live broker is refused. Returns ``info`` with its broker epoch."""
        path = f"{zd.BROKER_IDS}/{info.node_id}"
        data = zd.encode_broker(info.endpoints, info.rack)
        deadline = time.monotonic() + self.session.session_timeout_ms / 1000 + 2
        while True:
            try:
                self.session.create(path, data, ephemeral=True)
            except NodeExistsError:
                try:
                    _, stat = self.session.get(path)
                except NoNodeError:
                    continue
                if stat.ephemeralOwner == self.session.session_id:
                    break
                if time.monotonic() > deadline:
                    raise StoreError(
                        INVALID_REQUEST,
                        f"broker.id {info.node_id} is already registered at {path} by another "
                        f"live broker (session 0x{stat.ephemeralOwner:x}); broker ids must be "
                        "unique",
                    ) from None
                time.sleep(0.2)
                continue
            break
        _, stat = self.session.get(path)
        registered = BrokerInfo(info.node_id, info.endpoints, info.rack, int(stat.czxid))
        self._registration = registered
        log.info("registered broker %d at %s (broker epoch %d)", info.node_id, path, stat.czxid)
        return registered

    def _on_state(self, state: str) -> None:
        if state == SUSPENDED and self.on_suspended is not None:
            self.on_suspended()
        if state == CONNECTED and self.on_connected is not None:
            self.on_connected()
        if state == LOST:
            self._lost = True
            if self.on_session_lost is not None:
                self.on_session_lost()
        elif state == CONNECTED and self._lost:
            self._lost = False
            self._work.put(self._reregister)

    def _reregister(self) -> None:
        info = self._registration
        if info is None:
            return
        try:
            registered = self.register_broker(info)
            self.configs.load()
            self.security.load()
            if self._listener is not None:
                self._listener.on_acls_change()
        except (StoreError, MetadataUnavailableError) as exc:
            log.error("could not register again after the ZooKeeper session expired: %s", exc)
            return
        if self.on_registered is not None:
            self.on_registered(registered)

    # -- configs (strom.metadata.zk.config_store) ------------------------------------------
    def ensure_topic_configs(self, name: str) -> Mapping[str, str]:
        """The topic's configs, read from ZooKeeper when not cached yet (blocking)."""
        return self.configs.ensure_topic_configs(name)

    def topic_configs(self, name: str) -> Mapping[str, str]:
        return self.configs.topic_configs(name)

    def set_topic_configs(self, name: str, configs: Mapping[str, str]) -> None:
        if self.session.exists(zd.topic_path(name)) is None:
            raise StoreError(UNKNOWN_TOPIC_OR_PARTITION, f"Topic {name} does not exist.")
        self.configs.write(TOPICS, name, configs)

    def broker_configs(self, entity: str) -> Mapping[str, str]:
        return self.configs.broker_configs(entity)

    def set_broker_configs(self, entity: str, configs: Mapping[str, str]) -> None:
        self.configs.write(BROKERS, entity, configs)

    # -- security (strom.metadata.zk.security_store) ---------------------------------------
    def acls(self) -> list[AclBinding]:
        return self.security.acls()

    def change_acls(
        self, add: Sequence[AclBinding], remove: Sequence[AclBinding]
    ) -> dict[AclBinding, str]:
        return self.security.change_acls(add, remove)

    def scram_credentials(self, user: str) -> Mapping[str, ScramCredential]:
        return self.security.scram_credentials(user)

    def scram_users(self) -> list[str]:
        return self.security.scram_users()

    def alter_scram(
        self,
        upserts: Sequence[tuple[str, str, ScramCredential]],
        deletions: Sequence[tuple[str, str]],
    ) -> None:
        self.security.alter_scram(upserts, deletions)

    # -- topics --------------------------------------------------------------------------
    def create_topic(
        self, name: str, assignment: Sequence[tuple[int, ...]], configs: Mapping[str, str]
    ) -> bytes:
        """AdminZkClient.createTopicWithAssignment: configs first, then the topic znode
        (whose appearance the controller acts on)."""
        if self.session.exists(f"{zd.DELETE_TOPICS}/{name}") is not None:
            raise StoreError(TOPIC_ALREADY_EXISTS, f"Topic '{name}' is marked for deletion.")
        if self.session.exists(zd.topic_path(name)) is not None:
            raise StoreError(TOPIC_ALREADY_EXISTS, f"Topic '{name}' already exists.")
        self.configs.create_topic_configs(name, configs)
        topic_id = zd.new_topic_id()
        znode = TopicAssignment(topic_id, dict(enumerate(assignment)))
        try:
            self.session.create(zd.topic_path(name), zd.encode_topic(znode))
        except NodeExistsError:
            raise StoreError(TOPIC_ALREADY_EXISTS, f"Topic '{name}' already exists.") from None
        return topic_id

    def delete_topic(self, name: str) -> None:
        if self.session.exists(zd.topic_path(name)) is None:
            raise StoreError(UNKNOWN_TOPIC_OR_PARTITION, f"Topic {name} does not exist.")
        with contextlib.suppress(NodeExistsError):  # already marked for deletion
            self.session.create(f"{zd.DELETE_TOPICS}/{name}")

    def add_partitions(self, name: str, assignment: Sequence[tuple[int, ...]]) -> None:
        for _ in range(10):
            try:
                raw, stat = self.session.get(zd.topic_path(name))
            except NoNodeError:
                raise StoreError(
                    UNKNOWN_TOPIC_OR_PARTITION, f"The topic '{name}' does not exist."
                ) from None
            znode = zd.decode_topic(raw)
            start = len(znode.replicas)
            replicas = dict(znode.replicas)
            replicas.update({start + i: tuple(r) for i, r in enumerate(assignment)})
            updated = TopicAssignment(znode.topic_id, replicas, znode.adding, znode.removing)
            try:
                self.session.set(zd.topic_path(name), zd.encode_topic(updated), stat.version)
                return
            except BadVersionError:
                continue
        raise StoreError(INVALID_REQUEST, f"concurrent changes to topic {name}; try again")

    # -- producer ids ------------------------------------------------------------------------
    def allocate_producer_ids(self, count: int) -> int:
        """Reserve the next block after /latest_producer_id_block (a conditional write,
        retried when another broker reserved one meanwhile)."""
        while True:
            raw, stat = self.session.get(zd.PRODUCER_ID_BLOCK)
            start = zd.decode_producer_id_block_end(raw) + 1
            node = self._registration.node_id if self._registration else -1
            data = zd.encode_producer_id_block(node, start, start + count - 1)
            try:
                self.session.set(zd.PRODUCER_ID_BLOCK, data, stat.version)
                return start
            except BadVersionError:
                continue

    # -- read helpers for the controller runtime ----------------------------------------------
    def controller_id(self, watch: Callable[..., Any] | None = None) -> int:
        """The broker id in /controller (-1 when there is none), optionally watching it."""
        stat = self.session.exists(zd.CONTROLLER, watch)
        if stat is None:
            return -1
        try:
            return zd.decode_controller(self.session.get(zd.CONTROLLER)[0])
        except NoNodeError:
            return -1
