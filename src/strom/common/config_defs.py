"""The broker's and topics' config tables, with Kafka's names and defaults.

Each topic config that has a broker-wide default names its broker synonyms, most
specific first (``retention.ms`` falls back to ``log.retention.ms``, then
``log.retention.minutes``, then ``log.retention.hours``), which is how DescribeConfigs
reports sources. The security configs' table is in strom.common.security_config;
parsing the layers of a broker's configuration is strom.common.config.
"""

from __future__ import annotations

from strom.common.config_types import (
    BOOL,
    DBL,
    INT,
    INT_MAX,
    LONG,
    LONG_MAX,
    LST,
    STR,
    ConfigDef,
    Validator,
    at_least,
    one_of,
)
from strom.common.security_config import SECURITY_CONFIGS

_COMPRESSION = one_of("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer")
_TS_TYPE = one_of("CreateTime", "LogAppendTime")
_CLEANUP = one_of("delete", "compact")


def _with_classic(v: object) -> str | None:
    problem = one_of("classic", "consumer")(v)
    if problem is None and isinstance(v, list) and "classic" not in v:
        return "disabling the 'classic' protocol is not supported"
    return problem


def _assignors(v: object) -> str | None:
    known = (
        "uniform",
        "range",
        *(f"org.apache.kafka.coordinator.group.assignor.{n}Assignor" for n in ("Uniform", "Range")),
    )
    if isinstance(v, list) and not v:
        return "at least one assignor is needed"
    return one_of(*known)(v)


def _lower_one_of(*choices: str) -> Validator:
    def check(v: object) -> str | None:
        return None if str(v).lower() in choices else f"must be one of {', '.join(choices)}"

    return check


def _defs(*defs: ConfigDef) -> dict[str, ConfigDef]:
    return {d.name: d for d in defs}


_ONE_LOOP = "strom serves every connection and request on one event loop"
_CLEANER_THREAD = (
    "the log cleaner runs in one thread (Kafka's default); fsync and file deletion "
    "run in another storage thread"
)
_RECOVERY = (
    "logs are loaded and recovered one at a time at startup, before the listeners "
    "accept connections"
)


def _http_listener(v: object) -> str | None:
    """metrics.listener: http://HOST:PORT."""
    if not isinstance(v, str) or not v:
        return None
    scheme, _, rest = v.partition("://")
    host, _, port = rest.rstrip("/").rpartition(":")
    if scheme != "http" or not host or not port.isdigit() or int(port) > 65535:
        return "must be http://HOST:PORT"
    return None


def _ratio(v: object) -> str | None:
    return None if isinstance(v, float) and 0.0 <= v <= 1.0 else "must be between 0 and 1"


