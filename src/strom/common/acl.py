"""ACLs as Kafka defines them (org.apache.kafka.common.acl and .resource): the enums
with their wire codes, a binding (resource pattern + access control entry), filters
and how they match, and the names ZooKeeper and the tools use.

Pure values: the authorizer (strom.broker.authorizer) decides with them, the
metadata stores keep them, the CLI prints them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

WILDCARD = "*"  # a literal resource name or host matching every one
WILDCARD_PRINCIPAL = "User:*"
CLUSTER_NAME = "kafka-cluster"


class ResourceType(IntEnum):
    UNKNOWN = 0
    ANY = 1
    TOPIC = 2
    GROUP = 3
    CLUSTER = 4
    TRANSACTIONAL_ID = 5
    DELEGATION_TOKEN = 6
    USER = 7


class PatternType(IntEnum):
    UNKNOWN = 0
    ANY = 1
    MATCH = 2
    LITERAL = 3
    PREFIXED = 4


class AclOperation(IntEnum):
    UNKNOWN = 0
    ANY = 1
    ALL = 2
    READ = 3
    WRITE = 4
    CREATE = 5
    DELETE = 6
    ALTER = 7
    DESCRIBE = 8
    CLUSTER_ACTION = 9
    DESCRIBE_CONFIGS = 10
    ALTER_CONFIGS = 11
    IDEMPOTENT_WRITE = 12
    CREATE_TOKENS = 13
    DESCRIBE_TOKENS = 14


class AclPermissionType(IntEnum):
    UNKNOWN = 0
    ANY = 1
    DENY = 2
    ALLOW = 3


Op = AclOperation
# AclEntry.supportedOperations: what each resource type's ACLs (and authorized
# operations) may name.
SUPPORTED_OPERATIONS: dict[ResourceType, frozenset[AclOperation]] = {
    ResourceType.TOPIC: frozenset(
        {
            Op.READ,
            Op.WRITE,
            Op.CREATE,
            Op.DESCRIBE,
            Op.DELETE,
            Op.ALTER,
            Op.DESCRIBE_CONFIGS,
            Op.ALTER_CONFIGS,
        }
    ),
    ResourceType.GROUP: frozenset({Op.READ, Op.DESCRIBE, Op.DELETE}),
    ResourceType.CLUSTER: frozenset(
        {
            Op.CREATE,
            Op.CLUSTER_ACTION,
            Op.DESCRIBE_CONFIGS,
            Op.ALTER_CONFIGS,
            Op.IDEMPOTENT_WRITE,
            Op.ALTER,
            Op.DESCRIBE,
        }
    ),
    ResourceType.TRANSACTIONAL_ID: frozenset({Op.DESCRIBE, Op.WRITE}),
    ResourceType.DELEGATION_TOKEN: frozenset({Op.DESCRIBE}),
    ResourceType.USER: frozenset({Op.CREATE_TOKENS, Op.DESCRIBE_TOKENS}),
}

# An ALLOW of any of these also allows the key (AclAuthorizer.authorizeAction).
IMPLIED_BY: dict[AclOperation, frozenset[AclOperation]] = {
    Op.DESCRIBE: frozenset({Op.DESCRIBE, Op.READ, Op.WRITE, Op.DELETE, Op.ALTER}),
    Op.DESCRIBE_CONFIGS: frozenset({Op.DESCRIBE_CONFIGS, Op.ALTER_CONFIGS}),
}

# Kafka's names in ZooKeeper and in kafka-acls.sh output (SecurityUtils).
RESOURCE_TYPE_NAMES: dict[ResourceType, str] = {
    ResourceType.TOPIC: "Topic",
    ResourceType.GROUP: "Group",
    ResourceType.CLUSTER: "Cluster",
    ResourceType.TRANSACTIONAL_ID: "TransactionalId",
    ResourceType.DELEGATION_TOKEN: "DelegationToken",
    ResourceType.USER: "User",
}
OPERATION_NAMES: dict[AclOperation, str] = {
    op: "".join(word.capitalize() for word in op.name.split("_"))
    for op in AclOperation
    if op not in (Op.UNKNOWN, Op.ANY)
}
PERMISSION_NAMES = {AclPermissionType.ALLOW: "Allow", AclPermissionType.DENY: "Deny"}


class AclError(ValueError):
    """A binding or a name that does not parse or is not valid."""


def _by_name(table: dict[int, str], text: str, what: str) -> int:
    wanted = text.replace("_", "").replace("-", "").lower()
    for code, name in table.items():
        if name.lower() == wanted:
            return code
    raise AclError(f"unknown {what} {text!r}")


def resource_type_from_name(text: str) -> ResourceType:
    return ResourceType(_by_name(RESOURCE_TYPE_NAMES, text, "resource type"))  # type: ignore[arg-type]


def operation_from_name(text: str) -> AclOperation:
    return AclOperation(_by_name(OPERATION_NAMES, text, "operation"))  # type: ignore[arg-type]


def permission_from_name(text: str) -> AclPermissionType:
    return AclPermissionType(_by_name(PERMISSION_NAMES, text, "permission type"))  # type: ignore[arg-type]


def pattern_type_from_name(text: str) -> PatternType:
    try:
        return PatternType[text.strip().upper()]
    except KeyError:
        raise AclError(f"unknown pattern type {text!r}") from None


def operations_bitfield(ops: frozenset[AclOperation] | set[AclOperation]) -> int:
    """Utils.to32BitField: bit ``code`` set for each operation."""
    out = 0
    for op in ops:
        out |= 1 << int(op)
    return out


@dataclass(frozen=True, slots=True)
class ResourcePattern:
    resource_type: ResourceType
    name: str
    pattern_type: PatternType

    def __str__(self) -> str:
        return (
            f"ResourcePattern(resourceType={self.resource_type.name}, name={self.name}, "
            f"patternType={self.pattern_type.name})"
        )


@dataclass(frozen=True, slots=True)
class AccessControlEntry:
    principal: str
    host: str
    operation: AclOperation
    permission_type: AclPermissionType


@dataclass(frozen=True, slots=True)
class AclBinding:
    pattern: ResourcePattern
    entry: AccessControlEntry

    def to_filter(self) -> AclBindingFilter:
        """AclBinding.toFilter: the filter matching exactly this binding."""
        p, e = self.pattern, self.entry
        return AclBindingFilter(
            p.resource_type, p.name, p.pattern_type, e.principal, e.host, e.operation,
            e.permission_type,
        )  # fmt: skip


def validate_binding(binding: AclBinding) -> None:
    """AclError unless ``binding`` may be created (Kafka's checks in CreateAcls and
    AclControlManager.validateNewAcl)."""
    p, e = binding.pattern, binding.entry
    if p.pattern_type not in (PatternType.LITERAL, PatternType.PREFIXED):
        raise AclError(f"Invalid patternType {p.pattern_type.name}")
    if p.resource_type in (ResourceType.ANY, ResourceType.UNKNOWN):
        raise AclError(f"Invalid resourceType {p.resource_type.name}")
    if e.operation in (Op.ANY, Op.UNKNOWN):
        raise AclError(f"Invalid operation {e.operation.name}")
    if e.permission_type not in (AclPermissionType.ALLOW, AclPermissionType.DENY):
        raise AclError(f"Invalid permissionType {e.permission_type.name}")
    if not p.name:
        raise AclError("Invalid empty resource name")
    if p.resource_type == ResourceType.CLUSTER and p.name != CLUSTER_NAME:
        raise AclError(f"The only valid name for the CLUSTER resource is {CLUSTER_NAME}")
    if "/" in p.name:
        raise AclError(f"ACL binding contains invalid resource name: {p.name}")
    if ":" not in e.principal:
        raise AclError(
            f"Could not parse principal from `{e.principal}` (no colon is present separating "
            "the principal type from the principal name)"
        )
    if e.operation != Op.ALL and e.operation not in SUPPORTED_OPERATIONS[p.resource_type]:
        raise AclError(
            f"ResourceType {p.resource_type.name} only supports operations "
            f"{','.join(sorted(o.name for o in SUPPORTED_OPERATIONS[p.resource_type]))}"
        )


@dataclass(frozen=True, slots=True)
class AclBindingFilter:
    """Kafka's AclBindingFilter: None (null) matches anything in that field."""

    resource_type: ResourceType = ResourceType.ANY
    name: str | None = None
    pattern_type: PatternType = PatternType.ANY
    principal: str | None = None
    host: str | None = None
    operation: AclOperation = Op.ANY
    permission_type: AclPermissionType = AclPermissionType.ANY

    def unknown_element(self) -> bool:
        return 0 in (self.resource_type, self.pattern_type, self.operation, self.permission_type)

    def matches_pattern(self, p: ResourcePattern) -> bool:
        """ResourcePatternFilter.matches."""
        if self.resource_type != ResourceType.ANY and self.resource_type != p.resource_type:
            return False
        if self.pattern_type not in (PatternType.ANY, PatternType.MATCH, p.pattern_type):
            return False
        if self.name is None:
            return True
        if self.pattern_type in (PatternType.ANY, PatternType.LITERAL, PatternType.PREFIXED):
            return self.name == p.name
        # MATCH: literal equal or wildcard, or a prefix of the filter's name
        if p.pattern_type == PatternType.LITERAL:
            return self.name == p.name or p.name == WILDCARD
        if p.pattern_type == PatternType.PREFIXED:
            return self.name.startswith(p.name)
        return False

    def matches_entry(self, e: AccessControlEntry) -> bool:
        """AccessControlEntryFilter.matches."""
        if self.principal is not None and self.principal != e.principal:
            return False
        if self.host is not None and self.host != e.host:
            return False
        if self.operation != Op.ANY and self.operation != e.operation:
            return False
        return self.permission_type in (AclPermissionType.ANY, e.permission_type)

    def matches(self, binding: AclBinding) -> bool:
        return self.matches_pattern(binding.pattern) and self.matches_entry(binding.entry)


def describe_binding(binding: AclBinding) -> str:
    """kafka-acls.sh's line for one entry."""
    e = binding.entry
    return (
        f"(principal={e.principal}, host={e.host}, operation={e.operation.name}, "
        f"permissionType={e.permission_type.name})"
    )
