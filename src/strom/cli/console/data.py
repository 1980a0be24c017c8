"""What the console shows, gathered with strom's asyncio admin client and reader.

Each page costs a fixed number of requests, whatever the number of partitions: one
Metadata for the topics, one DescribeLogDirs per broker for sizes, one ListOffsets per
leader for offsets, one DescribeGroups and OffsetFetch per coordinator for groups, one
DescribeAcls for the ACLs.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from strom.cli.common import CliError
from strom.client.admin_types import (
    ConfigEntry,
    ConfigResource,
    ConfigResourceType,
    OffsetSpec,
    TopicDescription,
)
from strom.client.aio.admin import AIOAdmin
from strom.client.aio.reader import AIOPartitionReader
from strom.client.group_types import ConsumerGroupLag
from strom.common.acl import (
    CLUSTER_NAME,
    AccessControlEntry,
    AclBinding,
    AclBindingFilter,
    ResourcePattern,
    ResourceType,
    operation_from_name,
    pattern_type_from_name,
    permission_from_name,
    resource_type_from_name,
    validate_binding,
)
from strom.common.types import TopicPartition
from strom.protocol.errors import ErrorCode, KafkaError

MAX_MESSAGES = 500  # a page of the message browser at most
SEARCH_RANGE = 10_000  # records a search walks at most


@dataclass(frozen=True, slots=True)
class TopicRow:
    name: str
    internal: bool
    partitions: int
    replication_factor: int
    under_replicated: int
    size_bytes: int


@dataclass(frozen=True, slots=True)
class PartitionRow:
    partition: int
    leader: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    log_start_offset: int
    log_end_offset: int
    size_bytes: int


@dataclass(frozen=True, slots=True)
class TopicDetail:
    description: TopicDescription
    partitions: list[PartitionRow]
    configs: list[ConfigEntry]


@dataclass(frozen=True, slots=True)
class Message:
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]


@dataclass(frozen=True, slots=True)
class GroupRow:
    group_id: str
    state: str
    protocol_type: str
    members: int
    lag: int


async def sizes(admin: AIOAdmin) -> dict[TopicPartition, int]:
    """The size of each partition (its largest replica), from DescribeLogDirs."""
    out: dict[TopicPartition, int] = {}
    for dirs in (await admin.describe_log_dirs()).values():
        for d in dirs:
            for tp, info in d.replicas.items():
                out[tp] = max(out.get(tp, 0), info.size)
    return out


async def topics(admin: AIOAdmin) -> list[TopicRow]:
    described = await admin.describe_topics(None)
    by_partition = await sizes(admin)
    rows = []
    for name, d in sorted(described.items()):
        parts = d.partitions
        rows.append(
            TopicRow(
                name,
                d.is_internal,
                len(parts),
                max((len(p.replicas) for p in parts), default=0),
                sum(1 for p in parts if len(p.isr) < len(p.replicas)),
                sum(by_partition.get(TopicPartition(name, p.partition), 0) for p in parts),
            )
        )
    return rows


async def topic_detail(admin: AIOAdmin, name: str) -> TopicDetail:
    description = (await admin.describe_topics([name]))[name]
    tps = [TopicPartition(name, p.partition) for p in description.partitions]
    starts = await _offsets(admin, tps, OffsetSpec.EARLIEST)
    ends = await _offsets(admin, tps, OffsetSpec.LATEST)
    by_partition = await sizes(admin)
    rows = [
        PartitionRow(
            p.partition,
            p.leader,
            p.replicas,
            p.isr,
            starts.get(tp, -1),
            ends.get(tp, -1),
            by_partition.get(tp, 0),
        )
        for p, tp in zip(description.partitions, tps, strict=True)
    ]
    resource = ConfigResource(ConfigResourceType.TOPIC, name)
    configs = (await admin.describe_configs([resource]))[resource]
    return TopicDetail(description, rows, sorted(configs, key=lambda c: c.name))


async def _offsets(
    admin: AIOAdmin, tps: Iterable[TopicPartition], spec: int
) -> dict[TopicPartition, int]:
    with_leader = [tp for tp in tps if admin.client.cluster.leader_for(tp) is not None]
    found = await admin.list_offsets(dict.fromkeys(with_leader, int(spec)))
    return {tp: r.offset for tp, r in found.items()}


async def offset_for_time(admin: AIOAdmin, tp: TopicPartition, timestamp_ms: int) -> int:
    """The first offset at or after ``timestamp_ms`` (the log end when none)."""
    found = (await admin.list_offsets({tp: timestamp_ms}))[tp].offset
    if found >= 0:
        return found
    return (await _offsets(admin, [tp], OffsetSpec.LATEST))[tp]


async def messages(
    reader: AIOPartitionReader,
    tp: TopicPartition,
    offset: int,
    limit: int,
    search: str = "",
) -> list[Message]:
    """Up to ``limit`` records of ``tp`` from ``offset``; with ``search``, only those whose
    key, value or a header contains it, among the next SEARCH_RANGE records."""
    limit = max(1, min(limit, MAX_MESSAGES))
    needle = search.encode() if search else b""
    walk = SEARCH_RANGE if needle else limit
    out: list[Message] = []
    position, seen = offset, 0
    while len(out) < limit and seen < walk:
        fetched = await reader.fetch(tp.topic, tp.partition, position, max_wait_ms=0)
        if not fetched.records:
            break
        for r in fetched.records:
            if r.offset < position:
                continue
            seen += 1
            message = Message(tp.partition, r.offset, r.timestamp, r.key, r.value, r.headers)
            if not needle or _contains(message, needle):
                out.append(message)
            if len(out) >= limit or seen >= walk:
                break
        if fetched.next_offset <= position:
            break
        position = fetched.next_offset
    return out


def _contains(m: Message, needle: bytes) -> bool:
    return any(
        needle in part for part in (m.key or b"", m.value or b"", *(v or b"" for _, v in m.headers))
    )


def show_bytes(data: bytes | None) -> tuple[str, str]:
    """(kind, text) for a key or value: ``null``; ``json`` (pretty-printed); ``text``;
    ``hex`` for bytes that are not UTF-8."""
    if data is None:
        return "null", "null"
    try:
        text = data.decode()
    except UnicodeDecodeError:
        return "hex", data.hex(" ")
    stripped = text.strip()
    if stripped[:1] in ("{", "["):
        try:
            return "json", json.dumps(json.loads(stripped), indent=2, ensure_ascii=False)
        except ValueError:
            pass
    return "text", text


async def groups(admin: AIOAdmin) -> list[GroupRow]:
    listed = await admin.list_groups()
    if not listed:
        return []
    ids = sorted(g.group_id for g in listed)
    described = await admin.describe_groups(ids)
    committed = await admin.list_groups_offsets(dict.fromkeys(ids))
    tps = {tp for offsets in committed.values() for tp in offsets}
    ends = await admin.log_end_offsets(tps)
    rows = []
    for group_id in ids:
        d = described[group_id]
        lag = sum(
            max(ends[tp] - om.offset, 0)
            for tp, om in committed.get(group_id, {}).items()
            if tp in ends
        )
        rows.append(GroupRow(group_id, d.state, d.protocol_type, len(d.members), lag))
    return rows


async def group_lag(admin: AIOAdmin, group_id: str) -> ConsumerGroupLag:
    return await admin.consumer_group_lag(group_id)


# -- ACLs ------------------------------------------------------------------------------------

NO_AUTHORIZER = (
    "This cluster keeps no ACLs: its brokers have no authorizer (they answer "
    "SECURITY_DISABLED). Set authorizer.class.name on the brokers to use ACLs."
)
NOT_ALLOWED = (
    "The console's principal may not {what} ACLs (CLUSTER_AUTHORIZATION_FAILED): it needs "
    "{operation} on the cluster resource, from an ACL or super.users."
)


class AclsUnavailable(CliError):
    """The cluster will not show or change ACLs: no authorizer, or not for this principal."""


@contextlib.contextmanager
def _acl_errors(what: str, operation: str) -> Iterator[None]:
    """SECURITY_DISABLED and CLUSTER_AUTHORIZATION_FAILED as an AclsUnavailable that says so."""
    try:
        yield
    except KafkaError as exc:
        if exc.code == ErrorCode.SECURITY_DISABLED:
            raise AclsUnavailable(NO_AUTHORIZER) from None
        if exc.code == ErrorCode.CLUSTER_AUTHORIZATION_FAILED:
            raise AclsUnavailable(NOT_ALLOWED.format(what=what, operation=operation)) from None
        raise


async def acls(
    admin: AIOAdmin,
    principal: str = "",
    resource: str = "",
    resource_type: ResourceType = ResourceType.ANY,
) -> list[AclBinding]:
    """The cluster's ACL bindings of ``resource_type`` whose principal and resource name
    contain ``principal`` and ``resource`` (case aside), by resource then principal."""
    with _acl_errors("describe", "Describe"):
        found = await admin.describe_acls(AclBindingFilter(resource_type))
    who, where = principal.strip().lower(), resource.strip().lower()
    return sorted(
        (b for b in found if who in b.entry.principal.lower() and where in b.pattern.name.lower()),
        key=lambda b: (b.pattern.resource_type, b.pattern.name, b.pattern.pattern_type,
                       b.entry.principal, b.entry.host, b.entry.operation,
                       b.entry.permission_type),
    )  # fmt: skip


def acl_binding(form: Mapping[str, str]) -> AclBinding:
    """The binding an ACL form names (fields as the ACL page's forms send them, Kafka's
    names: Topic, Read, Allow, prefixed); an AclError (a ValueError) says what is wrong.
    The cluster resource's name may be left out."""
    kind = resource_type_from_name(form.get("resource_type", ""))
    name = form.get("name", "").strip()
    binding = AclBinding(
        ResourcePattern(
            kind,
            name or (CLUSTER_NAME if kind == ResourceType.CLUSTER else ""),
            pattern_type_from_name(form.get("pattern_type", "")),
        ),
        AccessControlEntry(
            form.get("principal", "").strip(),
            form.get("host", "").strip() or "*",
            operation_from_name(form.get("operation", "")),
            permission_from_name(form.get("permission_type", "")),
        ),
    )
    validate_binding(binding)
    return binding


async def create_acl(admin: AIOAdmin, binding: AclBinding) -> None:
    with _acl_errors("create", "Alter"):
        await admin.create_acls([binding])


async def delete_acl(admin: AIOAdmin, binding: AclBinding) -> int:
    """DeleteAcls with the filter that matches ``binding`` alone: how many it deleted."""
    with _acl_errors("delete", "Alter"):
        deleted = await admin.delete_acls([binding.to_filter()])
    return sum(len(d) for d in deleted)
