"""ACLs and SCRAM users in ZooKeeper as Kafka writes them (ZkAclStore, ZkAclChangeStore,
Sanitizer): the bytes strom writes are the bytes Kafka's tools read."""

from __future__ import annotations

import json

import pytest

from strom.common.acl import (
    AccessControlEntry,
    AclError,
    AclOperation,
    AclPermissionType,
    PatternType,
    ResourcePattern,
    ResourceType,
)
from strom.metadata.zk import acl_data as ad

ENTRY = AccessControlEntry(
    "User:alice", "*", AclOperation.IDEMPOTENT_WRITE, AclPermissionType.ALLOW
)


def test_acl_znode_round_trip_in_kafkas_json() -> None:
    data = ad.encode_acls([ENTRY])
    assert json.loads(data) == {
        "version": 1,
        "acls": [
            {
                "principal": "User:alice",
                "permissionType": "Allow",
                "operation": "IdempotentWrite",
                "host": "*",
            }
        ],
    }
    assert ad.decode_acls(data) == {ENTRY}
    with pytest.raises(AclError):
        ad.decode_acls(b'{"acls":[{"principal":"x"}]}')


def test_paths_and_change_notifications() -> None:
    literal = ResourcePattern(ResourceType.TRANSACTIONAL_ID, "tx", PatternType.LITERAL)
    prefixed = ResourcePattern(ResourceType.TOPIC, "pay-", PatternType.PREFIXED)
    assert ad.resource_path(literal) == "/kafka-acl/TransactionalId/tx"
    assert ad.resource_path(prefixed) == "/kafka-acl-extended/prefixed/Topic/pay-"
    assert ad.encode_change(literal) == b"TransactionalId:tx"
    assert json.loads(ad.encode_change(prefixed)) == {
        "version": 1,
        "resourceType": "Topic",
        "name": "pay-",
        "patternType": "PREFIXED",
    }
    assert ad.decode_change(ad.encode_change(literal), extended=False) == literal
    assert ad.decode_change(ad.encode_change(prefixed), extended=True) == prefixed


def test_user_names_are_sanitized_as_kafka() -> None:
    assert ad.sanitize("alice") == "alice"
    assert ad.sanitize("CN=a b,O=c*") == "CN%3Da%20b%2CO%3Dc%2A"
    assert ad.desanitize(ad.sanitize("CN=a b,O=c*~")) == "CN=a b,O=c*~"
