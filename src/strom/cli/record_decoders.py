"""dump-log's ``--offsets-decoder`` and ``--transaction-log-decoder``: records of
``__consumer_offsets`` and ``__transaction_state`` as the JSON Kafka's
DumpLogSegments prints (CoordinatorRecordMessageParser)::

    key: {"type":"1","data":{"group":"g","topic":"t","partition":0}}
    payload: {"version":"3","data":{"offset":5,"leaderEpoch":-1,...}}

Fields appear in schema order and only in the versions that have them; a
tombstone's payload is ``<DELETE>``; bytes are base64. A record that does not
decode prints "Error at offset N, skipping. ..." as its key.
"""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Callable
from typing import Any

from strom.cli.common import CliError
from strom.protocol import consumer_group_records as cg
from strom.protocol import group_records as group
from strom.protocol import txn_log_records as txn
from strom.protocol.errors import DecodeError
from strom.protocol.generated.consumer_protocol_assignment import ConsumerProtocolAssignment
from strom.protocol.generated.consumer_protocol_subscription import (
    ConsumerProtocolSubscription,
)
from strom.protocol.records import Record
from strom.protocol.wire import Reader

Parsed = tuple[str | None, str | None]  # (key text, payload text)
Decoder = Callable[[Record], Parsed]


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode()


def _version(data: bytes) -> int:
    if len(data) < 2:
        raise DecodeError("a record key or value shorter than its version")
    return int(struct.unpack_from(">h", data)[0])


def _topic_partitions(items: list[Any]) -> list[dict[str, Any]]:
    return [{"topic": tp.topic, "partitions": list(tp.partitions)} for tp in items]


def subscription_json(raw: bytes) -> Any:
    """A ConsumerProtocolSubscription as JSON, else its bytes as base64 (as Kafka keeps
    the bytes when they do not parse)."""
    try:
        r = Reader(raw)
        version = r.int16()
        s = ConsumerProtocolSubscription.decode(r, version)
    except DecodeError:
        return _b64(raw)
    out: dict[str, Any] = {"topics": list(s.topics), "userData": _b64(s.user_data)}
    if version >= 1:
        out["ownedPartitions"] = _topic_partitions(s.owned_partitions)
    if version >= 2:
        out["generationId"] = s.generation_id
    if version >= 3:
        out["rackId"] = s.rack_id
    return out


def assignment_json(raw: bytes) -> Any:
    """A ConsumerProtocolAssignment as JSON, else base64."""
    try:
        r = Reader(raw)
        a = ConsumerProtocolAssignment.decode(r, r.int16())
    except DecodeError:
        return _b64(raw)
    return {
        "assignedPartitions": _topic_partitions(a.assigned_partitions),
        "userData": _b64(a.user_data),
    }


def _offset_value(data: bytes) -> dict[str, Any]:
    version = _version(data)
    v = group.decode_offset_commit_value(data)
    out: dict[str, Any] = {"offset": v.offset}
    if version >= 3:
        out["leaderEpoch"] = v.leader_epoch
    out["metadata"] = v.metadata
    out["commitTimestamp"] = v.commit_timestamp
    if version == 1:
        out["expireTimestamp"] = v.expire_timestamp
    return out


def _member(m: group.MemberMetadataValue, version: int, consumer: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"memberId": m.member_id}
    if version >= 3:
        out["groupInstanceId"] = m.group_instance_id
    out["clientId"] = m.client_id
    out["clientHost"] = m.client_host
    if version >= 1:
        out["rebalanceTimeout"] = m.rebalance_timeout
    out["sessionTimeout"] = m.session_timeout
    out["subscription"] = subscription_json(m.subscription) if consumer else _b64(m.subscription)
    out["assignment"] = assignment_json(m.assignment) if consumer else _b64(m.assignment)
    return out


def _group_value(data: bytes) -> dict[str, Any]:
    version = _version(data)
    v = group.decode_group_metadata_value(data)
    out: dict[str, Any] = {
        "protocolType": v.protocol_type,
        "generation": v.generation,
        "protocol": v.protocol,
        "leader": v.leader,
    }
    if version >= 2:
        out["currentStateTimestamp"] = v.current_state_timestamp
    consumer = v.protocol_type == "consumer"
    out["members"] = [_member(m, version, consumer) for m in v.members]
    return out


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word.capitalize() for word in rest)


