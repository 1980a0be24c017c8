"""Kafka's znode paths and JSON formats (ZkData), so that zkCli and Kafka's own tools
read what strom writes and strom reads what they write. Pure: bytes in, values out.

Layout (under the chroot of ``zookeeper.connect``)::

    /cluster/id                                  {"version":"1","id":"<cluster id>"}
    /controller                                  {"version":1,"brokerid":1,"timestamp":"..."}
    /controller_epoch                            "3" (its znode version fences writes)
    /brokers/ids/<id>                            ephemeral; endpoints, rack (version 5)
    /brokers/seqid                               its version generates broker ids
    /brokers/topics/<t>                          topic id and replica assignment (version 3)
    /brokers/topics/<t>/partitions/<p>/state     leader, leader_epoch, isr, controller_epoch
    /config/{topics,brokers,clients,users}/<n>   {"version":1,"config":{...}}
    /config/changes/config_change_<seq>          {"version":2,"entity_path":"topics/t"}
    /admin/delete_topics/<t>                     a topic being deleted
    /admin/reassign_partitions                   the legacy reassignment request
    /admin/preferred_replica_election            the legacy preferred election request
    /isr_change_notification/isr_change_<seq>    partitions whose ISR changed
    /log_dir_event_notification/log_dir_event_<seq>
    /latest_producer_id_block                    the last reserved producer id block
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from strom.common.types import TopicPartition
from strom.metadata.image import Endpoint, LeaderAndIsr, TopicAssignment

CLUSTER_ID = "/cluster/id"
CONTROLLER = "/controller"
CONTROLLER_EPOCH = "/controller_epoch"
BROKER_IDS = "/brokers/ids"
BROKER_SEQID = "/brokers/seqid"
TOPICS = "/brokers/topics"
CONFIG = "/config"
CONFIG_CHANGES = "/config/changes"
CONFIG_CHANGE_PREFIX = "config_change_"
DELETE_TOPICS = "/admin/delete_topics"
REASSIGN_PARTITIONS = "/admin/reassign_partitions"
PREFERRED_ELECTION = "/admin/preferred_replica_election"
ISR_CHANGES = "/isr_change_notification"
ISR_CHANGE_PREFIX = "isr_change_"
LOG_DIR_EVENTS = "/log_dir_event_notification"
LOG_DIR_EVENT_PREFIX = "log_dir_event_"
PRODUCER_ID_BLOCK = "/latest_producer_id_block"
DEFAULT_ENTITY = "<default>"

# Created at start by every broker (Kafka's makeSurePersistentPathsExists).
PERSISTENT_PATHS = (
    "/cluster",
    BROKER_IDS,
    TOPICS,
    CONFIG_CHANGES,
    f"{CONFIG}/topics",
    f"{CONFIG}/brokers",
    f"{CONFIG}/clients",
    f"{CONFIG}/users",
    DELETE_TOPICS,
    ISR_CHANGES,
    LOG_DIR_EVENTS,
    PRODUCER_ID_BLOCK,
)


class ZkDataError(ValueError):
    """A znode's data does not parse."""