BROKER_CONFIGS: dict[str, ConfigDef] = _defs(
    ConfigDef("listeners", LST, ["PLAINTEXT://127.0.0.1:9092"]),
    ConfigDef("advertised.listeners", LST, None),
    ConfigDef(
        "listener.security.protocol.map",
        LST,
        ["PLAINTEXT:PLAINTEXT", "SSL:SSL", "SASL_PLAINTEXT:SASL_PLAINTEXT", "SASL_SSL:SASL_SSL"],
    ),
    ConfigDef("inter.broker.listener.name", STR, None),
    ConfigDef("security.inter.broker.protocol", STR, "PLAINTEXT"),
    ConfigDef("node.id", INT, -1),
    ConfigDef("broker.id", INT, -1),
    ConfigDef("broker.id.generation.enable", BOOL, True),
    ConfigDef("reserved.broker.max.id", INT, 1000, at_least(0)),
    # strom's own: the Prometheus endpoint (Kafka has JMX); off unless set
    ConfigDef("metrics.listener", STR, None, _http_listener),
    ConfigDef("broker.rack", STR, None),
    ConfigDef("cluster.id", STR, None),
    ConfigDef("zookeeper.connect", STR, None),
    ConfigDef("zookeeper.connection.timeout.ms", INT, None, at_least(1)),
    ConfigDef("zookeeper.session.timeout.ms", INT, 18000, at_least(1)),
    ConfigDef(
        "zookeeper.max.in.flight.requests",
        INT,
        10,
        at_least(1),
        no_effect="kazoo pipelines every request on its one connection",
    ),
    ConfigDef("controlled.shutdown.enable", BOOL, True),
    ConfigDef("controlled.shutdown.max.retries", INT, 3, at_least(0)),
    ConfigDef("controlled.shutdown.retry.backoff.ms", LONG, 5000, at_least(0)),
    ConfigDef("controller.socket.timeout.ms", INT, 30000, at_least(1)),
    ConfigDef("auto.leader.rebalance.enable", BOOL, True),
    ConfigDef("leader.imbalance.per.broker.percentage", INT, 10, at_least(0)),
    ConfigDef("leader.imbalance.check.interval.seconds", LONG, 300, at_least(1)),
    ConfigDef("log.dirs", LST, None),
    ConfigDef("log.dir", LST, ["/tmp/kafka-logs"]),
    ConfigDef("num.partitions", INT, 1, at_least(1)),
    ConfigDef("default.replication.factor", INT, 1, at_least(1)),
    ConfigDef("auto.create.topics.enable", BOOL, True),
    ConfigDef("delete.topic.enable", BOOL, True),
    ConfigDef("log.segment.bytes", INT, 1_073_741_824, at_least(14)),
    ConfigDef("log.roll.ms", LONG, None, at_least(1)),
    ConfigDef("log.roll.hours", INT, 168, at_least(1)),
    ConfigDef("log.roll.jitter.ms", LONG, None),
    ConfigDef("log.roll.jitter.hours", INT, 0, at_least(0)),
    ConfigDef("log.retention.ms", LONG, None),
    ConfigDef("log.retention.minutes", INT, None),
    ConfigDef("log.retention.hours", INT, 168),
    ConfigDef("log.retention.bytes", LONG, -1),
    ConfigDef("log.retention.check.interval.ms", LONG, 300_000, at_least(1)),
    ConfigDef("log.flush.interval.messages", LONG, LONG_MAX, at_least(1)),
    ConfigDef("log.flush.interval.ms", LONG, None),
    ConfigDef("log.flush.scheduler.interval.ms", LONG, LONG_MAX),
    ConfigDef("log.flush.offset.checkpoint.interval.ms", INT, 60_000, at_least(0)),
    ConfigDef("log.flush.start.offset.checkpoint.interval.ms", INT, 60_000, at_least(0)),
    ConfigDef("log.index.interval.bytes", INT, 4096, at_least(0)),
    ConfigDef("log.index.size.max.bytes", INT, 10_485_760, at_least(4)),
    ConfigDef("log.message.timestamp.type", STR, "CreateTime", _TS_TYPE),
    ConfigDef("log.message.timestamp.difference.max.ms", LONG, LONG_MAX, at_least(0)),
    ConfigDef("log.message.timestamp.before.max.ms", LONG, LONG_MAX, at_least(0)),
    ConfigDef("log.message.timestamp.after.max.ms", LONG, LONG_MAX, at_least(0)),
    ConfigDef("log.cleanup.policy", LST, ["delete"], _CLEANUP),
    ConfigDef("log.cleaner.enable", BOOL, True),
    ConfigDef("log.cleaner.backoff.ms", LONG, 15_000, at_least(0)),
    ConfigDef("log.cleaner.delete.retention.ms", LONG, 86_400_000),
    ConfigDef("log.cleaner.min.compaction.lag.ms", LONG, 0),
    ConfigDef("log.cleaner.max.compaction.lag.ms", LONG, LONG_MAX),
    ConfigDef("log.cleaner.min.cleanable.ratio", DBL, 0.5, _ratio),
    ConfigDef("log.cleaner.threads", INT, 1, at_least(0), no_effect=_CLEANER_THREAD),
    ConfigDef("log.preallocate", BOOL, False),
    ConfigDef("log.segment.delete.delay.ms", LONG, 60_000),
    ConfigDef("message.max.bytes", INT, 1_048_588, at_least(0)),
    ConfigDef("compression.type", STR, "producer", _COMPRESSION),
    ConfigDef("min.insync.replicas", INT, 1, at_least(1)),
    ConfigDef("unclean.leader.election.enable", BOOL, False),
    ConfigDef("socket.request.max.bytes", INT, 104_857_600, at_least(1)),
    ConfigDef("socket.send.buffer.bytes", INT, 102_400),
    ConfigDef("socket.receive.buffer.bytes", INT, 102_400),
    ConfigDef("connections.max.idle.ms", LONG, 600_000),
    ConfigDef("num.network.threads", INT, 3, at_least(1), no_effect=_ONE_LOOP),
    ConfigDef("num.io.threads", INT, 8, at_least(1), no_effect=_ONE_LOOP),
    ConfigDef("queued.max.requests", INT, 500, at_least(1), no_effect=_ONE_LOOP),
    ConfigDef("num.recovery.threads.per.data.dir", INT, 2, at_least(1), no_effect=_RECOVERY),
    ConfigDef("num.replica.fetchers", INT, 1, at_least(1)),
    ConfigDef("replica.lag.time.max.ms", LONG, 30_000, at_least(1)),
    ConfigDef("replica.fetch.min.bytes", INT, 1, at_least(1)),
    ConfigDef("replica.fetch.max.bytes", INT, 1_048_576, at_least(0)),
    ConfigDef("fetch.max.bytes", INT, 57_671_680, at_least(1024)),
    ConfigDef("max.incremental.fetch.session.cache.slots", INT, 1000, at_least(0)),
    ConfigDef("replica.fetch.response.max.bytes", INT, 10_485_760, at_least(0)),
    ConfigDef("replica.fetch.wait.max.ms", INT, 500, at_least(0)),
    ConfigDef("replica.fetch.backoff.ms", INT, 1000, at_least(0)),
    ConfigDef("replica.socket.timeout.ms", INT, 30_000),
    ConfigDef("replica.high.watermark.checkpoint.interval.ms", LONG, 5000, at_least(1)),
    ConfigDef(
        "replica.selector.class",
        STR,
        None,
        one_of(
            "org.apache.kafka.common.replica.RackAwareReplicaSelector",
            "org.apache.kafka.common.replica.LeaderSelector",
        ),
    ),
    ConfigDef("offsets.topic.num.partitions", INT, 50, at_least(1)),
    ConfigDef("offsets.topic.replication.factor", INT, 3, at_least(1)),
    ConfigDef("offsets.topic.segment.bytes", INT, 104_857_600, at_least(1)),
    ConfigDef("offsets.retention.minutes", INT, 10_080, at_least(1)),
    ConfigDef("offsets.retention.check.interval.ms", LONG, 600_000, at_least(1)),
    ConfigDef("offsets.commit.timeout.ms", INT, 5000, at_least(1)),
    ConfigDef("offset.metadata.max.bytes", INT, 4096),
    ConfigDef("group.initial.rebalance.delay.ms", INT, 3000, at_least(0)),
    ConfigDef("group.min.session.timeout.ms", INT, 6000),
    ConfigDef("group.max.session.timeout.ms", INT, 1_800_000),
    ConfigDef("group.max.size", INT, INT_MAX, at_least(1)),
    ConfigDef("transaction.state.log.num.partitions", INT, 50, at_least(1)),
    ConfigDef("transaction.state.log.replication.factor", INT, 3, at_least(1)),
    ConfigDef("transaction.state.log.min.isr", INT, 2, at_least(1)),
    ConfigDef("transaction.state.log.segment.bytes", INT, 104_857_600),
    ConfigDef("transaction.max.timeout.ms", INT, 900_000, at_least(1)),
    ConfigDef("transactional.id.expiration.ms", INT, 604_800_000),
    ConfigDef(
        "transaction.abort.timed.out.transaction.cleanup.interval.ms", INT, 10_000, at_least(1)
    ),
    ConfigDef(
        "transaction.remove.expired.transaction.cleanup.interval.ms", INT, 3_600_000, at_least(1)
    ),
    ConfigDef("transaction.partition.verification.enable", BOOL, True),
    ConfigDef("producer.id.expiration.ms", INT, 86_400_000, at_least(1)),
    ConfigDef("producer.id.expiration.check.interval.ms", INT, 600_000, at_least(1)),
    ConfigDef(
        "group.coordinator.rebalance.protocols",
        LST,
        ["classic", "consumer"],
        _with_classic,
    ),
    # consumer groups (KIP-848); the min/max bounds are checked against the values at start
    ConfigDef("group.consumer.session.timeout.ms", INT, 45_000, at_least(1)),
    ConfigDef("group.consumer.min.session.timeout.ms", INT, 45_000, at_least(1)),
    ConfigDef("group.consumer.max.session.timeout.ms", INT, 60_000, at_least(1)),
    ConfigDef("group.consumer.heartbeat.interval.ms", INT, 5_000, at_least(1)),
    ConfigDef("group.consumer.min.heartbeat.interval.ms", INT, 5_000, at_least(1)),
    ConfigDef("group.consumer.max.heartbeat.interval.ms", INT, 15_000, at_least(1)),
    ConfigDef("group.consumer.max.size", INT, INT_MAX, at_least(1)),
    ConfigDef("group.consumer.assignors", LST, ["uniform", "range"], _assignors),
    ConfigDef(
        "group.consumer.migration.policy",
        STR,
        "bidirectional",
        _lower_one_of("disabled", "downgrade", "upgrade", "bidirectional"),
    ),
    *SECURITY_CONFIGS,
)