def _uuid(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _topic_partitions_by_id(items: cg.TopicPartitions) -> list[dict[str, Any]]:
    return [{"topicId": _uuid(t), "partitions": list(ps)} for t, ps in items]


def _as_json(value: Any) -> Any:
    """A consumer group record value (a dataclass) as Kafka's JSON: camelCase fields,
    topic ids as Kafka prints Uuids, bytes as base64."""
    out: dict[str, Any] = {}
    for name in value.__slots__:
        v = getattr(value, name)
        if name in ("assigned_partitions", "partitions_pending_revocation", "topic_partitions"):
            v = _topic_partitions_by_id(v)
        elif name == "topics" and v and not isinstance(v[0], str):
            v = [_as_json(t) for t in v]
        elif name == "topic_id":
            v = _uuid(v)
        elif name == "partition_racks":
            name, v = "partition_metadata", [{"partition": p, "racks": list(r)} for p, r in v]
        elif name == "classic_member_metadata" and v is not None:
            protocols = [{"name": n, "metadata": _b64(m)} for n, m in v.supported_protocols]
            v = {"sessionTimeoutMs": v.session_timeout_ms, "supportedProtocols": protocols}
        elif isinstance(v, tuple):
            v = list(v)
        out[_camel(name)] = v
    return out


def _consumer_group_record(decoded: cg.ConsumerGroupKey, value: bytes | None) -> Parsed:
    data = {"groupId": decoded.group}
    if decoded.record_type == cg.REGULAR_EXPRESSION:
        data["regularExpression"] = decoded.member_id
    elif decoded.member_id:
        data["memberId"] = decoded.member_id
    payload = None
    if value is not None:
        parsed = cg.decode_value(decoded.record_type, value)
        payload = {"version": str(_version(value)), "data": _as_json(parsed)}
    return _json({"type": str(decoded.record_type), "data": data}), _payload(payload)


def _offsets(key: bytes, value: bytes | None) -> Parsed:
    decoded = group.decode_key(key)
    key_type = _version(key)
    if decoded is None:
        raise _Unknown(key_type)
    if isinstance(decoded, cg.ConsumerGroupKey):
        return _consumer_group_record(decoded, value)
    if isinstance(decoded, group.OffsetCommitKey):
        data: dict[str, Any] = {
            "group": decoded.group,
            "topic": decoded.topic,
            "partition": decoded.partition,
        }
        render = _offset_value
    else:
        data = {"group": decoded.group}
        render = _group_value
    payload = None if value is None else {"version": str(_version(value)), "data": render(value)}
    return _json({"type": str(key_type), "data": data}), _payload(payload)


def _transactions(key: bytes, value: bytes | None) -> Parsed:
    key_type = _version(key)
    if key_type != txn.KEY_VERSION:
        raise _Unknown(key_type)
    data = {"transactionalId": txn.decode_key(key)}
    payload = None if value is None else {"version": str(_version(value)), "data": _txn(value)}
    return _json({"type": str(key_type), "data": data}), _payload(payload)


def _txn(data: bytes) -> dict[str, Any]:
    v = txn.decode_value(data)
    out: dict[str, Any] = {"producerId": v.producer_id}
    if v.version >= 1 and v.previous_producer_id != -1:
        out["previousProducerId"] = v.previous_producer_id
    if v.version >= 1 and v.next_producer_id != -1:
        out["nextProducerId"] = v.next_producer_id
    out["producerEpoch"] = v.producer_epoch
    out["transactionTimeoutMs"] = v.transaction_timeout_ms
    out["transactionStatus"] = v.transaction_status
    out["transactionPartitions"] = (
        None
        if v.transaction_partitions is None
        else [{"topic": t, "partitionIds": list(ids)} for t, ids in v.transaction_partitions]
    )
    out["transactionLastUpdateTimestampMs"] = v.transaction_last_update_timestamp_ms
    out["transactionStartTimestampMs"] = v.transaction_start_timestamp_ms
    if v.version >= 1 and v.client_transaction_version != 0:
        out["clientTransactionVersion"] = v.client_transaction_version
    return out


def _payload(payload: dict[str, Any] | None) -> str:
    return "<DELETE>" if payload is None else _json(payload)


class _Unknown(Exception):
    """A record type (key version) the decoder does not know."""

    def __init__(self, key_type: int) -> None:
        super().__init__(key_type)
        self.key_type = key_type


def _coordinator_decoder(parse: Callable[[bytes, bytes | None], Parsed]) -> Decoder:
    def decode(record: Record) -> Parsed:
        if record.key is None:
            raise CliError(
                f"Failed to decode message at offset {record.offset} using the specified "
                "decoder (message had a missing key)"
            )
        try:
            return parse(record.key, record.value)
        except _Unknown as exc:
            return (
                f"Unknown record type {exc.key_type} at offset {record.offset}, skipping.",
                None,
            )
        except DecodeError as exc:
            return f"Error at offset {record.offset}, skipping. {exc}", None

    return decode


def _strings(record: Record) -> Parsed:
    """Kafka's StringDecoder for keys and values."""
    key = None if record.key is None else record.key.decode("utf-8", "replace")
    value = None if record.value is None else record.value.decode("utf-8", "replace")
    return key, value


OFFSETS = _coordinator_decoder(_offsets)
TRANSACTION_LOG = _coordinator_decoder(_transactions)
STRINGS: Decoder = _strings
