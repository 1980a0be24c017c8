"""Topic and broker configs in ZooKeeper, as Kafka's KafkaZkClient and AdminZkClient
keep them (layout in strom.metadata.zk.data): the configs part of a ZkMetadataStore.

A cache of /config/topics and /config/brokers, loaded at start (and after a new
session) and kept current by the /config/changes notifications (each names one
entity, which is read again; a notification older than 15 minutes is deleted by
the broker that reads it) and by the children watch of /config/topics (a new
topic's configs are written without a notification). A write sets the entity's
znode, then notifies. A user's notification re-reads its SCRAM credentials
(strom.metadata.zk.security_store). Every read and write runs on the store's
worker thread, never on kazoo's.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Mapping

from kazoo.exceptions import NodeExistsError, NoNodeError

from strom.metadata.store import BROKERS, TOPICS, USERS, MetadataListener
from strom.metadata.zk import data as zd
from strom.metadata.zk.session import ZkSession

NOTIFICATION_EXPIRY_MS = 15 * 60 * 1000


class ZkConfigs:
    """The topic and broker configs of a ZkMetadataStore (its session, its work queue)."""

    def __init__(
        self,
        session: ZkSession,
        submit: Callable[[Callable[[], None]], None],
        refresh_user: Callable[[str], None],
    ) -> None:
        self.session = session
        self._submit = submit
        self._refresh_user = refresh_user  # the security store's: a user's credentials
        self._lock = threading.RLock()
        self._topic_configs: dict[str, dict[str, str]] = {}
        self._broker_configs: dict[str, dict[str, str]] = {}
        self._last_change = -1
        self.listener: MetadataListener | None = None

    def watch(self) -> None:
        """Follow /config/changes and the topics of /config/topics."""
        self.session.client.ChildrenWatch(zd.CONFIG_CHANGES, self._on_config_changes)
        self.session.client.ChildrenWatch(f"{zd.CONFIG}/{TOPICS}", self._on_topic_configs)

    def _on_topic_configs(self, children: list[str]) -> bool:
        """Kazoo's thread: topics created (their configs are written without a change
        notification) or deleted; the store's thread reads the new ones."""
        self._submit(lambda: self._sync_topic_configs(children))
        return True

    def _sync_topic_configs(self, children: list[str]) -> None:
        with self._lock:
            known = set(self._topic_configs)
        for name in sorted(set(children) - known):
            self._refresh(TOPICS, name)
        with self._lock:
            for name in known - set(children):
                self._topic_configs.pop(name, None)

    def ensure_topic_configs(self, name: str) -> Mapping[str, str]:
        """The topic's configs, read from ZooKeeper when not cached yet (blocking)."""
        with self._lock:
            cached = self._topic_configs.get(name)
        if cached is not None:
            return dict(cached)
        configs = self._read_config(TOPICS, name)
        with self._lock:
            self._topic_configs.setdefault(name, configs)
        return configs

    def create_topic_configs(self, name: str, configs: Mapping[str, str]) -> None:
        """A new topic's configs, written before its znode and without a change
        notification (the controller and every broker learn of the topic itself)."""
        self._set_or_create(zd.config_path(TOPICS, name), zd.encode_config(configs))
        with self._lock:
            self._topic_configs[name] = dict(configs)

    def _read_config(self, entity_type: str, name: str) -> dict[str, str]:
        try:
            return zd.decode_config(self.session.get(zd.config_path(entity_type, name))[0])
        except NoNodeError:
            return {}

    def load(self) -> None:
        topics = {
            name: self._read_config(TOPICS, name)
            for name in self.session.children(f"{zd.CONFIG}/{TOPICS}")
        }
        brokers = {}
        for name in self.session.children(f"{zd.CONFIG}/{BROKERS}"):
            key = "" if name == zd.DEFAULT_ENTITY else name
            brokers[key] = self._read_config(BROKERS, key)
        with self._lock:
            self._topic_configs, self._broker_configs = topics, brokers

    def _on_config_changes(self, children: list[str]) -> bool:
        """Kazoo's thread: hand the new notifications to the store's thread (which reads
        each, refreshes the cache and tells the listener). True: keep watching."""
        self._submit(lambda: self._process_changes(children))
        return True

    def _process_changes(self, children: list[str]) -> None:
        now_ms = time.time_ns() // 1_000_000
        for name in sorted(children):
            seq = int(name.removeprefix(zd.CONFIG_CHANGE_PREFIX) or -1)
            path = f"{zd.CONFIG_CHANGES}/{name}"
            if seq <= self._last_change:
                continue
            try:
                raw, stat = self.session.get(path)
            except NoNodeError:
                continue
            self._last_change = seq
            entity = zd.decode_config_change(raw)
            if entity is not None:
                self._refresh(*entity)
            if now_ms - stat.ctime > NOTIFICATION_EXPIRY_MS:
                with contextlib.suppress(NoNodeError):
                    self.session.delete(path)

    def _refresh(self, entity_type: str, name: str) -> None:
        if entity_type == USERS:
            self._refresh_user(name)
            if self.listener is not None:
                self.listener.on_config_change(USERS, name)
            return
        configs = self._read_config(entity_type, name)
        with self._lock:
            if entity_type == TOPICS:
                self._topic_configs[name] = configs
            elif entity_type == BROKERS:
                self._broker_configs[name] = configs
            else:
                return
        if self.listener is not None:
            self.listener.on_config_change(entity_type, name)

    def write(self, entity_type: str, name: str, configs: Mapping[str, str]) -> None:
        self._set_or_create(zd.config_path(entity_type, name), zd.encode_config(configs))
        self.session.create(
            f"{zd.CONFIG_CHANGES}/{zd.CONFIG_CHANGE_PREFIX}",
            zd.encode_config_change(entity_type, name),
            sequence=True,
        )
        self._refresh(entity_type, name)

    def _set_or_create(self, path: str, data: bytes) -> None:
        """KafkaZkClient.setOrCreateEntityConfigs: set, else create, else (another writer
        created it in between, as two brokers creating an internal topic at once) set."""
        try:
            self.session.set(path, data)
            return
        except NoNodeError:
            pass
        try:
            self.session.create(path, data, makepath=True)
        except NodeExistsError:
            self.session.set(path, data)

    def topic_configs(self, name: str) -> Mapping[str, str]:
        with self._lock:
            return dict(self._topic_configs.get(name, {}))

    def broker_configs(self, entity: str) -> Mapping[str, str]:
        with self._lock:
            return dict(self._broker_configs.get(entity, {}))
