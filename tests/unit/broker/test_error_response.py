"""Every advertised API answers a failed request as Kafka's ``getErrorResponse`` does.

For each (api, version) the broker advertises, a request with two of every entity
(topics, partitions, groups, resources, ...) is encoded and decoded at that
version, answered by :func:`strom.broker.errors.error_response`, and the answer
encoded and decoded again. The answer must carry the error code at the top (when
the version has one) and on every entity Kafka mirrors, with the request's
identities (names, topic ids, partition indexes, keys) in order; APIs whose Kafka
error response mirrors nothing must list no entities.
"""

from __future__ import annotations

import sys
import typing
import uuid
from typing import Any

import pytest

from strom.broker.errors import error_response
from strom.protocol.api_versions import BROKER_API_VERSIONS, ApiKey
from strom.protocol.generated import request_class, response_class
from strom.protocol.message import fields, is_message
from strom.protocol.wire import ZERO_UUID, Reader, Writer

CODE = 13  # NETWORK_EXCEPTION: any code will do
CASES = [(k, v) for k, (lo, hi) in sorted(BROKER_API_VERSIONS.items()) for v in range(lo, hi + 1)]

# What Kafka 4.0's getErrorResponse mirrors: "request path -> response path", where a
# path is list[identity].list[identity]...; "[]" is a list of scalars (the identity is the
# element); "[*]" a list flattened away; "a=b" maps request identity a to response b.
MIRRORS: dict[ApiKey, list[str]] = {
    ApiKey.PRODUCE: ["topic_data[name].partition_data[index] -> responses.partition_responses"],
    ApiKey.FETCH: [
        "topics[topic,topic_id].partitions[partition=partition_index] -> responses.partitions"
    ],
    ApiKey.LIST_OFFSETS: ["topics[name].partitions[partition_index] -> topics.partitions"],
    ApiKey.METADATA: ["topics[name,topic_id] -> topics"],
    ApiKey.OFFSET_COMMIT: ["topics[name].partitions[partition_index] -> topics.partitions"],
    ApiKey.OFFSET_FETCH: [
        "topics[name].partition_indexes[=partition_index] -> topics.partitions",
        "groups[group_id] -> groups",
    ],
    ApiKey.FIND_COORDINATOR: ["coordinator_keys[=key] -> coordinators"],
    ApiKey.DESCRIBE_GROUPS: ["groups[=group_id] -> groups"],
    ApiKey.CREATE_TOPICS: ["topics[name] -> topics"],
    ApiKey.DELETE_TOPICS: ["topic_names[=name] -> responses", "topics[name,topic_id] -> responses"],
    ApiKey.DELETE_RECORDS: ["topics[name].partitions[partition_index] -> topics.partitions"],
    ApiKey.OFFSET_FOR_LEADER_EPOCH: ["topics[topic].partitions[partition] -> topics.partitions"],
    ApiKey.ADD_PARTITIONS_TO_TXN: [
        "v3_and_below_topics[name].partitions[=partition_index]"
        " -> results_by_topic_v3_and_below.results_by_partition"
    ],
    ApiKey.WRITE_TXN_MARKERS: [
        "markers[producer_id].topics[name].partition_indexes[=partition_index]"
        " -> markers.topics.partitions"
    ],
    ApiKey.TXN_OFFSET_COMMIT: ["topics[name].partitions[partition_index] -> topics.partitions"],
    ApiKey.CREATE_ACLS: ["creations[] -> results"],
    ApiKey.DELETE_ACLS: ["filters[] -> filter_results"],
    ApiKey.DESCRIBE_CONFIGS: ["resources[resource_type,resource_name] -> results"],
    ApiKey.ALTER_CONFIGS: ["resources[resource_type,resource_name] -> responses"],
    ApiKey.INCREMENTAL_ALTER_CONFIGS: ["resources[resource_type,resource_name] -> responses"],
    ApiKey.ALTER_REPLICA_LOG_DIRS: [
        "dirs[*].topics[name=topic_name].partitions[=partition_index] -> results.partitions"
    ],
    ApiKey.CREATE_PARTITIONS: ["topics[name] -> results"],
    ApiKey.DELETE_GROUPS: ["groups_names[=group_id] -> results"],
    ApiKey.ELECT_LEADERS: [
        "topic_partitions[topic].partitions[=partition_id]"
        " -> replica_election_results.partition_result"
    ],
    ApiKey.ALTER_PARTITION_REASSIGNMENTS: [
        "topics[name].partitions[partition_index] -> responses.partitions"
    ],
    ApiKey.LIST_PARTITION_REASSIGNMENTS: [
        "topics[name].partition_indexes[=partition_index] -> topics.partitions"
    ],
    ApiKey.DESCRIBE_PRODUCERS: [
        "topics[name].partition_indexes[=partition_index] -> topics.partitions"
    ],
    ApiKey.DESCRIBE_TRANSACTIONS: ["transactional_ids[=transactional_id] -> transaction_states"],
    ApiKey.DESCRIBE_TOPIC_PARTITIONS: ["topics[name] -> topics"],
}
# Kafka answers these with "unknown" values rather than zeros.
UNKNOWN = {
    ApiKey.PRODUCE: ("responses.partition_responses", {"base_offset": -1, "log_start_offset": -1}),
    ApiKey.FETCH: ("responses.partitions", {"high_watermark": -1, "log_start_offset": -1}),
    ApiKey.LIST_OFFSETS: ("topics.partitions", {"offset": -1, "timestamp": -1}),
    ApiKey.OFFSET_FETCH: ("topics.partitions", {"committed_offset": -1}),
    ApiKey.FIND_COORDINATOR: ("coordinators", {"node_id": -1, "port": -1}),
    ApiKey.DELETE_RECORDS: ("topics.partitions", {"low_watermark": -1}),
    ApiKey.OFFSET_FOR_LEADER_EPOCH: ("topics.partitions", {"leader_epoch": -1, "end_offset": -1}),
    ApiKey.INIT_PRODUCER_ID: ("", {"producer_id": -1, "producer_epoch": -1}),
    ApiKey.JOIN_GROUP: ("", {"generation_id": -1}),
}


