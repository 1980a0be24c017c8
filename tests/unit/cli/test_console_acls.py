"""The console's ACL forms: Kafka's names in, a valid binding out, or why not."""

from __future__ import annotations

import pytest

from strom.cli.console.data import acl_binding
from strom.common import acl

FORM = {
    "principal": " User:alice ",
    "host": "",
    "operation": "IdempotentWrite",
    "permission_type": "Deny",
    "resource_type": "Cluster",
    "name": "",
    "pattern_type": "literal",
}


def test_a_form_names_a_binding() -> None:
    assert acl_binding(FORM) == acl.AclBinding(
        acl.ResourcePattern(acl.ResourceType.CLUSTER, "kafka-cluster", acl.PatternType.LITERAL),
        acl.AccessControlEntry(
            "User:alice", "*", acl.AclOperation.IDEMPOTENT_WRITE, acl.AclPermissionType.DENY
        ),
    )


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("operation", "Fly", "unknown operation"),
        ("pattern_type", "match", "Invalid patternType"),
        ("operation", "Read", "only supports operations"),
        ("name", "other", "only valid name for the CLUSTER resource"),
    ],
)
def test_a_bad_form_says_why(field: str, value: str, message: str) -> None:
    with pytest.raises(acl.AclError, match=message):
        acl_binding({**FORM, field: value})