# Keys of other Kafka modes: setting one is refused at start with this reason.
REFUSED_BROKER_CONFIGS: dict[str, str] = {
    key: "strom has no KRaft mode; a strom cluster is coordinated by ZooKeeper "
    "(zookeeper.connect), and a broker without it is a single node"
    for key in (
        "process.roles",
        "controller.quorum.voters",
        "controller.quorum.bootstrap.servers",
        "controller.listener.names",
    )
}

# Without zookeeper.connect (the embedded single node) these defaults are 1, so that
# the internal topics can be created with the one broker there is.
EMBEDDED_DEFAULTS: dict[str, object] = {
    "offsets.topic.replication.factor": 1,
    "transaction.state.log.replication.factor": 1,
    "transaction.state.log.min.isr": 1,
}

# Topic configs: (definition, broker synonyms most specific first, unit factor per synonym).
_TOPIC: list[tuple[ConfigDef, tuple[tuple[str, int], ...]]] = [
    (ConfigDef("cleanup.policy", LST, ["delete"], _CLEANUP), (("log.cleanup.policy", 1),)),
    (ConfigDef("compression.type", STR, "producer", _COMPRESSION), (("compression.type", 1),)),
    (
        ConfigDef("delete.retention.ms", LONG, 86_400_000, at_least(0)),
        (("log.cleaner.delete.retention.ms", 1),),
    ),
    (
        ConfigDef("file.delete.delay.ms", LONG, 60_000, at_least(0)),
        (("log.segment.delete.delay.ms", 1),),
    ),
    (
        ConfigDef("flush.messages", LONG, LONG_MAX, at_least(1)),
        (("log.flush.interval.messages", 1),),
    ),
    (ConfigDef("flush.ms", LONG, LONG_MAX, at_least(0)), (("log.flush.interval.ms", 1),)),
    (ConfigDef("index.interval.bytes", INT, 4096, at_least(0)), (("log.index.interval.bytes", 1),)),
    (
        ConfigDef("max.compaction.lag.ms", LONG, LONG_MAX, at_least(1)),
        (("log.cleaner.max.compaction.lag.ms", 1),),
    ),
    (ConfigDef("max.message.bytes", INT, 1_048_588, at_least(0)), (("message.max.bytes", 1),)),
    (
        ConfigDef("message.timestamp.difference.max.ms", LONG, LONG_MAX, at_least(0)),
        (("log.message.timestamp.difference.max.ms", 1),),
    ),
    (
        ConfigDef("message.timestamp.before.max.ms", LONG, LONG_MAX, at_least(0)),
        (("log.message.timestamp.before.max.ms", 1),),
    ),
    (
        ConfigDef("message.timestamp.after.max.ms", LONG, LONG_MAX, at_least(0)),
        (("log.message.timestamp.after.max.ms", 1),),
    ),
    (
        ConfigDef("message.timestamp.type", STR, "CreateTime", _TS_TYPE),
        (("log.message.timestamp.type", 1),),
    ),
    (
        ConfigDef("min.cleanable.dirty.ratio", DBL, 0.5, _ratio),
        (("log.cleaner.min.cleanable.ratio", 1),),
    ),
    (
        ConfigDef("min.compaction.lag.ms", LONG, 0, at_least(0)),
        (("log.cleaner.min.compaction.lag.ms", 1),),
    ),
    (ConfigDef("min.insync.replicas", INT, 1, at_least(1)), (("min.insync.replicas", 1),)),
    (ConfigDef("preallocate", BOOL, False), (("log.preallocate", 1),)),
    (
        ConfigDef("retention.bytes", LONG, -1),
        (("log.retention.bytes", 1),),
    ),
    (
        ConfigDef("retention.ms", LONG, 604_800_000, at_least(-1)),
        (
            ("log.retention.ms", 1),
            ("log.retention.minutes", 60_000),
            ("log.retention.hours", 3_600_000),
        ),
    ),
    (ConfigDef("segment.bytes", INT, 1_073_741_824, at_least(14)), (("log.segment.bytes", 1),)),
    (
        ConfigDef("segment.index.bytes", INT, 10_485_760, at_least(4)),
        (("log.index.size.max.bytes", 1),),
    ),
    (
        ConfigDef("segment.jitter.ms", LONG, 0, at_least(0)),
        (("log.roll.jitter.ms", 1), ("log.roll.jitter.hours", 3_600_000)),
    ),
    (
        ConfigDef("segment.ms", LONG, 604_800_000, at_least(1)),
        (("log.roll.ms", 1), ("log.roll.hours", 3_600_000)),
    ),
    (
        ConfigDef("unclean.leader.election.enable", BOOL, False),
        (("unclean.leader.election.enable", 1),),
    ),
    (ConfigDef("message.downconversion.enable", BOOL, True), ()),
]
TOPIC_CONFIGS: dict[str, ConfigDef] = {d.name: d for d, _ in _TOPIC}
TOPIC_SYNONYMS: dict[str, tuple[tuple[str, int], ...]] = {d.name: syn for d, syn in _TOPIC}


