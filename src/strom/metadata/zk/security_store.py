"""ACLs and SCRAM credentials in ZooKeeper, as Kafka's AclAuthorizer and
AdminZkClient keep them (layout in strom.metadata.zk.acl_data).

ACLs: a cache of every resource's entries, loaded at start and kept current by
the change notifications under /kafka-acl-changes and /kafka-acl-extended-changes
(each names one resource, which is read again); every broker of a cluster so
applies a change as soon as ZooKeeper tells it. Writes are conditional on the
znode version (read, merge, write, retry), then notified.

SCRAM: the ``SCRAM-SHA-256``/``SCRAM-SHA-512`` keys of /config/users/<user>
(other keys there, such as quotas, are kept), with a /config/changes
notification, which every broker's config-change watch turns into a re-read.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence

from kazoo.exceptions import BadVersionError, NodeExistsError, NoNodeError, NotEmptyError

from strom.common.acl import (
    AccessControlEntry,
    AclBinding,
    AclError,
    PatternType,
    ResourcePattern,
    resource_type_from_name,
)
from strom.common.scram import HASHES, ScramCredential
from strom.metadata.store import USERS, MetadataListener, StoreError
from strom.metadata.zk import acl_data as ad
from strom.metadata.zk import data as zd
from strom.metadata.zk.session import ZkSession

log = logging.getLogger(__name__)
NOTIFICATION_EXPIRY_MS = 15 * 60 * 1000
UNKNOWN_SERVER_ERROR = -1


class ZkSecurity:
    """The ACL and SCRAM part of a ZkMetadataStore (its session, its work queue)."""

    def __init__(
        self,
        session: ZkSession,
        submit: Callable[[Callable[[], None]], None],
        write_config: Callable[[str, str, Mapping[str, str]], None],
    ) -> None:
        self.session = session
        self._submit = submit
        self._write_config = write_config  # the config store's: write, notify, refresh
        self._lock = threading.RLock()
        self._acls: dict[ResourcePattern, frozenset[AccessControlEntry]] = {}
        self._scram: dict[str, dict[str, ScramCredential]] = {}
        self._last_change: dict[str, int] = {}
        self.listener: MetadataListener | None = None

    # -- start ---------------------------------------------------------------------------
    def ensure_paths(self) -> None:
        for path in ad.ACL_PATHS:
            self.session.ensure_path(path)

    def start(self, listener: MetadataListener) -> None:
        self.listener = listener
        self.load()
        for root in (ad.LITERAL_CHANGES, ad.EXTENDED_CHANGES):
            self.session.client.ChildrenWatch(root, self._watcher(root))

    def load(self) -> None:
        """Read every ACL and every user's credentials (at start, after a new session)."""
        acls: dict[ResourcePattern, frozenset[AccessControlEntry]] = {}
        for pattern_type in (PatternType.LITERAL, PatternType.PREFIXED):
            root = ad.acl_root(pattern_type)
            for kind in self._children(root):
                try:
                    resource_type = resource_type_from_name(kind)
                except AclError:
                    continue
                for name in self._children(f"{root}/{kind}"):
                    pattern = ResourcePattern(resource_type, name, pattern_type)
                    entries = self._read_acls(pattern)[0]
                    if entries:
                        acls[pattern] = entries
        users = {}
        for sanitized in self._children(f"{zd.CONFIG}/{USERS}"):
            creds = self._read_user(sanitized)[1]
            if creds:
                users[ad.desanitize(sanitized)] = creds
        with self._lock:
            self._acls, self._scram = acls, users

    def _children(self, path: str) -> list[str]:
        try:
            return self.session.children(path)
        except NoNodeError:
            return []

    # -- ACLs ------------------------------------------------------------------------------
    def acls(self) -> list[AclBinding]:
        with self._lock:
            return [
                AclBinding(pattern, entry)
                for pattern, entries in self._acls.items()
                for entry in entries
            ]

    def _read_acls(self, pattern: ResourcePattern) -> tuple[frozenset[AccessControlEntry], int]:
        """(entries, znode version), version -1 when the znode does not exist."""
        try:
            raw, stat = self.session.get(ad.resource_path(pattern))
        except NoNodeError:
            return frozenset(), -1
        try:
            return ad.decode_acls(raw), int(stat.version)
        except AclError as exc:
            log.error("ignoring ACLs of %s: %s", pattern, exc)
            return frozenset(), int(stat.version)

    def change_acls(
        self, add: Sequence[AclBinding], remove: Sequence[AclBinding]
    ) -> dict[AclBinding, str]:
        """Add and remove bindings, resource by resource; a binding whose resource could
        not be written maps to the reason (every other one was applied)."""
        by_pattern: dict[ResourcePattern, tuple[set[AccessControlEntry], set[AccessControlEntry]]]
        by_pattern = {}
        for binding in add:
            by_pattern.setdefault(binding.pattern, (set(), set()))[0].add(binding.entry)
        for binding in remove:
            by_pattern.setdefault(binding.pattern, (set(), set()))[1].add(binding.entry)
        failed: dict[AclBinding, str] = {}
        for pattern, (adding, removing) in by_pattern.items():
            try:
                self._update_resource(pattern, adding, removing)
            except Exception as exc:  # any failure of one resource: report, go on
                log.warning("could not update the ACLs of %s: %s", pattern, exc)
                for entry in adding | removing:
                    failed[AclBinding(pattern, entry)] = str(exc) or type(exc).__name__
        return failed

    def _update_resource(
        self,
        pattern: ResourcePattern,
        adding: set[AccessControlEntry],
        removing: set[AccessControlEntry],
    ) -> None:
        path = ad.resource_path(pattern)
        for _ in range(20):
            current, version = self._read_acls(pattern)
            wanted = (current | adding) - removing
            if wanted == current:
                break
            try:
                if version < 0:
                    self.session.create(path, ad.encode_acls(wanted), makepath=True)
                elif wanted:
                    self.session.set(path, ad.encode_acls(wanted), version)
                else:
                    self.session.delete(path, version)
            except (BadVersionError, NodeExistsError, NoNodeError, NotEmptyError):
                continue
            root = ad.change_root(pattern.pattern_type)
            self.session.create(
                f"{root}/{ad.ACL_CHANGE_PREFIX}", ad.encode_change(pattern), sequence=True
            )
            break
        else:
            raise StoreError(UNKNOWN_SERVER_ERROR, f"concurrent changes to the ACLs of {pattern}")
        self._refresh_acls(pattern)

    def _refresh_acls(self, pattern: ResourcePattern) -> None:
        entries = self._read_acls(pattern)[0]
        with self._lock:
            if entries:
                self._acls[pattern] = entries
            else:
                self._acls.pop(pattern, None)
        if self.listener is not None:
            self.listener.on_acls_change()

    def _watcher(self, root: str) -> Callable[[list[str]], bool]:
        def on_children(children: list[str]) -> bool:
            self._submit(lambda: self._process_changes(root, children))
            return True

        return on_children

    def _process_changes(self, root: str, children: list[str]) -> None:
        now_ms = time.time_ns() // 1_000_000
        for name in sorted(children):
            try:
                seq = int(name.removeprefix(ad.ACL_CHANGE_PREFIX))
            except ValueError:
                continue
            if seq <= self._last_change.get(root, -1):
                continue
            path = f"{root}/{name}"
            try:
                raw, stat = self.session.get(path)
            except NoNodeError:
                continue
            self._last_change[root] = seq
            try:
                pattern = ad.decode_change(raw, extended=root == ad.EXTENDED_CHANGES)
            except AclError as exc:
                log.warning("ignoring ACL change notification %s: %s", path, exc)
            else:
                self._refresh_acls(pattern)
            if now_ms - stat.ctime > NOTIFICATION_EXPIRY_MS:
                with contextlib.suppress(NoNodeError):
                    self.session.delete(path)

    # -- SCRAM ----------------------------------------------------------------------------
    def scram_credentials(self, user: str) -> Mapping[str, ScramCredential]:
        with self._lock:
            return dict(self._scram.get(user, {}))

    def scram_users(self) -> list[str]:
        with self._lock:
            return sorted(self._scram)

    def _read_user(self, sanitized: str) -> tuple[dict[str, str], dict[str, ScramCredential]]:
        try:
            raw, _ = self.session.get(zd.config_path(USERS, sanitized))
        except NoNodeError:
            return {}, {}
        config = zd.decode_config(raw)
        creds = {}
        for mechanism in HASHES:
            if mechanism in config:
                try:
                    creds[mechanism] = ScramCredential.from_text(config[mechanism])
                except ValueError as exc:
                    log.error("ignoring the %s credential of %s: %s", mechanism, sanitized, exc)
        return config, creds

    def alter_scram(
        self,
        upserts: Sequence[tuple[str, str, ScramCredential]],
        deletions: Sequence[tuple[str, str]],
    ) -> None:
        changes: dict[str, dict[str, ScramCredential | None]] = {}
        for user, mechanism, cred in upserts:
            changes.setdefault(user, {})[mechanism] = cred
        for user, mechanism in deletions:
            changes.setdefault(user, {})[mechanism] = None
        for user, mechs in changes.items():
            sanitized = ad.sanitize(user)
            config = self._read_user(sanitized)[0]
            for mechanism, new in mechs.items():
                if new is None:
                    config.pop(mechanism, None)
                else:
                    config[mechanism] = new.to_text()
            self._write_config(USERS, sanitized, config)

    def refresh_user(self, sanitized: str) -> None:
        creds = self._read_user(sanitized)[1]
        user = ad.desanitize(sanitized)
        with self._lock:
            if creds:
                self._scram[user] = creds
            else:
                self._scram.pop(user, None)
