"""``strom acls``: kafka-acls.sh (AclCommand) over CreateAcls, DescribeAcls and
DeleteAcls.

``--add`` / ``--remove`` / ``--list`` the ACLs of ``--topic``, ``--group``,
``--cluster``, ``--transactional-id``, ``--delegation-token`` or
``--user-principal`` resources (``--resource-pattern-type``: LITERAL by default
for changes, ANY for listing), for ``--allow-principal`` / ``--deny-principal`` from
``--allow-host`` / ``--deny-host`` (``*`` by default) with ``--operation`` (All
by default); ``--producer`` and ``--consumer`` add the operations those clients
need. Output as Kafka's.
"""

from __future__ import annotations

import argparse
import sys

from strom.cli.common import CliError, add_bootstrap, add_command_config, client_config, run_admin
from strom.client.aio.admin import AIOAdmin
from strom.common.acl import (
    CLUSTER_NAME,
    AccessControlEntry,
    AclBinding,
    AclBindingFilter,
    AclError,
    AclOperation,
    AclPermissionType,
    PatternType,
    ResourcePattern,
    ResourceType,
    operation_from_name,
)

Op = AclOperation


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_bootstrap(p)
    add_command_config(p)
    action = p.add_mutually_exclusive_group(required=True)
    action.add_argument("--add", action="store_true", help="add ACLs")
    action.add_argument("--remove", action="store_true", help="remove ACLs")
    action.add_argument("--list", action="store_true", help="list ACLs")
    p.add_argument("--topic", action="append", default=[], help="a topic resource")
    p.add_argument("--group", action="append", default=[], help="a consumer group resource")
    p.add_argument("--cluster", action="store_true", help="the cluster resource")
    p.add_argument("--transactional-id", action="append", default=[], help="a transactional id")
    p.add_argument("--delegation-token", action="append", default=[], help="a delegation token")
    p.add_argument("--user-principal", action="append", default=[], help="a user resource")
    p.add_argument(
        "--resource-pattern-type",
        type=str.upper,
        choices=["ANY", "MATCH", "LITERAL", "PREFIXED"],
        help="LITERAL (default for --add/--remove), PREFIXED, ANY (default for --list), MATCH",
    )
    p.add_argument("--allow-principal", action="append", default=[], help="e.g. User:alice")
    p.add_argument("--deny-principal", action="append", default=[], help="e.g. User:mallory")
    p.add_argument("--principal", action="append", default=[], help="--list: ACLs of these")
    p.add_argument("--allow-host", action="append", default=[], help="default: * (any)")
    p.add_argument("--deny-host", action="append", default=[], help="default: * (any)")
    p.add_argument("--operation", action="append", default=[], help="default: All")
    p.add_argument("--producer", action="store_true", help="ACLs for a producer")
    p.add_argument("--consumer", action="store_true", help="ACLs for a consumer")
    p.add_argument("--idempotent", action="store_true", help="with --producer")
    p.add_argument("--force", action="store_true", help="do not ask before removing")


def _resources(args: argparse.Namespace, pattern: PatternType) -> list[ResourcePattern]:
    out = [ResourcePattern(ResourceType.TOPIC, n, pattern) for n in args.topic]
    out += [ResourcePattern(ResourceType.GROUP, n, pattern) for n in args.group]
    if args.cluster:
        out.append(ResourcePattern(ResourceType.CLUSTER, CLUSTER_NAME, pattern))
    for kind, names in (
        (ResourceType.TRANSACTIONAL_ID, args.transactional_id),
        (ResourceType.DELEGATION_TOKEN, args.delegation_token),
        (ResourceType.USER, args.user_principal),
    ):
        out += [ResourcePattern(kind, n, pattern) for n in names]
    return out


def _entries(
    principals: list[str], hosts: list[str], ops: set[Op], permission: AclPermissionType
) -> set[AccessControlEntry]:
    return {
        AccessControlEntry(p, h, op, permission)
        for p in principals
        for h in hosts or ["*"]
        for op in ops
    }


def _operations(args: argparse.Namespace) -> set[Op]:
    try:
        return {operation_from_name(o) for o in args.operation} or {Op.ALL}
    except AclError as exc:
        raise CliError(str(exc)) from None


NO_PRINCIPAL = (
    "You must specify one of: --allow-principal, --deny-principal when trying to add ACLs."
)
NO_RESOURCE = (
    "You must provide at least one resource: --topic <topic> or --cluster or --group <group> "
    "or --transactional-id <id> or --delegation-token <token> or --user-principal <principal>"
)
# --producer and --consumer: the operations each resource type gets
PRODUCER_OPS = {
    ResourceType.TOPIC: {Op.WRITE, Op.DESCRIBE, Op.CREATE},
    ResourceType.TRANSACTIONAL_ID: {Op.WRITE, Op.DESCRIBE},
}
CONSUMER_OPS = {ResourceType.TOPIC: {Op.READ, Op.DESCRIBE}, ResourceType.GROUP: {Op.READ}}
Plan = dict[ResourcePattern, set[AccessControlEntry]]


