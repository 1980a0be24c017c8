"""DescribeAcls, CreateAcls and DeleteAcls (Kafka's AclApis).

Without an authorizer (no ``authorizer.class.name``) they are answered
SECURITY_DISABLED with Kafka's messages. With one, the ACLs live in the metadata
store (the embedded file, or /kafka-acl in ZooKeeper, whose change notifications
reach every broker); filters match as Kafka's AclBindingFilter.

Kafka parses these requests before anything else and refuses, by closing the
connection, one whose resource type, pattern type, operation or permission type is
UNKNOWN (code 0): the request constructors throw IllegalArgumentException.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from strom.broker.broker import Broker
from strom.broker.handlers import handles
from strom.common.acl import (
    AccessControlEntry,
    AclBinding,
    AclBindingFilter,
    AclError,
    AclOperation,
    AclPermissionType,
    PatternType,
    ResourcePattern,
    ResourceType,
    validate_binding,
)
from strom.protocol.api_versions import ApiKey
from strom.protocol.errors import CloseConnection, ErrorCode
from strom.protocol.frame import RequestHeader
from strom.protocol.generated.create_acls import CreateAclsRequest, CreateAclsResponse
from strom.protocol.generated.delete_acls import DeleteAclsRequest, DeleteAclsResponse
from strom.protocol.generated.describe_acls import DescribeAclsRequest, DescribeAclsResponse

UNKNOWN = 0
DESCRIBE_MESSAGE = "No Authorizer is configured on the broker"
ALTER_MESSAGE = "No Authorizer is configured."


def _maybe_refuse(what: str, *codes: int) -> None:
    if UNKNOWN in codes:
        raise CloseConnection(f"{what} contains UNKNOWN elements")


def refuse_unknown(req: Any) -> None:
    """CloseConnection for an ACL request with UNKNOWN elements (checked first)."""
    items: list[tuple[Any, str]]
    if isinstance(req, DescribeAclsRequest):
        items = [(req, "DescribeAclsRequest")]
    elif isinstance(req, CreateAclsRequest):
        items = [(c, "CreatableAcls") for c in req.creations]
    else:
        items = [(f, "Filters") for f in req.filters]
    for item, what in items:
        _maybe_refuse(
            what,
            getattr(item, "pattern_type_filter", getattr(item, "resource_pattern_type", 1)),
            getattr(item, "resource_type_filter", getattr(item, "resource_type", 1)),
            item.permission_type,
            item.operation,
        )


def _filter(f: Any) -> AclBindingFilter:
    """A DescribeAcls request or a DeleteAcls filter as an AclBindingFilter."""
    try:
        return AclBindingFilter(
            ResourceType(f.resource_type_filter),
            f.resource_name_filter,
            PatternType(f.pattern_type_filter),
            f.principal_filter,
            f.host_filter,
            AclOperation(f.operation),
            AclPermissionType(f.permission_type),
        )
    except ValueError:
        raise CloseConnection("an ACL filter with an unknown code") from None


async def _apply(
    broker: Broker, add: Sequence[AclBinding], remove: Sequence[AclBinding]
) -> dict[AclBinding, str]:
    failed = await broker.store_call(broker.store.change_acls, add, remove)
    if broker.authorizer is not None:  # at once, not when the store's notice arrives
        broker.authorizer.load(broker.store.acls())
    return failed


@handles(ApiKey.DESCRIBE_ACLS)
async def handle_describe_acls(
    broker: Broker, header: RequestHeader, req: DescribeAclsRequest
) -> DescribeAclsResponse:
    refuse_unknown(req)
    if broker.authorizer is None:
        return DescribeAclsResponse(
            throttle_time_ms=0,
            error_code=ErrorCode.SECURITY_DISABLED,
            error_message=DESCRIBE_MESSAGE,
            resources=[],
        )
    flt = _filter(req)
    by_pattern: dict[ResourcePattern, list[DescribeAclsResponse.AclDescription]] = {}
    for b in broker.authorizer.bindings:
        if flt.matches(b):
            e = b.entry
            by_pattern.setdefault(b.pattern, []).append(
                DescribeAclsResponse.AclDescription(
                    e.principal, e.host, e.operation, e.permission_type
                )
            )
    resources = [
        DescribeAclsResponse.DescribeAclsResource(p.resource_type, p.name, p.pattern_type, acls)
        for p, acls in by_pattern.items()
    ]
    return DescribeAclsResponse(error_code=0, error_message=None, resources=resources)


def _binding(c: CreateAclsRequest.AclCreation) -> AclBinding:
    return AclBinding(
        ResourcePattern(
            ResourceType(c.resource_type), c.resource_name, PatternType(c.resource_pattern_type)
        ),
        AccessControlEntry(
            c.principal, c.host, AclOperation(c.operation), AclPermissionType(c.permission_type)
        ),
    )


@handles(ApiKey.CREATE_ACLS)
async def handle_create_acls(
    broker: Broker, header: RequestHeader, req: CreateAclsRequest
) -> CreateAclsResponse:
    refuse_unknown(req)
    Result = CreateAclsResponse.AclCreationResult
    if broker.authorizer is None:
        return CreateAclsResponse(
            throttle_time_ms=0,
            results=[Result(ErrorCode.SECURITY_DISABLED, ALTER_MESSAGE) for _ in req.creations],
        )
    results: list[Any] = []
    valid: list[AclBinding] = []
    for c in req.creations:
        try:
            binding = _binding(c)
            validate_binding(binding)
        except (AclError, ValueError) as exc:
            results.append(Result(ErrorCode.INVALID_REQUEST, str(exc)))
            continue
        valid.append(binding)
        results.append(binding)
    failed = await _apply(broker, valid, [])
    return CreateAclsResponse(
        results=[
            r
            if isinstance(r, Result)
            else Result(ErrorCode.UNKNOWN_SERVER_ERROR, failed[r])
            if r in failed
            else Result(ErrorCode.NONE, None)
            for r in results
        ]
    )


@handles(ApiKey.DELETE_ACLS)
async def handle_delete_acls(
    broker: Broker, header: RequestHeader, req: DeleteAclsRequest
) -> DeleteAclsResponse:
    refuse_unknown(req)
    FilterResult = DeleteAclsResponse.DeleteAclsFilterResult
    if broker.authorizer is None:
        return DeleteAclsResponse(
            throttle_time_ms=0,
            filter_results=[
                FilterResult(ErrorCode.SECURITY_DISABLED, ALTER_MESSAGE, []) for _ in req.filters
            ],
        )
    current = list(broker.authorizer.bindings)
    matched = [[b for b in current if _filter(f).matches(b)] for f in req.filters]
    failed = await _apply(broker, [], list({b: None for m in matched for b in m}))
    Matching = DeleteAclsResponse.DeleteAclsMatchingAcl
    return DeleteAclsResponse(
        filter_results=[
            FilterResult(
                0,
                None,
                [
                    Matching(
                        ErrorCode.UNKNOWN_SERVER_ERROR if b in failed else 0,
                        failed.get(b),
                        b.pattern.resource_type,
                        b.pattern.name,
                        b.pattern.pattern_type,
                        b.entry.principal,
                        b.entry.host,
                        b.entry.operation,
                        b.entry.permission_type,
                    )
                    for b in bindings
                ],
            )
            for bindings in matched
        ]
    )
