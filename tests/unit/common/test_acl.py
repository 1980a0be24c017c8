"""ACL bindings: validation as CreateAcls does it, filters as Kafka matches them."""

from __future__ import annotations

import pytest

from strom.common.acl import (
    OPERATION_NAMES,
    AccessControlEntry,
    AclBinding,
    AclBindingFilter,
    AclError,
    AclOperation,
    AclPermissionType,
    PatternType,
    ResourcePattern,
    ResourceType,
    pattern_type_from_name,
    validate_binding,
)

Op, RT, PT = AclOperation, ResourceType, PatternType


def b(
    kind: RT,
    name: str,
    pattern: PT = PT.LITERAL,
    principal: str = "User:a",
    op: Op = Op.READ,
    perm: AclPermissionType = AclPermissionType.ALLOW,
) -> AclBinding:
    return AclBinding(
        ResourcePattern(kind, name, pattern), AccessControlEntry(principal, "*", op, perm)
    )


@pytest.mark.parametrize(
    ("binding", "message"),
    [
        (b(RT.TOPIC, "t", PT.ANY), "Invalid patternType"),
        (b(RT.ANY, "t"), "Invalid resourceType"),
        (b(RT.TOPIC, "t", op=Op.ANY), "Invalid operation"),
        (b(RT.TOPIC, "t", perm=AclPermissionType.ANY), "Invalid permissionType"),
        (b(RT.TOPIC, ""), "empty resource name"),
        (b(RT.CLUSTER, "c"), "only valid name for the CLUSTER resource is kafka-cluster"),
        (b(RT.TOPIC, "a/b"), "invalid resource name"),
        (b(RT.TOPIC, "t", principal="alice"), "no colon"),
        (b(RT.GROUP, "g", op=Op.WRITE), "only supports operations"),
    ],
)
def test_invalid_bindings(binding: AclBinding, message: str) -> None:
    with pytest.raises(AclError, match=message):
        validate_binding(binding)


def test_valid_bindings() -> None:
    validate_binding(b(RT.CLUSTER, "kafka-cluster", op=Op.IDEMPOTENT_WRITE))
    validate_binding(b(RT.TOPIC, "p-", PT.PREFIXED, op=Op.ALL))


def test_filters_match_as_kafka() -> None:
    literal, prefixed, wildcard = (
        b(RT.TOPIC, "foo"),
        b(RT.TOPIC, "fo", PT.PREFIXED),
        b(RT.TOPIC, "*"),
    )
    everything = AclBindingFilter()
    assert all(everything.matches(x) for x in (literal, prefixed, wildcard))
    exact = AclBindingFilter(RT.TOPIC, "foo", PT.LITERAL)
    assert exact.matches(literal) and not exact.matches(prefixed) and not exact.matches(wildcard)
    any_type = AclBindingFilter(RT.TOPIC, "foo", PT.ANY)
    assert any_type.matches(literal) and not any_type.matches(prefixed)
    match = AclBindingFilter(RT.TOPIC, "foo", PT.MATCH)  # everything that applies to foo
    assert match.matches(literal) and match.matches(prefixed) and match.matches(wildcard)
    assert not match.matches(b(RT.TOPIC, "foobar"))
    assert not AclBindingFilter(RT.GROUP).matches(literal)
    assert AclBindingFilter(principal="User:a", operation=Op.READ).matches(literal)
    assert not AclBindingFilter(principal="User:b").matches(literal)
    assert AclBindingFilter(operation=Op.UNKNOWN).unknown_element()


def test_a_bindings_filter_matches_it_alone() -> None:
    binding = b(RT.TOPIC, "fo", PT.PREFIXED, op=Op.WRITE)
    assert binding.to_filter().matches(binding)
    others = [b(RT.TOPIC, "fo"), b(RT.TOPIC, "fo", PT.PREFIXED), b(RT.GROUP, "fo", PT.PREFIXED)]
    assert not any(binding.to_filter().matches(o) for o in others)


def test_pattern_type_names() -> None:
    assert pattern_type_from_name(" prefixed") == PT.PREFIXED
    with pytest.raises(AclError, match="unknown pattern type"):
        pattern_type_from_name("glob")


def test_operation_names_are_kafkas() -> None:
    assert OPERATION_NAMES[Op.IDEMPOTENT_WRITE] == "IdempotentWrite"
    assert OPERATION_NAMES[Op.DESCRIBE_CONFIGS] == "DescribeConfigs"
