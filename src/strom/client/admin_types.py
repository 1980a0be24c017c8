"""Values that the admin client takes and returns (sans-IO)."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from enum import IntEnum

from strom.client.metadata import BrokerMetadata
from strom.common.types import TopicPartition


class ConfigResourceType(IntEnum):
    """Kind of config resource, with Kafka's ids (DescribeConfigs, IncrementalAlterConfigs)."""

    UNKNOWN = 0
    TOPIC = 2
    BROKER = 4
    BROKER_LOGGER = 8
    CLIENT_METRICS = 16
    GROUP = 32

    @classmethod
    def _missing_(cls, value: object) -> ConfigResourceType:
        return cls.UNKNOWN


class ConfigSource(IntEnum):
    """Where a config value comes from, as DescribeConfigs reports it."""

    UNKNOWN = 0
    DYNAMIC_TOPIC_CONFIG = 1
    DYNAMIC_BROKER_CONFIG = 2
    DYNAMIC_DEFAULT_BROKER_CONFIG = 3
    STATIC_BROKER_CONFIG = 4
    DEFAULT_CONFIG = 5
    DYNAMIC_BROKER_LOGGER_CONFIG = 6
    CLIENT_METRICS_CONFIG = 7
    GROUP_CONFIG = 8


class AlterConfigOpType(IntEnum):
    """An IncrementalAlterConfigs operation: set, delete (back to the default),
    or append to / subtract from a list value."""

    SET = 0
    DELETE = 1
    APPEND = 2
    SUBTRACT = 3


class OffsetSpec(IntEnum):
    """Special ListOffsets timestamps; any value >= 0 is a timestamp in ms."""

    LATEST = -1
    EARLIEST = -2
    MAX_TIMESTAMP = -3


class ElectionType(IntEnum):
    """ElectLeaders' election type: the preferred (first) replica, or any live replica
    of a partition without a leader even when it is out of sync (unclean)."""

    PREFERRED = 0
    UNCLEAN = 1


@dataclass(frozen=True, slots=True)
class NewTopic:
    """A topic to create: partition count and replication factor (-1: the broker's
    defaults) or explicit ``assignments`` (partition -> replica broker ids), and configs."""

    name: str
    num_partitions: int = -1  # -1: the broker's num.partitions
    replication_factor: int = -1  # -1: the broker's default.replication.factor
    configs: dict[str, str] = field(default_factory=dict)
    assignments: dict[int, list[int]] | None = None


@dataclass(frozen=True, slots=True)
class CreatedTopic:
    """A CreateTopics result: the topic id, partition count and replication factor."""

    name: str
    topic_id: bytes
    num_partitions: int
    replication_factor: int


@dataclass(frozen=True, slots=True)
class PartitionInfo:
    """A partition as Metadata reports it: leader, replicas, ISR, offline replicas, epoch."""

    partition: int
    leader: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    offline_replicas: tuple[int, ...] = ()
    leader_epoch: int = -1
    # eligible leader replicas and last known ELR (DescribeTopicPartitions); None when
    # the description came from Metadata, which does not carry them
    elr: tuple[int, ...] | None = None
    last_known_elr: tuple[int, ...] | None = None


@dataclass(frozen=True, slots=True)
class TopicDescription:
    """A topic as Metadata reports it: id, whether internal, partitions by index."""

    name: str
    topic_id: bytes
    is_internal: bool
    partitions: list[PartitionInfo]

    @property
    def topic_id_str(self) -> str:
        """The id as Kafka prints it (URL-safe base64 without padding)."""
        return format_uuid(self.topic_id)


@dataclass(frozen=True, slots=True)
class ConfigResource:
    """A config resource: its type and name (a topic name, or a broker id as a string)."""

    type: ConfigResourceType
    name: str


@dataclass(frozen=True, slots=True)
class ConfigSynonym:
    """A source that could supply a config's value, as DescribeConfigs lists synonyms."""

    name: str
    value: str | None
    source: ConfigSource