# -- building a request with two of everything ----------------------------------------------


class _Values:
    def __init__(self) -> None:
        self.n = 0

    def next(self) -> int:
        self.n += 1
        return self.n


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls, globalns=vars(sys.modules[cls.__module__]))


def _scalar(hint: Any, name: str, values: _Values, default: Any = None) -> Any:
    args = set(typing.get_args(hint)) or {hint}
    if default == ZERO_UUID:
        return uuid.UUID(int=values.next()).bytes
    if str in args:
        return f"{name}-{values.next()}"
    if bool in args:
        return False
    if int in args:
        return values.next()
    if float in args:
        return 1.5
    return b"x"  # records, raw bytes


def populate(cls: type, values: _Values) -> Any:
    obj = cls()
    for name in fields(cls):
        hint = _hints(cls)[name]
        if typing.get_origin(hint) is typing.ClassVar:
            continue
        lists = [a for a in (*typing.get_args(hint), hint) if typing.get_origin(a) is list]
        if lists:
            (elem,) = typing.get_args(lists[0])
            if is_message(elem):
                setattr(obj, name, [populate(typing.cast(type, elem), values) for _ in "ab"])
            else:
                setattr(obj, name, [_scalar(elem, name, values) for _ in "ab"])
        elif structs := [a for a in (*typing.get_args(hint), hint) if is_message(a)]:
            setattr(obj, name, populate(typing.cast(type, structs[0]), values))
        else:
            setattr(obj, name, _scalar(hint, name, values, getattr(obj, name)))
    return obj


def round_trip(obj: Any, version: int) -> Any:
    w = Writer()
    obj.encode(w, version)
    return type(obj).decode(Reader(w.getvalue()), version)


# -- reading paths ---------------------------------------------------------------------------