def _to_add(args: argparse.Namespace, pattern: PatternType) -> Plan:
    """Kafka's getResourceToAcls: the ACLs each resource gets."""
    if not args.allow_principal and not args.deny_principal:
        raise CliError(NO_PRINCIPAL)

    def entries(ops: set[Op]) -> set[AccessControlEntry]:
        allow = _entries(args.allow_principal, args.allow_host, ops, AclPermissionType.ALLOW)
        return allow | _entries(args.deny_principal, args.deny_host, ops, AclPermissionType.DENY)

    resources = _resources(args, pattern)
    if not (args.producer or args.consumer):
        if not resources:
            raise CliError(NO_RESOURCE)
        return {r: entries(_operations(args)) for r in resources}
    if args.consumer and not args.group:
        raise CliError("With --consumer you must specify a --group")
    out: Plan = {}
    tables = ([PRODUCER_OPS] if args.producer else []) + ([CONSUMER_OPS] if args.consumer else [])
    for table in tables:
        for r in resources:
            if r.resource_type in table:
                out.setdefault(r, set()).update(entries(table[r.resource_type]))
    if args.producer and args.idempotent:
        cluster = ResourcePattern(ResourceType.CLUSTER, CLUSTER_NAME, PatternType.LITERAL)
        out.setdefault(cluster, set()).update(entries({Op.IDEMPOTENT_WRITE}))
    return out


def _show(pattern: ResourcePattern, entries: list[AccessControlEntry]) -> str:
    lines = "\n".join(
        f"\t(principal={e.principal}, host={e.host}, operation={e.operation.name}, "
        f"permissionType={e.permission_type.name})"
        for e in entries
    )
    return f"`{pattern}`: \n {lines} \n"


async def _print_current(admin: AIOAdmin, filters: list[AclBindingFilter]) -> None:
    by_pattern: dict[ResourcePattern, list[AccessControlEntry]] = {}
    for f in filters:
        for b in await admin.describe_acls(f):
            by_pattern.setdefault(b.pattern, []).append(b.entry)
    for pattern, entries in by_pattern.items():
        print(f"Current ACLs for resource {_show(pattern, entries)}")


def _filters(args: argparse.Namespace, pattern: PatternType) -> list[AclBindingFilter]:
    resources = _resources(args, pattern)
    principals = args.principal or [None]
    if not resources:
        return [AclBindingFilter(pattern_type=pattern, principal=p) for p in principals]
    return [
        AclBindingFilter(r.resource_type, r.name, pattern, principal=p)
        for r in resources
        for p in principals
    ]


async def _add(admin: AIOAdmin, args: argparse.Namespace, pattern: PatternType) -> None:
    plan = _to_add(args, pattern)
    for resource, entries in plan.items():
        print(f"Adding ACLs for resource {_show(resource, sorted(entries, key=str))}")
        await admin.create_acls([AclBinding(resource, e) for e in entries])
    await _print_current(
        admin, [AclBindingFilter(r.resource_type, r.name, r.pattern_type) for r in plan]
    )


async def _remove(admin: AIOAdmin, args: argparse.Namespace, pattern: PatternType) -> None:
    resources = _resources(args, pattern)
    if not resources:
        raise CliError("You must provide at least one resource to remove ACLs from")
    principals = args.allow_principal or args.deny_principal
    if not args.force:
        print(f"Are you sure you want to delete ACLs for {len(resources)} resource(s)? (y/n)")
        if sys.stdin.readline().strip().lower() != "y":
            return
    filters = []
    for r in resources:
        if not principals:
            filters.append(AclBindingFilter(r.resource_type, r.name, r.pattern_type))
            continue
        filters += [AclBinding(r, e).to_filter() for e in _to_add(args, pattern).get(r, set())]
    await admin.delete_acls(filters)
    await _print_current(
        admin, [AclBindingFilter(r.resource_type, r.name, r.pattern_type) for r in resources]
    )


def run(args: argparse.Namespace) -> int:
    default = PatternType.ANY if args.list else PatternType.LITERAL
    pattern = PatternType[args.resource_pattern_type] if args.resource_pattern_type else default
    if not args.list and pattern in (PatternType.ANY, PatternType.MATCH):
        raise CliError(
            f"A '--resource-pattern-type' value of '{pattern.name}' is not valid when adding "
            "or removing ACLs."
        )

    async def work(admin: AIOAdmin) -> None:
        if args.add:
            await _add(admin, args, pattern)
        elif args.remove:
            await _remove(admin, args, pattern)
        else:
            await _print_current(admin, _filters(args, pattern))

    run_admin(client_config(args), work)
    return 0
