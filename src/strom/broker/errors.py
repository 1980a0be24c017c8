"""Error responses for any request: Kafka's ``getErrorResponse``, from one table.

The error code goes on the response's top-level ``error_code`` (when it has one)
and on every entity that Kafka 4.0's ``getErrorResponse`` mirrors from the
request, with the request's identities (names, topic ids, partition indexes,
group ids, keys) in request order, so that a client matching answers to what it
asked finds every entity answered. :data:`_MIRRORS` says, per API, which request
list becomes which response list and which fields are copied; a list of scalars
(partition indexes, group ids, coordinator keys) becomes one entity per value. An
API absent from the table is answered at the top level only, as Kafka does
(JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetDelete, DescribeLogDirs, ...).
Numbers Kafka answers as unknown (offsets, epochs, node ids, ports) are -1.
"""

from __future__ import annotations

import sys
import typing
from functools import cache
from typing import Any, Final

from strom.protocol.api_versions import ApiKey
from strom.protocol.message import fields

# (request field, or None for the element of a list of scalars; response field)
Identity = tuple[tuple[str | None, str], ...]
# (request list, response list or None to flatten the request list away, identity)
Step = tuple[str, str | None, Identity]

_NAME: Final[Identity] = (("name", "name"),)
_INDEX: Final[Identity] = ((None, "partition_index"),)
_TOPICS_PARTITIONS: Final[tuple[Step, ...]] = (
    ("topics", "topics", _NAME),
    ("partitions", "partitions", (("partition_index", "partition_index"),)),
)
_TOPICS_INDEXES: Final[tuple[Step, ...]] = (
    ("topics", "topics", _NAME),
    ("partition_indexes", "partitions", _INDEX),
)
_RESOURCE: Final[Identity] = (
    ("resource_type", "resource_type"),
    ("resource_name", "resource_name"),
)

_MIRRORS: Final[dict[int, tuple[tuple[Step, ...], ...]]] = {
    ApiKey.PRODUCE: (
        (
            ("topic_data", "responses", _NAME),
            ("partition_data", "partition_responses", (("index", "index"),)),
        ),
    ),
    ApiKey.FETCH: (
        (
            ("topics", "responses", (("topic", "topic"), ("topic_id", "topic_id"))),
            ("partitions", "partitions", (("partition", "partition_index"),)),
        ),
    ),
    ApiKey.LIST_OFFSETS: (_TOPICS_PARTITIONS,),
    ApiKey.METADATA: ((("topics", "topics", (*_NAME, ("topic_id", "topic_id"))),),),
    ApiKey.OFFSET_COMMIT: (_TOPICS_PARTITIONS,),
    ApiKey.OFFSET_FETCH: (_TOPICS_INDEXES, (("groups", "groups", (("group_id", "group_id"),)),)),
    ApiKey.FIND_COORDINATOR: ((("coordinator_keys", "coordinators", ((None, "key"),)),),),
    ApiKey.DESCRIBE_GROUPS: ((("groups", "groups", ((None, "group_id"),)),),),
    ApiKey.CREATE_TOPICS: ((("topics", "topics", _NAME),),),
    ApiKey.DELETE_TOPICS: (
        (("topic_names", "responses", ((None, "name"),)),),
        (("topics", "responses", (*_NAME, ("topic_id", "topic_id"))),),
    ),
    ApiKey.DELETE_RECORDS: (_TOPICS_PARTITIONS,),
    ApiKey.OFFSET_FOR_LEADER_EPOCH: (
        (
            ("topics", "topics", (("topic", "topic"),)),
            ("partitions", "partitions", (("partition", "partition"),)),
        ),
    ),
    ApiKey.ADD_PARTITIONS_TO_TXN: (  # v4+ (batched) answers at the top level only
        (
            ("v3_and_below_topics", "results_by_topic_v3_and_below", _NAME),
            ("partitions", "results_by_partition", _INDEX),
        ),
    ),
    ApiKey.WRITE_TXN_MARKERS: (
        (
            ("markers", "markers", (("producer_id", "producer_id"),)),
            ("topics", "topics", _NAME),
            ("partition_indexes", "partitions", _INDEX),
        ),
    ),
    ApiKey.TXN_OFFSET_COMMIT: (_TOPICS_PARTITIONS,),
    ApiKey.CREATE_ACLS: ((("creations", "results", ()),),),
    ApiKey.DELETE_ACLS: ((("filters", "filter_results", ()),),),
    ApiKey.DESCRIBE_CONFIGS: ((("resources", "results", _RESOURCE),),),
    ApiKey.ALTER_CONFIGS: ((("resources", "responses", _RESOURCE),),),
    ApiKey.INCREMENTAL_ALTER_CONFIGS: ((("resources", "responses", _RESOURCE),),),
    ApiKey.ALTER_REPLICA_LOG_DIRS: (
        (
            ("dirs", None, ()),
            ("topics", "results", (("name", "topic_name"),)),
            ("partitions", "partitions", _INDEX),
        ),
    ),
    ApiKey.CREATE_PARTITIONS: ((("topics", "results", _NAME),),),
    ApiKey.DELETE_GROUPS: ((("groups_names", "results", ((None, "group_id"),)),),),
    ApiKey.ELECT_LEADERS: (
        (
            ("topic_partitions", "replica_election_results", (("topic", "topic"),)),
            ("partitions", "partition_result", ((None, "partition_id"),)),
        ),
    ),
    ApiKey.ALTER_PARTITION_REASSIGNMENTS: (
        (
            ("topics", "responses", _NAME),
            ("partitions", "partitions", (("partition_index", "partition_index"),)),
        ),
    ),
    ApiKey.LIST_PARTITION_REASSIGNMENTS: (_TOPICS_INDEXES,),
    ApiKey.DESCRIBE_PRODUCERS: (_TOPICS_INDEXES,),
    ApiKey.DESCRIBE_TRANSACTIONS: (
        (("transactional_ids", "transaction_states", ((None, "transactional_id"),)),),
    ),
    ApiKey.DESCRIBE_TOPIC_PARTITIONS: ((("topics", "topics", _NAME),),),
}
# Request fields copied to the top of the response.
_TOP: Final[dict[int, Identity]] = {ApiKey.FETCH: (("session_id", "session_id"),)}
# Fields Kafka answers as unknown in an error response.
_UNKNOWN: Final = frozenset(
    {
        "base_offset",
        "committed_leader_epoch",
        "committed_offset",
        "controller_id",
        "end_offset",
        "generation_id",
        "high_watermark",
        "last_stable_offset",
        "leader_epoch",
        "log_append_time_ms",
        "log_start_offset",
        "low_watermark",
        "node_id",
        "num_partitions",
        "offset",
        "port",
        "producer_epoch",
        "producer_id",
        "replication_factor",
        "timestamp",
    }
)