def parse_request_path(path: str) -> list[tuple[str, list[tuple[str, str]] | None]]:
    """'a[x,y=z].b[=w]' -> [("a", [("x","x"),("y","z")]), ("b", [("","w")])]; [*] -> None."""
    out: list[tuple[str, list[tuple[str, str]] | None]] = []
    for seg in path.split("."):
        attr, _, rest = seg.partition("[")
        inner = rest.rstrip("]")
        if inner == "*":
            out.append((attr, None))
            continue
        pairs = []
        for ident in filter(None, inner.split(",")):
            src, eq, dst = ident.partition("=")
            pairs.append((src, dst if eq else src))
        if inner == "":
            pairs = [("#", "#")]  # identity: the position
        out.append((attr, pairs))
    return out


def request_entities(req: Any, segs: list[Any], prefix: tuple[Any, ...] = ()) -> list[Any]:
    if not segs:
        return [prefix]
    (attr, pairs), rest = segs[0], segs[1:]
    out: list[Any] = []
    for pos, item in enumerate(getattr(req, attr) or []):
        if pairs is None:  # flattened
            out += request_entities(item, rest, prefix)
            continue
        ident = tuple(
            pos if src == "#" else item if src == "" else getattr(item, src) for src, _ in pairs
        )
        out += request_entities(item, rest, (*prefix, ident))
    return out


def response_entities(
    resp: Any, attrs: list[str], pairs: list[list[tuple[str, str]]], prefix: tuple[Any, ...] = ()
) -> list[tuple[tuple[Any, ...], Any]]:
    """(identity path, entity) of each entity at the end of ``attrs``; every entity on the
    way must carry the error code when it has one."""
    if not attrs:
        return [(prefix, resp)]
    out = []
    for pos, item in enumerate(getattr(resp, attrs[0]) or []):
        if hasattr(item, "error_code"):
            assert item.error_code == CODE, f"{attrs[0]} entry {pos}: {item}"
        ident = tuple(pos if dst == "#" else getattr(item, dst) for _, dst in pairs[0])
        out += response_entities(item, attrs[1:], pairs[1:], (*prefix, ident))
    return out


def entity_lists(obj: Any) -> list[str]:
    """The non-empty lists of structs in ``obj`` (top level)."""
    return [
        name
        for name in fields(obj)
        if isinstance(getattr(obj, name), list)
        and getattr(obj, name)
        and is_message(type(getattr(obj, name)[0]))
    ]


def has_field_in_version(cls: type, name: str, version: int) -> bool:
    obj = cls()
    setattr(obj, name, CODE)
    return bool(getattr(round_trip(obj, version), name) == CODE)


# -- the tests -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("api_key", "version"), CASES, ids=[f"{ApiKey(k).name}-v{v}" for k, v in CASES]
)
def test_error_response_mirrors_the_request(api_key: int, version: int) -> None:
    request = round_trip(populate(request_class(api_key), _Values()), version)
    resp_cls = response_class(api_key)
    answer = error_response(resp_cls, request, CODE)
    resp = round_trip(answer, version)
    names = set(fields(resp_cls))
    if "error_code" in names and has_field_in_version(resp_cls, "error_code", version):
        assert resp.error_code == CODE
    mirrored: set[str] = set()
    by_target: dict[str, list[tuple[Any, Any]]] = {}
    for mirror in MIRRORS.get(ApiKey(api_key), []):  # several may fill one response list
        req_path, resp_path = (p.strip() for p in mirror.split("->"))
        segs = parse_request_path(req_path)
        by_target.setdefault(resp_path, []).append((segs, request_entities(request, segs)))
    for resp_path, sources in by_target.items():
        expected = [ident for _, found in sources for ident in found]
        (segs, _) = next((x for x in sources if x[1]), sources[0])
        attrs = resp_path.split(".")
        got = response_entities(resp, attrs, [p for _, p in segs if p is not None])
        assert [ident for ident, _ in got] == expected, resp_path
        if expected:
            mirrored.add(attrs[0])
    assert set(entity_lists(resp)) <= mirrored, f"entities Kafka does not answer: {resp}"
    where, unknown = UNKNOWN.get(ApiKey(api_key), ("", {}))
    for target in [answer] if not where else walk(answer, where.split(".")):
        assert {k: getattr(target, k) for k in unknown} == unknown, target


def walk(obj: Any, attrs: list[str]) -> list[Any]:
    if not attrs:
        return [obj]
    return [x for item in getattr(obj, attrs[0]) or [] for x in walk(item, attrs[1:])]
