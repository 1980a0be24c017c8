"""ACL authorization with Kafka's semantics, through real clients against one broker
with ``authorizer.class.name`` set, ``super.users=User:admin`` and
``allow.everyone.if.no.acl.found`` left false.

A matrix of principal x resource x operation: no ACL found (denied), literal and
prefixed ALLOWs, the wildcard principal and resource, DENY overriding ALLOW,
implied DESCRIBE, host matching, the super user, the idempotent-write check, groups
and transactional ids, topic creation, Metadata hiding what may not be described,
authorized operations, the ACL APIs' own rights, ``strom acls``, a certificate's
name mapped by ``ssl.principal.mapping.rules``, and ACLs kept across a restart.
The broker talks to itself (transaction markers) over SASL as the super user.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from strom.client.admin_types import NewTopic
from strom.client.aio.admin import AIOAdmin
from strom.common.acl import (
    CLUSTER_NAME,
    AccessControlEntry,
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    PatternType,
    ResourcePattern,
    ResourceType,
)
from strom.testing.broker import BrokerFactory, BrokerProcess
from tests.integration import security_helpers as sh
from tests.integration.cli_helpers import strom

pytestmark = pytest.mark.integration

Op, RT = AclOperation, ResourceType
ALLOW, DENY = AclPermissionType.ALLOW, AclPermissionType.DENY
SASL = "SASL_PLAINTEXT/PLAIN"


@pytest.fixture(scope="module")
def acl_broker(
    tmp_path_factory: pytest.TempPathFactory, broker_kind: str
) -> Iterator[tuple[sh.Secured, BrokerProcess]]:
    if broker_kind != "strom":
        pytest.skip("the ACL tests configure strom's authorizer")
    sec = sh.Secured(tmp_path_factory.mktemp("certs"))
    factory = BrokerFactory(lambda: tmp_path_factory.mktemp("acl-broker"))
    proc = sec.start(
        factory,
        **{
            "authorizer.class.name": "kafka.security.authorizer.AclAuthorizer",
            "super.users": "User:admin",
            "inter.broker.listener.name": "SASL_PLAINTEXT",
            "sasl.mechanism.inter.broker.protocol": "PLAIN",
            "listener.name.ssl.ssl.client.auth": "required",
            "ssl.principal.mapping.rules": "RULE:^CN=([a-z]+),O=.*$/$1/L,DEFAULT",
        },
    )
    yield sec, proc
    assert proc.is_running(), proc.log_tail()
    factory.close()


def _admin_conf(sec: sh.Secured) -> dict[str, str | int]:
    return sec.strom(SASL, "admin")


def run_admin(sec: sh.Secured, work: Any) -> Any:
    async def main() -> Any:
        async with AIOAdmin(_admin_conf(sec)) as admin:
            return await work(admin)

    return asyncio.run(main())


def acl(
    kind: RT,
    name: str,
    principal: str,
    op: Op,
    permission: AclPermissionType = ALLOW,
    pattern: PatternType = PatternType.LITERAL,
    host: str = "*",
) -> AclBinding:
    return AclBinding(
        ResourcePattern(kind, name, pattern), AccessControlEntry(principal, host, op, permission)
    )


def grant(sec: sh.Secured, *bindings: AclBinding) -> None:
    run_admin(sec, lambda admin: admin.create_acls(list(bindings)))


def topic(sec: sh.Secured, prefix: str = "t", partitions: int = 1) -> str:
    name = sh.unique(prefix)
    run_admin(sec, lambda admin: admin.create_topics([NewTopic(name, partitions, 1)]))
    return name


def produce(sec: sh.Secured, user: str, name: str, scenario: str = SASL, **extra: Any) -> int:
    """Produce one record as ``user``: 0 or the error code."""
    from confluent_kafka import Producer

    result: list[int] = []
    p = Producer(
        {**sec.confluent(scenario, user), "message.timeout.ms": 5000, **extra},
    )
    p.produce(name, b"x", on_delivery=lambda err, msg: result.append(err.code() if err else 0))
    p.flush(10)
    return result[0] if result else -1


def consume_one(sec: sh.Secured, user: str, name: str, group: str) -> int:
    """Read one record in ``group``: 0 or the error code."""
    from confluent_kafka import Consumer

    c = Consumer({**sec.confluent(SASL, user), "group.id": group, "auto.offset.reset": "earliest"})
    try:
        c.subscribe([name])
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error() is not None:
                return int(m.error().code())
            c.commit(m, asynchronous=False)
            return 0
        return -1
    finally:
        c.close()


def describe(sec: sh.Secured, user: str, name: str) -> int:
    """Metadata of one topic as ``user``: its error code."""
    from confluent_kafka.admin import AdminClient

    md = AdminClient(sec.confluent(SASL, user)).list_topics(name, timeout=10)
    err = md.topics[name].error
    return 0 if err is None else int(err.code())


TOPIC_DENIED, GROUP_DENIED, CLUSTER_DENIED, TXN_DENIED = 29, 30, 31, 53


# -- the matrix --------------------------------------------------------------------------------
def test_no_acl_found_denies_and_the_super_user_may(
    acl_broker: tuple[sh.Secured, BrokerProcess],
) -> None:
    sec, _ = acl_broker
    name = topic(sec)
    assert produce(sec, "alice", name) == TOPIC_DENIED
    assert produce(sec, "admin", name) == 0


def test_literal_allow_is_for_its_principal_only(
    acl_broker: tuple[sh.Secured, BrokerProcess],
) -> None:
    sec, _ = acl_broker
    name = topic(sec)
    grant(sec, acl(RT.TOPIC, name, "User:alice", Op.WRITE))
    assert produce(sec, "alice", name) == 0
    assert produce(sec, "bob", name) == TOPIC_DENIED


def test_prefixed_allow_matches_names_starting_with_it(
    acl_broker: tuple[sh.Secured, BrokerProcess],
) -> None:
    sec, _ = acl_broker
    prefix = sh.unique("pre") + "-"
    inside, outside = topic(sec, prefix), topic(sec)
    grant(sec, acl(RT.TOPIC, prefix, "User:alice", Op.WRITE, pattern=PatternType.PREFIXED))
    assert produce(sec, "alice", inside) == 0
    assert produce(sec, "alice", outside) == TOPIC_DENIED


def test_wildcard_principal_and_implied_describe(
    acl_broker: tuple[sh.Secured, BrokerProcess],
) -> None:
    sec, _ = acl_broker
    name = topic(sec)
    grant(sec, acl(RT.TOPIC, name, "User:*", Op.READ))
    # READ implies DESCRIBE, for every user; it does not allow WRITE
    assert describe(sec, "bob", name) == 0
    assert describe(sec, "alice", name) == 0
    assert produce(sec, "bob", name) == TOPIC_DENIED


def test_deny_overrides_allow(acl_broker: tuple[sh.Secured, BrokerProcess]) -> None:
    sec, _ = acl_broker
    name = topic(sec)
    group = sh.unique("g")
    grant(
        sec,
        acl(RT.TOPIC, name, "User:alice", Op.ALL),
        acl(RT.TOPIC, name, "User:alice", Op.WRITE, DENY),
        acl(RT.GROUP, group, "User:alice", Op.READ),
    )
    assert produce(sec, "alice", name) == TOPIC_DENIED
    assert produce(sec, "admin", name) == 0
    assert consume_one(sec, "alice", name, group) == 0  # READ still allowed


def test_host_must_match(acl_broker: tuple[sh.Secured, BrokerProcess]) -> None:
    sec, _ = acl_broker
    name, other = topic(sec), topic(sec)
    grant(
        sec,
        acl(RT.TOPIC, name, "User:alice", Op.WRITE, host="127.0.0.1"),
        acl(RT.TOPIC, other, "User:alice", Op.WRITE, host="10.9.8.7"),
    )
    assert produce(sec, "alice", name) == 0
    assert produce(sec, "alice", other) == TOPIC_DENIED


def test_consumer_group_needs_read_on_the_group(
    acl_broker: tuple[sh.Secured, BrokerProcess],
) -> None:
    sec, _ = acl_broker
    name = topic(sec)
    produce(sec, "admin", name)
    allowed, denied = sh.unique("g"), sh.unique("g")
    grant(
        sec,
        acl(RT.TOPIC, name, "User:alice", Op.READ),
        acl(RT.GROUP, allowed, "User:alice", Op.READ),
    )
    assert consume_one(sec, "alice", name, denied) == GROUP_DENIED
    assert consume_one(sec, "alice", name, allowed) == 0


def test_idempotent_producer_needs_write_somewhere(
    acl_broker: tuple[sh.Secured, BrokerProcess],
) -> None:
    """KIP-679: InitProducerId without a transactional id needs IDEMPOTENT_WRITE on the
    cluster or WRITE on any topic; otherwise CLUSTER_AUTHORIZATION_FAILED."""
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    sec, _ = acl_broker
    name = topic(sec)
    grant(
        sec,
        acl(RT.TOPIC, name, "User:alice", Op.WRITE),
        acl(RT.TOPIC, name, "User:bob", Op.DESCRIBE),
    )
    assert produce(sec, "alice", name, **{"enable.idempotence": True}) == 0
    p = KafkaProducer(enable_idempotence=True, **sec.kafka_python(SASL, "bob"))
    try:
        with pytest.raises(KafkaError, match=r"\[Error 31\] ClusterAuthorizationFailed"):
            p.send(name, b"x").get(timeout=10)
    finally:
        p.close(timeout=5)


def test_transactional_ids_wildcard_and_denied(
    acl_broker: tuple[sh.Secured, BrokerProcess],
) -> None:
    from confluent_kafka import KafkaException, Producer

    sec, _ = acl_broker
    name = topic(sec)
    prefix = sh.unique("tx")
    grant(
        sec,
        acl(RT.TOPIC, name, "User:alice", Op.WRITE),
        acl(RT.TRANSACTIONAL_ID, prefix, "User:alice", Op.WRITE, pattern=PatternType.PREFIXED),
    )
    p = Producer({**sec.confluent(SASL, "alice"), "transactional.id": f"{prefix}-1"})
    p.init_transactions(15)
    p.begin_transaction()
    p.produce(name, b"in a transaction")
    p.commit_transaction(15)
    denied = Producer({**sec.confluent(SASL, "alice"), "transactional.id": sh.unique("other")})
    with pytest.raises(KafkaException) as info:
        denied.init_transactions(15)
    assert info.value.args[0].code() == TXN_DENIED


def test_create_topics_needs_create(acl_broker: tuple[sh.Secured, BrokerProcess]) -> None:
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    sec, _ = acl_broker
    prefix = sh.unique("own") + "-"
    grant(sec, acl(RT.TOPIC, prefix, "User:alice", Op.CREATE, pattern=PatternType.PREFIXED))
    admin = AdminClient(sec.confluent(SASL, "alice"))
    ok, no = f"{prefix}a", sh.unique("no")
    futures = admin.create_topics([NewTopic(ok, 1, 1), NewTopic(no, 1, 1)])
    futures[ok].result(10)
    with pytest.raises(KafkaException) as info:
        futures[no].result(10)
    assert info.value.args[0].code() == TOPIC_DENIED


def test_metadata_hides_topics_it_may_not_describe(
    acl_broker: tuple[sh.Secured, BrokerProcess],
) -> None:
    from confluent_kafka.admin import AdminClient

    sec, _ = acl_broker
    seen, hidden = topic(sec), topic(sec)
    grant(sec, acl(RT.TOPIC, seen, "User:bob", Op.DESCRIBE))
    listed = AdminClient(sec.confluent(SASL, "bob")).list_topics(timeout=10).topics
    assert seen in listed
    assert hidden not in listed
    assert describe(sec, "bob", hidden) == TOPIC_DENIED


def test_authorized_operations(acl_broker: tuple[sh.Secured, BrokerProcess]) -> None:
    from confluent_kafka import TopicCollection
    from confluent_kafka.admin import AclOperation as COp
    from confluent_kafka.admin import AdminClient

    sec, _ = acl_broker
    name = topic(sec)
    grant(
        sec,
        acl(RT.TOPIC, name, "User:alice", Op.READ),
        acl(RT.TOPIC, name, "User:alice", Op.ALTER_CONFIGS),
    )
    admin = AdminClient(sec.confluent(SASL, "alice"))
    described = admin.describe_topics(TopicCollection([name]), include_authorized_operations=True)[
        name
    ].result(10)
    assert set(described.authorized_operations) == {
        COp.READ,
        COp.DESCRIBE,
        COp.ALTER_CONFIGS,
        COp.DESCRIBE_CONFIGS,
    }
    super_admin = AdminClient(sec.confluent(SASL, "admin"))
    cluster = super_admin.describe_cluster(include_authorized_operations=True).result(10)
    assert COp.ALTER in set(cluster.authorized_operations)
    # without DESCRIBE on the cluster, a user is told none
    bob = AdminClient(sec.confluent(SASL, "bob"))
    assert (
        not bob.describe_cluster(include_authorized_operations=True)
        .result(10)
        .authorized_operations
    )


def test_acl_apis_need_cluster_rights(acl_broker: tuple[sh.Secured, BrokerProcess]) -> None:
    """DescribeAcls needs DESCRIBE on the cluster, CreateAcls and DeleteAcls ALTER."""
    from strom.protocol.errors import KafkaError

    sec, _ = acl_broker

    async def as_bob() -> list[int]:
        codes = []
        async with AIOAdmin(sec.strom(SASL, "bob")) as admin:
            for call in (
                admin.describe_acls(AclBindingFilter()),
                admin.create_acls([acl(RT.TOPIC, "x", "User:bob", Op.ALL)]),
                admin.delete_acls([AclBindingFilter()]),
            ):
                try:
                    await call
                    codes.append(0)
                except KafkaError as exc:
                    codes.append(exc.code)
        return codes

    assert asyncio.run(as_bob()) == [CLUSTER_DENIED] * 3
    assert run_admin(sec, lambda admin: admin.describe_acls(AclBindingFilter()))


def test_init_producer_id_codes(acl_broker: tuple[sh.Secured, BrokerProcess]) -> None:
    """InitProducerId's errors as Kafka answers them, read by strom's client."""
    from strom.protocol.generated.init_producer_id import InitProducerIdRequest

    sec, _ = acl_broker
    name = topic(sec)
    grant(sec, acl(RT.TOPIC, name, "User:alice", Op.WRITE))

    async def init(user: str, transactional_id: str | None) -> int:
        async with AIOAdmin(sec.strom(SASL, user)) as admin:
            request = InitProducerIdRequest(transactional_id, 60_000)
            return int((await admin.client.send(None, request)).error_code)

    assert asyncio.run(init("alice", None)) == 0  # WRITE on a topic: idempotent allowed
    assert asyncio.run(init("bob", None)) == CLUSTER_DENIED
    assert asyncio.run(init("alice", sh.unique("tx"))) == TXN_DENIED
    assert asyncio.run(init("admin", sh.unique("tx"))) == 0


def test_strom_acls_cli(acl_broker: tuple[sh.Secured, BrokerProcess]) -> None:
    sec, proc = acl_broker
    props = sec.certs_dir / "admin.properties"
    props.write_text(
        "".join(f"{k}={v}\n" for k, v in _admin_conf(sec).items() if k != "bootstrap.servers")
    )
    base = ["acls", "--bootstrap-server", sec.bootstrap(SASL), "--command-config", str(props)]
    name, group = topic(sec), sh.unique("g")
    added = strom(*base, "--add", "--allow-principal", "User:bob", "--producer", "--topic", name)
    assert added.returncode == 0, added.stderr
    assert (
        "Adding ACLs for resource `ResourcePattern(resourceType=TOPIC, "
        f"name={name}, patternType=LITERAL)`: " in added.stdout
    )
    assert "(principal=User:bob, host=*, operation=WRITE, permissionType=ALLOW)" in added.stdout
    assert produce(sec, "bob", name) == 0
    consumer = strom(
        *base,
        "--add",
        "--allow-principal",
        "User:bob",
        "--consumer",
        "--topic",
        name,
        "--group",
        group,
    )
    assert consumer.returncode == 0, consumer.stderr
    assert consume_one(sec, "bob", name, group) == 0
    listed = strom(*base, "--list", "--topic", name)
    assert listed.returncode == 0, listed.stderr
    for op in ("WRITE", "DESCRIBE", "CREATE", "READ"):
        assert f"operation={op}, permissionType=ALLOW" in listed.stdout
    removed = strom(*base, "--remove", "--force", "--topic", name)
    assert removed.returncode == 0, removed.stderr
    assert produce(sec, "bob", name) == TOPIC_DENIED
    refused = strom(
        "acls",
        "--bootstrap-server",
        sec.bootstrap(SASL),
        "--command-config",
        str(props),
        "--add",
        "--allow-principal",
        "User:bob",
        "--topic",
        name,
        "--resource-pattern-type",
        "any",
    )
    assert refused.returncode == 1
    assert "is not valid when adding or removing ACLs" in refused.stderr
    _ = proc


def test_certificate_name_mapped_by_rules(acl_broker: tuple[sh.Secured, BrokerProcess]) -> None:
    """CN=dave,O=Acme,C=US is mapped to User:dave by ssl.principal.mapping.rules."""
    sec, _ = acl_broker
    sec.client_cert("dave", {"C": "US", "O": "Acme", "CN": "dave"})
    name = topic(sec)
    grant(sec, acl(RT.TOPIC, name, "User:dave", Op.WRITE))
    assert produce(sec, "dave", name, scenario="SSL") == 0
    sec.client_cert("erin", {"C": "US", "O": "Acme", "CN": "erin"})
    assert produce(sec, "erin", name, scenario="SSL") == TOPIC_DENIED


def test_kafka_python_and_aiokafka_see_the_same_rights(
    acl_broker: tuple[sh.Secured, BrokerProcess],
) -> None:
    from aiokafka import AIOKafkaProducer
    from aiokafka.errors import TopicAuthorizationFailedError as AioDenied
    from kafka import KafkaProducer
    from kafka.errors import TopicAuthorizationFailedError

    sec, _ = acl_broker
    name = topic(sec)
    grant(sec, acl(RT.TOPIC, name, "User:alice", Op.WRITE))
    p = KafkaProducer(**sec.kafka_python(SASL, "alice"))
    p.send(name, b"ok").get(timeout=10)
    p.close()
    p = KafkaProducer(max_block_ms=5000, **sec.kafka_python(SASL, "bob"))
    with pytest.raises(TopicAuthorizationFailedError):
        p.send(name, b"no").get(timeout=10)
    p.close(timeout=5)

    async def aio() -> None:
        ok = AIOKafkaProducer(**sec.aiokafka(SASL, "alice"))
        await ok.start()
        try:
            await ok.send_and_wait(name, b"ok")
        finally:
            await ok.stop()
        bad = AIOKafkaProducer(**sec.aiokafka(SASL, "bob"))
        await bad.start()
        try:
            with pytest.raises(AioDenied):
                await bad.send_and_wait(name, b"no")
        finally:
            await bad.stop()

    asyncio.run(aio())


def test_acls_survive_a_restart_and_delete_acls_matches_filters(
    acl_broker: tuple[sh.Secured, BrokerProcess],
) -> None:
    sec, proc = acl_broker
    name = topic(sec)
    grant(sec, acl(RT.TOPIC, name, "User:alice", Op.WRITE))
    proc.restart()
    assert produce(sec, "alice", name) == 0
    flt = AclBindingFilter(RT.TOPIC, name, PatternType.MATCH)
    deleted = run_admin(sec, lambda admin: admin.delete_acls([flt]))
    assert [b.entry.principal for b in deleted[0]] == ["User:alice"]
    assert produce(sec, "alice", name) == TOPIC_DENIED
    assert CLUSTER_NAME == "kafka-cluster"


def test_per_entity_answers_of_group_and_config_apis(
    acl_broker: tuple[sh.Secured, BrokerProcess],
) -> None:
    """OffsetFetch v8 per group and per topic, DescribeGroups per group with authorized
    operations, ListGroups filtered, DescribeConfigs per resource, as strom's client
    reads the raw answers."""
    from strom.protocol.generated.describe_configs import DescribeConfigsRequest
    from strom.protocol.generated.describe_groups import DescribeGroupsRequest
    from strom.protocol.generated.list_groups import ListGroupsRequest
    from strom.protocol.generated.offset_fetch import OffsetFetchRequest

    sec, _ = acl_broker
    mine, other = topic(sec), topic(sec)
    group, hidden = sh.unique("g"), sh.unique("g")
    produce(sec, "admin", mine)
    grant(
        sec,
        acl(RT.TOPIC, mine, "User:alice", Op.READ),
        acl(RT.GROUP, group, "User:alice", Op.READ),
        acl(RT.TOPIC, other, "User:alice", Op.DESCRIBE_CONFIGS),
    )
    assert consume_one(sec, "alice", mine, group) == 0
    assert consume_one(sec, "admin", mine, hidden) == 0
    OF = OffsetFetchRequest

    async def as_alice() -> tuple[Any, ...]:
        async with AIOAdmin(sec.strom(SASL, "alice")) as admin:
            send = admin.client.send
            fetched = await send(
                None,
                OF(
                    groups=[
                        OF.OffsetFetchRequestGroup(
                            group,
                            topics=[
                                OF.OffsetFetchRequestTopics(mine, [0]),
                                OF.OffsetFetchRequestTopics(other, [0]),
                            ],
                        ),
                        OF.OffsetFetchRequestGroup(hidden, topics=None),
                    ]
                ),
            )
            described = await send(
                None, DescribeGroupsRequest([group, hidden], include_authorized_operations=True)
            )
            listed = await send(None, ListGroupsRequest())
            R = DescribeConfigsRequest.DescribeConfigsResource
            configs = await send(
                None, DescribeConfigsRequest([R(2, mine, None), R(2, other, None), R(4, "1", None)])
            )
            return fetched, described, listed, configs

    fetched, described, listed, configs = asyncio.run(as_alice())
    by_group = {g.group_id: g for g in fetched.groups}
    assert by_group[hidden].error_code == GROUP_DENIED
    codes = {t.name: [p.error_code for p in t.partitions] for t in by_group[group].topics}
    assert codes == {mine: [0], other: [TOPIC_DENIED]}
    groups = {g.group_id: (g.error_code, g.authorized_operations) for g in described.groups}
    assert groups[hidden][0] == GROUP_DENIED
    assert groups[group] == (0, (1 << Op.READ) | (1 << Op.DESCRIBE))
    listed_ids = {g.group_id for g in listed.groups}
    assert group in listed_ids and hidden not in listed_ids  # hidden is left out
    assert [(r.resource_name, r.error_code) for r in configs.results] == [
        (mine, TOPIC_DENIED),
        (other, 0),
        ("1", CLUSTER_DENIED),
    ]


def test_brokers_add_partitions_to_transactions_with_cluster_action(
    acl_broker: tuple[sh.Secured, BrokerProcess],
) -> None:
    """AddPartitionsToTxn v4+ (brokers verifying transactions) needs CLUSTER_ACTION;
    then each transaction's topics need WRITE, or none of them is added."""
    from strom.protocol.generated.add_partitions_to_txn import AddPartitionsToTxnRequest as APT

    sec, _ = acl_broker
    name = topic(sec)
    grant(sec, acl(RT.CLUSTER, CLUSTER_NAME, "User:alice", Op.CLUSTER_ACTION))
    txn = APT.AddPartitionsToTxnTransaction(
        sh.unique("tx"), 1, 0, True, [APT.AddPartitionsToTxnTopic(name, [0])]
    )

    async def send(user: str) -> Any:
        async with AIOAdmin(sec.strom(SASL, user)) as admin:
            return await admin.client.send(None, APT(transactions=[txn]), version=4)

    assert asyncio.run(send("bob")).error_code == CLUSTER_DENIED
    resp = asyncio.run(send("alice"))
    assert resp.error_code == 0
    (result,) = resp.results_by_transaction
    assert [
        (t.name, [p.partition_error_code for p in t.results_by_partition])
        for t in result.topic_results
    ] == [(name, [TOPIC_DENIED])]