# Configs Kafka changes at runtime (its DynamicConfig.ALL_DYNAMIC_CONFIGS) that strom
# takes but that have no effect in strom (ConfigDef.no_effect): AlterConfigs stores and
# describes them as Kafka's does (librdkafka's admin test sets one on a broker).
KAFKA_DYNAMIC_WITHOUT_EFFECT: tuple[str, ...] = (
    "ssl.protocol",
    "ssl.provider",
    "ssl.keymanager.algorithm",
    "ssl.trustmanager.algorithm",
    "ssl.secure.random.implementation",
    "ssl.engine.factory.class",
    "sasl.kerberos.service.name",
    "sasl.kerberos.kinit.cmd",
    "sasl.kerberos.ticket.renew.window.factor",
    "sasl.kerberos.ticket.renew.jitter",
    "sasl.kerberos.min.time.before.relogin",
    "sasl.kerberos.principal.to.local.rules",
    "sasl.login.refresh.window.factor",
    "sasl.login.refresh.window.jitter",
    "sasl.login.refresh.min.period.seconds",
    "sasl.login.refresh.buffer.seconds",
    "num.network.threads",
    "num.io.threads",
    "num.recovery.threads.per.data.dir",
    "log.cleaner.threads",
)

# Broker configs AlterConfigs may change at runtime: the broker-level defaults of topic
# configs (Kafka's DynamicLogConfig), which apply to every topic at once, and the above.
DYNAMIC_BROKER_CONFIGS: frozenset[str] = frozenset(
    key for syn in TOPIC_SYNONYMS.values() for key, _ in syn if key in BROKER_CONFIGS
) | frozenset(KAFKA_DYNAMIC_WITHOUT_EFFECT)
