"""The ACL authorizer, Kafka's semantics (AclAuthorizer / StandardAuthorizer): switched
on by ``authorizer.class.name``.

A request is allowed when the principal is a super user (``super.users``), or when
no ACL at all matches the resource and ``allow.everyone.if.no.acl.found`` is true,
or when no DENY matches and an ALLOW does. An ACL matches when its pattern does
(LITERAL: the same name or ``*``; PREFIXED: a prefix of the name), its principal is
the session's or ``User:*``, its host the client's address or ``*``, and its
operation the one asked or ALL. An ALLOW of READ, WRITE, DELETE or ALTER also
allows DESCRIBE; of ALTER_CONFIGS, DESCRIBE_CONFIGS. DENY always wins.

The ACLs come whole from the metadata store (:meth:`load`, on every change);
decisions are cached until the next change.
"""

from __future__ import annotations

from collections.abc import Iterable

from strom.broker.session import Session
from strom.common.acl import (
    IMPLIED_BY,
    SUPPORTED_OPERATIONS,
    WILDCARD,
    WILDCARD_PRINCIPAL,
    AccessControlEntry,
    AclBinding,
    AclOperation,
    AclPermissionType,
    PatternType,
    ResourceType,
    operations_bitfield,
)
from strom.common.config import BrokerConfig

ALLOW, DENY = AclPermissionType.ALLOW, AclPermissionType.DENY
_CACHE_MAX = 65_536
Key = tuple[ResourceType, str]


def parse_super_users(text: str | None) -> frozenset[str]:
    """``super.users``: principals separated by semicolons."""
    return frozenset(p.strip() for p in (text or "").split(";") if p.strip())


class Authorizer:
    def __init__(self, super_users: frozenset[str], allow_if_no_acl: bool) -> None:
        self.super_users = super_users
        self.allow_if_no_acl = allow_if_no_acl
        self.bindings: list[AclBinding] = []
        self._literal: dict[Key, tuple[AccessControlEntry, ...]] = {}
        self._prefixed: dict[Key, tuple[AccessControlEntry, ...]] = {}
        self._prefixed_types: set[ResourceType] = set()
        self._cache: dict[tuple[str, str, AclOperation, ResourceType, str], bool] = {}

    @classmethod
    def from_config(cls, config: BrokerConfig) -> Authorizer | None:
        if not config.get_str("authorizer.class.name"):
            return None
        return cls(
            parse_super_users(config.get_str("super.users")),
            config.get_bool("allow.everyone.if.no.acl.found"),
        )

    def load(self, bindings: Iterable[AclBinding]) -> None:
        """Replace every ACL (the store's whole set)."""
        literal: dict[Key, list[AccessControlEntry]] = {}
        prefixed: dict[Key, list[AccessControlEntry]] = {}
        self.bindings = list(bindings)
        for b in self.bindings:
            table = literal if b.pattern.pattern_type == PatternType.LITERAL else prefixed
            table.setdefault((b.pattern.resource_type, b.pattern.name), []).append(b.entry)
        self._literal = {k: tuple(v) for k, v in literal.items()}
        self._prefixed = {k: tuple(v) for k, v in prefixed.items()}
        self._prefixed_types = {k[0] for k in prefixed}
        self._cache = {}

    def _matching(self, resource_type: ResourceType, name: str) -> list[AccessControlEntry]:
        out = list(self._literal.get((resource_type, WILDCARD), ()))
        out += self._literal.get((resource_type, name), ())
        if resource_type in self._prefixed_types:
            for end in range(1, len(name) + 1):
                out += self._prefixed.get((resource_type, name[:end]), ())
        return out

    def authorize(
        self, session: Session, op: AclOperation, resource_type: ResourceType, name: str
    ) -> bool:
        key = (session.principal, session.client_host, op, resource_type, name)
        cached = self._cache.get(key)
        if cached is None:
            cached = self._decide(session, op, resource_type, name)
            if len(self._cache) >= _CACHE_MAX:
                self._cache = {}
            self._cache[key] = cached
        return cached

    def _decide(
        self, session: Session, op: AclOperation, resource_type: ResourceType, name: str
    ) -> bool:
        if session.principal in self.super_users:
            return True
        acls = self._matching(resource_type, name)
        if not acls:
            return self.allow_if_no_acl
        principal, host = session.principal, session.client_host
        mine = [
            e
            for e in acls
            if e.principal in (principal, WILDCARD_PRINCIPAL) and e.host in (host, WILDCARD)
        ]
        if any(e.permission_type == DENY and e.operation in (op, AclOperation.ALL) for e in mine):
            return False
        allowed_by = IMPLIED_BY.get(op, frozenset({op})) | {AclOperation.ALL}
        return any(e.permission_type == ALLOW and e.operation in allowed_by for e in mine)

    def authorized_operations(
        self, session: Session, resource_type: ResourceType, name: str
    ) -> int:
        """The bit field of the supported operations ``session`` may do on the resource."""
        ops = {
            op
            for op in SUPPORTED_OPERATIONS[resource_type]
            if self.authorize(session, op, resource_type, name)
        }
        return operations_bitfield(ops)

    def authorize_by_resource_type(
        self, session: Session, op: AclOperation, resource_type: ResourceType
    ) -> bool:
        """Kafka's authorizeByResourceType: whether some resource of the type may be
        ``op``-ed, i.e. an ALLOW that no DENY dominates (KIP-679)."""
        if session.principal in self.super_users:
            return True

        def names(permission: AclPermissionType, pattern: PatternType) -> set[str]:
            return {
                b.pattern.name
                for b in self.bindings
                if b.pattern.resource_type == resource_type
                and b.pattern.pattern_type == pattern
                and b.entry.permission_type == permission
                and b.entry.principal in (session.principal, WILDCARD_PRINCIPAL)
                and b.entry.host in (session.client_host, WILDCARD)
                and b.entry.operation in (op, AclOperation.ALL)
            }

        deny_literal = names(DENY, PatternType.LITERAL)
        if WILDCARD in deny_literal:
            return False
        if self.allow_if_no_acl:
            return True
        deny_prefixed = names(DENY, PatternType.PREFIXED)
        allow_literal = names(ALLOW, PatternType.LITERAL)
        allow_prefixed = names(ALLOW, PatternType.PREFIXED)
        if not deny_literal and not deny_prefixed:
            return bool(allow_literal or allow_prefixed)

        def dominated(name: str) -> bool:
            return any(name[:end] in deny_prefixed for end in range(len(name) + 1))

        return any(not dominated(p) for p in allow_prefixed) or any(
            n == WILDCARD or (n not in deny_literal and not dominated(n)) for n in allow_literal
        )