@dataclass(frozen=True, slots=True)
class ConfigEntry:
    """One config of a DescribeConfigs result (``value`` is None for sensitive ones)."""

    name: str
    value: str | None
    source: ConfigSource = ConfigSource.UNKNOWN
    is_default: bool = False
    read_only: bool = False
    is_sensitive: bool = False
    synonyms: tuple[ConfigSynonym, ...] = ()


@dataclass(frozen=True, slots=True)
class AlterConfigOp:
    """One IncrementalAlterConfigs change: ``op`` applied to config ``name``."""

    name: str
    value: str | None = None
    op: AlterConfigOpType = AlterConfigOpType.SET


@dataclass(frozen=True, slots=True)
class OffsetAndTimestamp:
    """A ListOffsets result: offset, the found record's timestamp (-1 when none
    applies) and leader epoch (-1: unknown)."""

    offset: int
    timestamp: int
    leader_epoch: int = -1


@dataclass(frozen=True, slots=True)
class ClusterDescription:
    """The cluster id, controller id (-1: unknown) and brokers."""

    cluster_id: str | None
    controller_id: int
    brokers: list[BrokerMetadata]


@dataclass(frozen=True, slots=True)
class PartitionReassignment:
    """An ongoing reassignment (ListPartitionReassignments): every replica of the
    partition now, the ones being added and the ones being removed."""

    replicas: tuple[int, ...]
    adding_replicas: tuple[int, ...] = ()
    removing_replicas: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class ReplicaInfo:
    """A replica in a log dir: size in bytes, offset lag, and whether it is a future
    replica (being moved to this dir)."""

    size: int
    offset_lag: int
    is_future: bool


@dataclass(frozen=True, slots=True)
class LogDirDescription:
    """One log dir of a broker (DescribeLogDirs): its error code (not raised), its
    replicas by partition, and total/usable bytes (-1: unknown)."""

    log_dir: str
    error_code: int
    replicas: dict[TopicPartition, ReplicaInfo]
    total_bytes: int = -1
    usable_bytes: int = -1


@dataclass(frozen=True, slots=True)
class TransactionListing:
    """A ListTransactions entry: transactional id, producer id, state (Kafka's names,
    e.g. ``Ongoing``) and the coordinator (broker id) that listed it."""

    transactional_id: str
    producer_id: int
    state: str
    coordinator_id: int


@dataclass(frozen=True, slots=True)
class TransactionDescription:
    """A DescribeTransactions result; ``transaction_start_time_ms`` is None when no
    transaction is open (-1 on the wire)."""

    coordinator_id: int
    transactional_id: str
    state: str
    producer_id: int
    producer_epoch: int
    transaction_timeout_ms: int
    transaction_start_time_ms: int | None
    topic_partitions: tuple[TopicPartition, ...]


@dataclass(frozen=True, slots=True)
class ProducerState:
    """An active producer of a partition (DescribeProducers); ``coordinator_epoch`` and
    ``current_transaction_start_offset`` are None when unknown (-1 on the wire)."""

    producer_id: int
    producer_epoch: int
    last_sequence: int
    last_timestamp: int
    coordinator_epoch: int | None
    current_transaction_start_offset: int | None


@dataclass(frozen=True, slots=True)
class AbortTransactionSpec:
    """What :meth:`AIOAdmin.abort_transaction` writes: an ABORT marker for this producer
    (id, epoch) and coordinator epoch on one partition."""

    topic_partition: TopicPartition
    producer_id: int
    producer_epoch: int
    coordinator_epoch: int


@dataclass(frozen=True, slots=True)
class QuotaFilterComponent:
    """One component of a DescribeClientQuotas filter: an entity type (``user``,
    ``client-id``, ``ip``) matched by name (``match_type`` 0), as the default entity (1)
    or any entity of the type (2)."""

    entity_type: str
    match_type: int = 2
    match: str | None = None


@dataclass(frozen=True, slots=True)
class ClientQuotaEntity:
    """A quota entity: (entity type, name) pairs, e.g. (("user", "alice"),); a name of
    None is the default entity of that type."""

    entries: tuple[tuple[str, str | None], ...]


def format_uuid(raw: bytes) -> str:
    """Kafka's Uuid.toString(): URL-safe base64 of the 16 bytes, no padding."""
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")
