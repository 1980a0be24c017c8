"""The admin's security operations: ACLs (DescribeAcls, CreateAcls, DeleteAcls) and
SCRAM credentials (DescribeUserScramCredentials, AlterUserScramCredentials), with
Kafka's Admin semantics: the salt is made here and only the salted password leaves
the client."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from strom.client.errors import raise_for
from strom.common.acl import (
    AccessControlEntry,
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    PatternType,
    ResourcePattern,
    ResourceType,
)
from strom.common.scram import MECHANISM_NAMES, MECHANISM_TYPES, salted_password
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.generated.alter_user_scram_credentials import (
    AlterUserScramCredentialsRequest as _AUSC,
)
from strom.protocol.generated.create_acls import CreateAclsRequest
from strom.protocol.generated.delete_acls import DeleteAclsRequest
from strom.protocol.generated.describe_acls import DescribeAclsRequest
from strom.protocol.generated.describe_user_scram_credentials import (
    DescribeUserScramCredentialsRequest as _DUSC,
)

if TYPE_CHECKING:
    from strom.client.aio.client import AIOClient


def _binding(resource: object, acl: object) -> AclBinding:
    r, a = resource, acl
    return AclBinding(
        ResourcePattern(
            ResourceType(r.resource_type),  # type: ignore[attr-defined]
            r.resource_name,  # type: ignore[attr-defined]
            PatternType(r.pattern_type),  # type: ignore[attr-defined]
        ),
        AccessControlEntry(
            a.principal,  # type: ignore[attr-defined]
            a.host,  # type: ignore[attr-defined]
            AclOperation(a.operation),  # type: ignore[attr-defined]
            AclPermissionType(a.permission_type),  # type: ignore[attr-defined]
        ),
    )


class SecurityAdminMixin:
    """ACLs and SCRAM credentials; the host class provides ``client``."""

    client: AIOClient

    async def describe_acls(self, flt: AclBindingFilter) -> list[AclBinding]:
        """DescribeAcls: the bindings matching ``flt``; an error raises."""
        request = DescribeAclsRequest(
            resource_type_filter=flt.resource_type,
            resource_name_filter=flt.name,
            pattern_type_filter=flt.pattern_type,
            principal_filter=flt.principal,
            host_filter=flt.host,
            operation=flt.operation,
            permission_type=flt.permission_type,
        )
        response = await self.client.send(None, request)
        raise_for(response.error_code, "describe ACLs", response.error_message)
        return [_binding(r, a) for r in response.resources for a in r.acls]

    async def create_acls(self, bindings: Sequence[AclBinding]) -> None:
        """CreateAcls; the first binding's error raises."""
        request = CreateAclsRequest(
            creations=[
                CreateAclsRequest.AclCreation(
                    b.pattern.resource_type,
                    b.pattern.name,
                    b.pattern.pattern_type,
                    b.entry.principal,
                    b.entry.host,
                    b.entry.operation,
                    b.entry.permission_type,
                )
                for b in bindings
            ]
        )
        response = await self.client.send(None, request)
        for result in response.results:
            raise_for(result.error_code, "create ACLs", result.error_message)

    async def delete_acls(self, filters: Sequence[AclBindingFilter]) -> list[list[AclBinding]]:
        """DeleteAcls; the bindings each filter deleted."""
        request = DeleteAclsRequest(
            filters=[
                DeleteAclsRequest.DeleteAclsFilter(
                    f.resource_type,
                    f.name,
                    f.pattern_type,
                    f.principal,
                    f.host,
                    f.operation,
                    f.permission_type,
                )
                for f in filters
            ]
        )
        response = await self.client.send(None, request)
        out = []
        for result in response.filter_results:
            raise_for(result.error_code, "delete ACLs", result.error_message)
            out.append([_binding(m, m) for m in result.matching_acls])
        return out

    async def describe_user_scram_credentials(
        self, users: Iterable[str] | None = None
    ) -> dict[str, dict[str, int]]:
        """user -> mechanism -> iterations; an unknown user raises RESOURCE_NOT_FOUND."""
        names = None if users is None else [_DUSC.UserName(u) for u in users]
        response = await self.client.send(None, _DUSC(users=names))
        raise_for(response.error_code, "describe SCRAM credentials", response.error_message)
        out: dict[str, dict[str, int]] = {}
        for result in response.results:
            raise_for(result.error_code, f"user {result.user}", result.error_message)
            out[result.user] = {
                MECHANISM_NAMES.get(c.mechanism, str(c.mechanism)): c.iterations
                for c in result.credential_infos
            }
        return out

    async def alter_user_scram_credentials(
        self,
        upserts: Sequence[tuple[str, str, str, int]] = (),
        deletions: Sequence[tuple[str, str]] = (),
    ) -> None:
        """Set (user, mechanism, password, iterations) and delete (user, mechanism)."""
        request = _AUSC(
            deletions=[_AUSC.ScramCredentialDeletion(u, _mechanism(m)) for u, m in deletions],
            upsertions=[],
        )
        for user, mechanism, password, iterations in upserts:
            salt = secrets.token_bytes(32)
            request.upsertions.append(
                _AUSC.ScramCredentialUpsertion(
                    user,
                    _mechanism(mechanism),
                    iterations,
                    salt,
                    salted_password(mechanism, password, salt, iterations),
                )
            )
        response = await self.client.send(None, request)
        for result in response.results:
            raise_for(result.error_code, f"user {result.user}", result.error_message)


def _mechanism(name: str) -> int:
    try:
        return MECHANISM_TYPES[name]
    except KeyError:
        raise KafkaError(
            ErrorCode.UNSUPPORTED_SASL_MECHANISM, f"Unknown SCRAM mechanism {name}"
        ) from None