def test_automatic_topic_creation_needs_create(
    acl_broker: tuple[sh.Secured, BrokerProcess],
) -> None:
    from strom.protocol.generated.metadata import MetadataRequest

    sec, _ = acl_broker
    prefix = sh.unique("auto") + "-"
    grant(sec, acl(RT.TOPIC, prefix, "User:alice", Op.WRITE, pattern=PatternType.PREFIXED))
    name = f"{prefix}new"

    async def metadata(user: str, auto: bool = True) -> int:
        async with AIOAdmin(sec.strom(SASL, user)) as admin:
            request = MetadataRequest(
                topics=[MetadataRequest.MetadataRequestTopic(name=name)],
                allow_auto_topic_creation=auto,
            )
            return int((await admin.client.send(None, request)).topics[0].error_code)

    assert asyncio.run(metadata("alice")) == TOPIC_DENIED  # may describe, may not create
    assert asyncio.run(metadata("admin", auto=False)) == 3  # nothing created: UNKNOWN_TOPIC
    grant(sec, acl(RT.TOPIC, prefix, "User:alice", Op.CREATE, pattern=PatternType.PREFIXED))
    assert asyncio.run(metadata("alice")) in (0, 5)  # created (leader maybe not yet known)


def test_kip848_consumer_groups_under_acls(acl_broker: tuple[sh.Secured, BrokerProcess]) -> None:
    """ConsumerGroupHeartbeat needs READ of the group (and DESCRIBE of the subscribed
    topics); ConsumerGroupDescribe DESCRIBE of each group."""
    from strom.protocol.generated.consumer_group_describe import ConsumerGroupDescribeRequest
    from strom.protocol.generated.consumer_group_heartbeat import ConsumerGroupHeartbeatRequest

    sec, _ = acl_broker
    name, secret = topic(sec), topic(sec)
    group, other = sh.unique("g"), sh.unique("g")
    grant(
        sec, acl(RT.TOPIC, name, "User:alice", Op.READ), acl(RT.GROUP, group, "User:alice", Op.READ)
    )
    produce(sec, "admin", name)
    from confluent_kafka import Consumer

    c = Consumer(
        {
            **sec.confluent(SASL, "alice"),
            "group.id": group,
            "group.protocol": "consumer",
            "auto.offset.reset": "earliest",
        }
    )
    try:
        c.subscribe([name])
        got = None
        for _ in range(30):
            got = c.poll(1.0)
            if got is not None and got.error() is None:
                break
        assert got is not None and got.error() is None, got and got.error()
    finally:
        c.close()
    CGH = ConsumerGroupHeartbeatRequest

    async def as_alice() -> tuple[int, int, Any]:
        async with AIOAdmin(sec.strom(SASL, "alice")) as admin:
            send = admin.client.send
            denied_group = await send(
                None,
                CGH(
                    group_id=other,
                    member_id="m" * 22,
                    member_epoch=0,
                    rebalance_timeout_ms=30000,
                    subscribed_topic_names=[name],
                ),
                version=1,
            )
            denied_topic = await send(
                None,
                CGH(
                    group_id=group,
                    member_id="n" * 22,
                    member_epoch=0,
                    rebalance_timeout_ms=30000,
                    subscribed_topic_names=[secret],
                ),
                version=1,
            )
            described = await send(
                None, ConsumerGroupDescribeRequest([group, other], True), version=0
            )
            return denied_group.error_code, denied_topic.error_code, described

    denied_group, denied_topic, described = asyncio.run(as_alice())
    assert (denied_group, denied_topic) == (GROUP_DENIED, TOPIC_DENIED)
    codes = {g.group_id: (g.error_code, g.authorized_operations) for g in described.groups}
    assert codes[other][0] == GROUP_DENIED
    assert codes[group] == (0, (1 << Op.READ) | (1 << Op.DESCRIBE))
