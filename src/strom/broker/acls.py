"""DescribeAcls, CreateAcls and DeleteAcls as Kafka answers them without an authorizer
(no ``authorizer.class.name``): SECURITY_DISABLED, with Kafka's messages (AclApis).

Kafka parses these requests before anything else and refuses, by closing the
connection, one whose resource type, pattern type, operation or permission type is
UNKNOWN (code 0): the request constructors throw IllegalArgumentException.
"""

from __future__ import annotations

from strom.broker.broker import Broker, handles
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


@handles(ApiKey.DESCRIBE_ACLS)
async def handle_describe_acls(
    broker: Broker, header: RequestHeader, req: DescribeAclsRequest
) -> DescribeAclsResponse:
    _maybe_refuse(
        "DescribeAclsRequest",
        req.pattern_type_filter,
        req.resource_type_filter,
        req.permission_type,
        req.operation,
    )
    return DescribeAclsResponse(
        throttle_time_ms=0,
        error_code=ErrorCode.SECURITY_DISABLED,
        error_message=DESCRIBE_MESSAGE,
        resources=[],
    )


@handles(ApiKey.CREATE_ACLS)
async def handle_create_acls(
    broker: Broker, header: RequestHeader, req: CreateAclsRequest
) -> CreateAclsResponse:
    for c in req.creations:
        _maybe_refuse(
            "CreatableAcls",
            c.resource_pattern_type,
            c.resource_type,
            c.permission_type,
            c.operation,
        )
    return CreateAclsResponse(
        throttle_time_ms=0,
        results=[
            CreateAclsResponse.AclCreationResult(
                error_code=ErrorCode.SECURITY_DISABLED, error_message=ALTER_MESSAGE
            )
            for _ in req.creations
        ],
    )


@handles(ApiKey.DELETE_ACLS)
async def handle_delete_acls(
    broker: Broker, header: RequestHeader, req: DeleteAclsRequest
) -> DeleteAclsResponse:
    for f in req.filters:
        _maybe_refuse(
            "Filters",
            f.pattern_type_filter,
            f.resource_type_filter,
            f.operation,
            f.permission_type,
        )
    return DeleteAclsResponse(
        throttle_time_ms=0,
        filter_results=[
            DeleteAclsResponse.DeleteAclsFilterResult(
                error_code=ErrorCode.SECURITY_DISABLED,
                error_message=ALTER_MESSAGE,
                matching_acls=[],
            )
            for _ in req.filters
        ],
    )