@cache
def _element_type(cls: type, attr: str) -> type:
    hints = typing.get_type_hints(cls, globalns=vars(sys.modules[cls.__module__]))
    hint = hints[attr]
    lists = [a for a in (*typing.get_args(hint), hint) if typing.get_origin(a) is list]
    (elem,) = typing.get_args(lists[0])
    return typing.cast(type, elem)


def _stamp(obj: Any, code: int) -> None:
    """The error code and the unknown values on one response entity."""
    for name in fields(obj):
        if name == "error_code":
            obj.error_code = code
        elif name in _UNKNOWN and isinstance(getattr(obj, name), int):
            setattr(obj, name, -1)
        elif name == "records":
            obj.records = b""


def _mirror(req: Any, resp: Any, steps: tuple[Step, ...], code: int) -> None:
    (req_list, resp_list, identity), rest = steps[0], steps[1:]
    for item in getattr(req, req_list, None) or []:
        if resp_list is None:  # flattened: its entities go straight into ``resp``
            _mirror(item, resp, rest, code)
            continue
        resp_cls: type = type(resp)
        child = _element_type(resp_cls, resp_list)()
        _stamp(child, code)
        for src, dst in identity:
            setattr(child, dst, item if src is None else getattr(item, src))
        getattr(resp, resp_list).append(child)
        if rest:
            _mirror(item, child, rest, code)


def error_response(response_cls: type, request: Any, code: int) -> Any:
    """``response_cls`` answering ``request`` with error ``code`` (see the module)."""
    resp = response_cls()
    _stamp(resp, code)
    api_key = response_cls.API_KEY  # type: ignore[attr-defined]
    for src, dst in _TOP.get(api_key, ()):
        setattr(resp, dst, getattr(request, src if src is not None else dst))
    for steps in _MIRRORS.get(api_key, ()):
        _mirror(request, resp, steps, code)
    return resp
