"""Kafka's ZooKeeper layout of ACLs and SCRAM credentials (ZkData, ZkAclStore,
ZkAclChangeStore, ScramCredentialUtils), pure: bytes in, values out.

::

    /kafka-acl/<ResourceType>/<name>                    literal ACLs of one resource
    /kafka-acl-extended/prefixed/<ResourceType>/<name>  prefixed ACLs
        {"version":1,"acls":[{"principal":"User:alice","permissionType":"Allow",
                              "operation":"Read","host":"*"}]}
    /kafka-acl-changes/acl_changes_<seq>                "Topic:name" (a literal change)
    /kafka-acl-extended-changes/acl_changes_<seq>       {"version":1,"resourceType":"Topic",
                                                         "name":"t","patternType":"PREFIXED"}
    /config/users/<sanitized user>                      {"version":1,"config":
                                                         {"SCRAM-SHA-256":"salt=..,..."}}
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterable

from strom.common.acl import (
    OPERATION_NAMES,
    PERMISSION_NAMES,
    RESOURCE_TYPE_NAMES,
    AccessControlEntry,
    AclError,
    PatternType,
    ResourcePattern,
    operation_from_name,
    permission_from_name,
    resource_type_from_name,
)

LITERAL_ACLS = "/kafka-acl"
PREFIXED_ACLS = "/kafka-acl-extended/prefixed"
LITERAL_CHANGES = "/kafka-acl-changes"
EXTENDED_CHANGES = "/kafka-acl-extended-changes"
ACL_CHANGE_PREFIX = "acl_changes_"
ACL_PATHS = (LITERAL_ACLS, PREFIXED_ACLS, LITERAL_CHANGES, EXTENDED_CHANGES)


def acl_root(pattern_type: PatternType) -> str:
    return LITERAL_ACLS if pattern_type == PatternType.LITERAL else PREFIXED_ACLS


def change_root(pattern_type: PatternType) -> str:
    return LITERAL_CHANGES if pattern_type == PatternType.LITERAL else EXTENDED_CHANGES


def resource_path(pattern: ResourcePattern) -> str:
    kind = RESOURCE_TYPE_NAMES[pattern.resource_type]
    return f"{acl_root(pattern.pattern_type)}/{kind}/{pattern.name}"


def encode_acls(entries: Iterable[AccessControlEntry]) -> bytes:
    acls = [
        {
            "principal": e.principal,
            "permissionType": PERMISSION_NAMES[e.permission_type],
            "operation": OPERATION_NAMES[e.operation],
            "host": e.host,
        }
        for e in sorted(
            entries, key=lambda e: (e.principal, e.host, e.operation, e.permission_type)
        )
    ]
    return json.dumps({"version": 1, "acls": acls}, separators=(",", ":")).encode()


def decode_acls(data: bytes | None) -> frozenset[AccessControlEntry]:
    if not data:
        return frozenset()
    try:
        obj = json.loads(data)
        return frozenset(
            AccessControlEntry(
                str(a["principal"]),
                str(a["host"]),
                operation_from_name(str(a["operation"])),
                permission_from_name(str(a["permissionType"])),
            )
            for a in obj.get("acls", [])
        )
    except (ValueError, KeyError, TypeError, AttributeError, AclError) as exc:
        raise AclError(f"bad ACL znode data: {exc}") from None


def encode_change(pattern: ResourcePattern) -> bytes:
    kind = RESOURCE_TYPE_NAMES[pattern.resource_type]
    if pattern.pattern_type == PatternType.LITERAL:
        return f"{kind}:{pattern.name}".encode()
    body = {
        "version": 1,
        "resourceType": kind,
        "name": pattern.name,
        "patternType": pattern.pattern_type.name,
    }
    return json.dumps(body, separators=(",", ":")).encode()


def decode_change(data: bytes | None, extended: bool) -> ResourcePattern:
    text = (data or b"").decode("utf-8", "replace")
    if not extended:
        kind, sep, name = text.partition(":")
        if not sep:
            raise AclError(f"bad ACL change notification {text!r}")
        return ResourcePattern(resource_type_from_name(kind), name, PatternType.LITERAL)
    try:
        obj = json.loads(text)
        return ResourcePattern(
            resource_type_from_name(str(obj["resourceType"])),
            str(obj["name"]),
            PatternType[str(obj["patternType"]).upper()],
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise AclError(f"bad ACL change notification {text!r}: {exc}") from None


def sanitize(name: str) -> str:
    """Kafka's Sanitizer.sanitize: Java's URL encoding, with %20 for a space and %2A
    for *."""
    encoded = urllib.parse.quote_plus(name, safe="*").replace("~", "%7E")
    return encoded.replace("+", "%20").replace("*", "%2A")


def desanitize(name: str) -> str:
    return urllib.parse.unquote(name)
