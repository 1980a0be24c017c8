"""The authorizer's decisions with Kafka's semantics (AclAuthorizer): a table of
principal x host x resource x operation against a set of ACLs, plus super users,
allow.everyone.if.no.acl.found, authorized operations and authorizeByResourceType."""

from __future__ import annotations

import pytest

from strom.broker.authorizer import Authorizer, parse_super_users
from strom.broker.session import Session
from strom.common.acl import (
    AccessControlEntry,
    AclBinding,
    AclOperation,
    AclPermissionType,
    PatternType,
    ResourcePattern,
    ResourceType,
    operations_bitfield,
)

Op, RT, PT = AclOperation, ResourceType, PatternType
ALLOW, DENY = AclPermissionType.ALLOW, AclPermissionType.DENY


def acl(
    kind: RT,
    name: str,
    principal: str,
    op: Op,
    perm: AclPermissionType = ALLOW,
    pattern: PT = PT.LITERAL,
    host: str = "*",
) -> AclBinding:
    return AclBinding(
        ResourcePattern(kind, name, pattern), AccessControlEntry(principal, host, op, perm)
    )


ACLS = [
    acl(RT.TOPIC, "orders", "User:alice", Op.READ),
    acl(RT.TOPIC, "orders", "User:alice", Op.WRITE, host="10.0.0.1"),
    acl(RT.TOPIC, "pay-", "User:bob", Op.WRITE, pattern=PT.PREFIXED),
    acl(RT.TOPIC, "pay-secret", "User:bob", Op.WRITE, DENY),
    acl(RT.TOPIC, "public", "User:*", Op.DESCRIBE),
    acl(RT.TOPIC, "*", "User:carol", Op.ALL),
    acl(RT.TOPIC, "carol-no", "User:carol", Op.DELETE, DENY),
    acl(RT.GROUP, "g", "User:alice", Op.READ),
    acl(RT.TOPIC, "cfg", "User:dave", Op.ALTER_CONFIGS),
]
ALICE = Session("User:alice", "127.0.0.1")
ALICE_REMOTE = Session("User:alice", "10.0.0.1")
BOB = Session("User:bob", "127.0.0.1")
CAROL = Session("User:carol", "127.0.0.1")
DAVE = Session("User:dave", "127.0.0.1")
ADMIN = Session("User:admin", "127.0.0.1")


@pytest.fixture
def authorizer() -> Authorizer:
    a = Authorizer(parse_super_users("User:admin; User:ops"), allow_if_no_acl=False)
    a.load(ACLS)
    return a


@pytest.mark.parametrize(
    ("session", "op", "kind", "name", "allowed"),
    [
        (ALICE, Op.READ, RT.TOPIC, "orders", True),  # literal allow
        (ALICE, Op.DESCRIBE, RT.TOPIC, "orders", True),  # READ implies DESCRIBE
        (ALICE, Op.WRITE, RT.TOPIC, "orders", False),  # the WRITE is for another host
        (ALICE_REMOTE, Op.WRITE, RT.TOPIC, "orders", True),
        (BOB, Op.READ, RT.TOPIC, "orders", False),  # ACLs exist, none for bob
        (BOB, Op.WRITE, RT.TOPIC, "pay-in", True),  # prefixed
        (BOB, Op.DESCRIBE, RT.TOPIC, "pay-in", True),  # WRITE implies DESCRIBE
        (BOB, Op.WRITE, RT.TOPIC, "pay-secret", False),  # DENY wins over the prefix
        (BOB, Op.WRITE, RT.TOPIC, "pay", False),  # shorter than the prefix
        (BOB, Op.DESCRIBE, RT.TOPIC, "public", True),  # wildcard principal
        (BOB, Op.READ, RT.TOPIC, "public", False),  # DESCRIBE implies nothing
        (CAROL, Op.WRITE, RT.TOPIC, "anything", True),  # wildcard resource, ALL
        (CAROL, Op.DELETE, RT.TOPIC, "carol-no", False),  # DENY over ALL
        (CAROL, Op.WRITE, RT.TOPIC, "carol-no", True),
        (CAROL, Op.READ, RT.GROUP, "g", False),  # the wildcard is for topics
        (ALICE, Op.READ, RT.GROUP, "g", True),
        (ALICE, Op.DELETE, RT.GROUP, "g", False),
        (DAVE, Op.DESCRIBE_CONFIGS, RT.TOPIC, "cfg", True),  # ALTER_CONFIGS implies it
        (DAVE, Op.DESCRIBE, RT.TOPIC, "cfg", False),
        (ADMIN, Op.ALTER, RT.CLUSTER, "kafka-cluster", True),  # super user
        (Session("User:ops", ""), Op.DELETE, RT.TOPIC, "orders", True),
        (ALICE, Op.CREATE, RT.CLUSTER, "kafka-cluster", False),  # no ACL found
    ],
)
def test_decisions(
    authorizer: Authorizer, session: Session, op: Op, kind: RT, name: str, allowed: bool
) -> None:
    assert authorizer.authorize(session, op, kind, name) is allowed


def test_allow_everyone_if_no_acl_found_only_where_there_is_none() -> None:
    a = Authorizer(frozenset(), allow_if_no_acl=True)
    a.load(ACLS)
    assert a.authorize(BOB, Op.CREATE, RT.CLUSTER, "kafka-cluster")  # no ACL at all
    assert not a.authorize(BOB, Op.READ, RT.TOPIC, "orders")  # ACLs exist for it
    assert a.authorize(BOB, Op.READ, RT.GROUP, "other")


def test_decisions_change_with_the_acls(authorizer: Authorizer) -> None:
    assert authorizer.authorize(ALICE, Op.READ, RT.TOPIC, "orders")
    authorizer.load([])
    assert not authorizer.authorize(ALICE, Op.READ, RT.TOPIC, "orders")


def test_authorized_operations(authorizer: Authorizer) -> None:
    ops = authorizer.authorized_operations(ALICE, RT.TOPIC, "orders")
    assert ops == operations_bitfield({Op.READ, Op.DESCRIBE})
    every = authorizer.authorized_operations(ADMIN, RT.GROUP, "x")
    assert every == operations_bitfield({Op.READ, Op.DESCRIBE, Op.DELETE})


def test_authorize_by_resource_type(authorizer: Authorizer) -> None:
    assert authorizer.authorize_by_resource_type(BOB, Op.WRITE, RT.TOPIC)  # pay- prefix
    assert not authorizer.authorize_by_resource_type(DAVE, Op.WRITE, RT.TOPIC)
    assert authorizer.authorize_by_resource_type(ADMIN, Op.WRITE, RT.TOPIC)
    denied = Authorizer(frozenset(), False)
    denied.load(
        [
            acl(RT.TOPIC, "t", "User:bob", Op.WRITE),
            acl(RT.TOPIC, "t", "User:bob", Op.WRITE, DENY, PT.PREFIXED),
        ]
    )
    assert not denied.authorize_by_resource_type(BOB, Op.WRITE, RT.TOPIC)
    denied.load(
        [acl(RT.TOPIC, "*", "User:bob", Op.WRITE, DENY), acl(RT.TOPIC, "t", "User:bob", Op.WRITE)]
    )
    assert not denied.authorize_by_resource_type(BOB, Op.WRITE, RT.TOPIC)