def _dumps(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _loads(data: bytes | None) -> Any:
    if not data:
        return None
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ZkDataError(f"not JSON: {data[:80]!r}") from exc


def _now_text() -> str:
    return str(time.time_ns() // 1_000_000)


# -- ids -------------------------------------------------------------------------------
def topic_id_text(topic_id: bytes) -> str:
    """Kafka's Uuid.toString: URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(topic_id).decode().rstrip("=")


def topic_id_bytes(text: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError as exc:
        raise ZkDataError(f"bad topic id {text!r}") from exc
    if len(raw) != 16:
        raise ZkDataError(f"bad topic id {text!r}")
    return raw


def new_topic_id() -> bytes:
    return uuid.uuid4().bytes


def encode_cluster_id(cluster_id: str) -> bytes:
    return _dumps({"version": "1", "id": cluster_id})


def decode_cluster_id(data: bytes) -> str:
    obj = _loads(data)
    if not isinstance(obj, dict) or not isinstance(obj.get("id"), str):
        raise ZkDataError(f"bad cluster id znode {data!r}")
    return str(obj["id"])


# -- controller --------------------------------------------------------------------------
def encode_controller(broker_id: int) -> bytes:
    return _dumps({"version": 1, "brokerid": broker_id, "timestamp": _now_text()})


def decode_controller(data: bytes | None) -> int:
    """The controller's broker id (-1 when the data is missing or unreadable)."""
    try:
        obj = _loads(data)
    except ZkDataError:
        return -1
    if isinstance(obj, dict) and isinstance(obj.get("brokerid"), int):
        return int(obj["brokerid"])
    return -1


def encode_controller_epoch(epoch: int) -> bytes:
    return str(epoch).encode()


def decode_controller_epoch(data: bytes | None) -> int:
    try:
        return int((data or b"0").decode())
    except ValueError as exc:
        raise ZkDataError(f"bad controller epoch {data!r}") from exc


# -- brokers -------------------------------------------------------------------------------
def encode_broker(endpoints: Iterable[Endpoint], rack: str | None) -> bytes:
    """Kafka's BrokerIdZNode version 5; host/port are the first PLAINTEXT endpoint's."""
    eps = list(endpoints)
    plain = next((e for e in eps if e.security_protocol == "PLAINTEXT"), None)
    obj: dict[str, Any] = {
        "features": {},
        "listener_security_protocol_map": {e.listener: e.security_protocol for e in eps},
        "endpoints": [f"{e.listener}://{e.host}:{e.port}" for e in eps],
        "jmx_port": -1,
        "port": plain.port if plain else -1,
        "host": plain.host if plain else None,
        "version": 5,
        "timestamp": _now_text(),
    }
    if rack is not None:
        obj["rack"] = rack
    return _dumps(obj)


def decode_broker(data: bytes) -> tuple[tuple[Endpoint, ...], str | None]:
    """(endpoints, rack) of a broker registration, any version Kafka writes."""
    obj = _loads(data)
    if not isinstance(obj, dict):
        raise ZkDataError(f"bad broker registration {data!r}")
    version = obj.get("version", 1)
    if version == 1:
        return (Endpoint("PLAINTEXT", str(obj["host"]), int(obj["port"])),), None
    protocols = obj.get("listener_security_protocol_map") or {}
    out = []
    for text in obj.get("endpoints", []):
        name, _, rest = str(text).partition("://")
        host, _, port = rest.rpartition(":")
        listener = name.upper()
        out.append(
            Endpoint(listener, host.strip("[]"), int(port), protocols.get(listener, listener))
        )
    rack = obj.get("rack")
    return tuple(out), rack if isinstance(rack, str) else None


# -- topics ----------------------------------------------------------------------------------
def encode_topic(assignment: TopicAssignment) -> bytes:
    def as_json(m: Mapping[int, tuple[int, ...]]) -> dict[str, list[int]]:
        return {str(p): list(r) for p, r in sorted(m.items()) if r}

    obj: dict[str, Any] = {
        "partitions": {str(p): list(r) for p, r in sorted(assignment.replicas.items())},
        "adding_replicas": as_json(assignment.adding),
        "removing_replicas": as_json(assignment.removing),
        "version": 3,
    }
    if assignment.topic_id is not None:
        obj["topic_id"] = topic_id_text(assignment.topic_id)
    return _dumps(obj)


def decode_topic(data: bytes | None) -> TopicAssignment:
    obj = _loads(data)
    if obj is None:
        return TopicAssignment(None, {})
    if not isinstance(obj, dict):
        raise ZkDataError(f"bad topic znode {data!r}")

    def parts(key: str) -> dict[int, tuple[int, ...]]:
        raw = obj.get(key) or {}
        return {int(p): tuple(int(b) for b in r) for p, r in raw.items()}

    tid = obj.get("topic_id")
    return TopicAssignment(
        topic_id_bytes(tid) if isinstance(tid, str) else None,
        parts("partitions"),
        parts("adding_replicas"),
        parts("removing_replicas"),
    )


def topic_path(topic: str) -> str:
    return f"{TOPICS}/{topic}"


def partition_state_path(tp: TopicPartition) -> str:
    return f"{TOPICS}/{tp.topic}/partitions/{tp.partition}/state"


def encode_partition_state(state: LeaderAndIsr) -> bytes:
    return _dumps(
        {
            "controller_epoch": state.controller_epoch,
            "leader": state.leader,
            "version": 1,
            "leader_epoch": state.leader_epoch,
            "isr": list(state.isr),
        }
    )


def decode_partition_state(data: bytes, zk_version: int) -> LeaderAndIsr:
    obj = _loads(data)
    if not isinstance(obj, dict):
        raise ZkDataError(f"bad partition state {data!r}")
    return LeaderAndIsr(
        int(obj["leader"]),
        int(obj["leader_epoch"]),
        tuple(int(b) for b in obj["isr"]),
        int(obj["controller_epoch"]),
        zk_version,
    )


# -- configs ------------------------------------------------------------------------------
def config_path(entity_type: str, name: str) -> str:
    return f"{CONFIG}/{entity_type}/{name or DEFAULT_ENTITY}"


def encode_config(configs: Mapping[str, str]) -> bytes:
    return _dumps({"version": 1, "config": dict(configs)})


def decode_config(data: bytes | None) -> dict[str, str]:
    obj = _loads(data)
    if not isinstance(obj, dict):
        return {}
    config = obj.get("config") or {}
    return {str(k): str(v) for k, v in config.items()}


def encode_config_change(entity_type: str, name: str) -> bytes:
    return _dumps({"version": 2, "entity_path": f"{entity_type}/{name or DEFAULT_ENTITY}"})


def decode_config_change(data: bytes | None) -> tuple[str, str] | None:
    """(entity type, entity name) of a change notification; "" for <default>."""
    obj = _loads(data)
    if not isinstance(obj, dict):
        return None
    if obj.get("version") == 1:  # {"version":1,"entity_type":"topics","entity_name":"t"}
        return str(obj.get("entity_type")), str(obj.get("entity_name"))
    entity_type, _, name = str(obj.get("entity_path", "")).partition("/")
    return entity_type, "" if name == DEFAULT_ENTITY else name


# -- admin requests ----------------------------------------------------------------------
def encode_partitions(version: int, partitions: Iterable[TopicPartition]) -> bytes:
    return _dumps(
        {
            "version": version,
            "partitions": [{"topic": tp.topic, "partition": tp.partition} for tp in partitions],
        }
    )


def decode_partitions(data: bytes | None) -> set[TopicPartition]:
    """The partitions of a preferred election or ISR change notification."""
    obj = _loads(data)
    if not isinstance(obj, dict):
        return set()
    return {TopicPartition(str(p["topic"]), int(p["partition"])) for p in obj.get("partitions", [])}


def encode_reassignment(targets: Mapping[TopicPartition, tuple[int, ...]]) -> bytes:
    return _dumps(
        {
            "version": 1,
            "partitions": [
                {"topic": tp.topic, "partition": tp.partition, "replicas": list(r)}
                for tp, r in sorted(targets.items())
            ],
        }
    )


def decode_reassignment(data: bytes | None) -> dict[TopicPartition, tuple[int, ...]]:
    obj = _loads(data)
    if not isinstance(obj, dict):
        return {}
    return {
        TopicPartition(str(p["topic"]), int(p["partition"])): tuple(int(b) for b in p["replicas"])
        for p in obj.get("partitions", [])
    }


def encode_producer_id_block(broker_id: int, start: int, end: int) -> bytes:
    return _dumps(
        {"version": 1, "broker": broker_id, "block_start": str(start), "block_end": str(end)}
    )


def decode_producer_id_block_end(data: bytes | None) -> int:
    """The last id of the latest block (-1 when none was reserved yet)."""
    obj = _loads(data)
    if not isinstance(obj, dict):
        return -1
    return int(obj["block_end"])


def encode_log_dir_event(broker_id: int) -> bytes:
    return _dumps({"version": 1, "broker": broker_id, "event": 1})


def decode_log_dir_event(data: bytes | None) -> int:
    obj = _loads(data)
    return int(obj["broker"]) if isinstance(obj, dict) else -1
