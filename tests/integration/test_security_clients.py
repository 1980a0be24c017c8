"""Real clients over every security protocol of one broker: TLS (with a client
certificate), SASL_PLAINTEXT and SASL_SSL with PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 and
the unsecured OAUTHBEARER. Each client library produces and reads back in a consumer
group; confluent-kafka also runs transactions and admin operations over SASL_SSL.
SCRAM credentials are made with AlterUserScramCredentials (and ``strom configs``).
Certificates are made in the test (strom.testing.certs); no authorizer here (see
test_acls.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from strom.client.aio.admin import AIOAdmin
from strom.testing.broker import BrokerFactory, BrokerProcess
from tests.integration import security_helpers as sh
from tests.integration.cli_helpers import strom

pytestmark = pytest.mark.integration

SCENARIOS = [
    "SSL",
    "SASL_PLAINTEXT/PLAIN",
    "SASL_PLAINTEXT/SCRAM-SHA-256",
    "SASL_SSL/SCRAM-SHA-512",
    "SASL_SSL/OAUTHBEARER",
]


@pytest.fixture(scope="module")
def secured(
    tmp_path_factory: pytest.TempPathFactory, broker_kind: str
) -> Iterator[tuple[sh.Secured, BrokerProcess]]:
    if broker_kind != "strom":
        pytest.skip("the security tests configure strom's listeners")
    sec = sh.Secured(tmp_path_factory.mktemp("certs"))
    factory = BrokerFactory(lambda: tmp_path_factory.mktemp("secured-broker"))
    proc = sec.start(factory)

    async def users() -> None:
        async with AIOAdmin({"bootstrap.servers": proc.bootstrap}) as admin:
            await admin.alter_user_scram_credentials(
                [
                    (u, m, p, 4096)
                    for u, p in sh.PASSWORDS.items()
                    for m in ("SCRAM-SHA-256", "SCRAM-SHA-512")
                ]
            )

    asyncio.run(users())
    yield sec, proc
    assert proc.is_running(), proc.log_tail()
    factory.close()


def _expected(n: int = 20) -> list[bytes]:
    return [f"v{i}".encode() for i in range(n)]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_confluent_kafka(secured: tuple[sh.Secured, BrokerProcess], scenario: str) -> None:
    sec, _ = secured
    topic = sh.unique("confluent")
    assert sorted(sh.roundtrip_confluent(sec.confluent(scenario), topic)) == sorted(_expected())


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_kcat(secured: tuple[sh.Secured, BrokerProcess], scenario: str) -> None:
    sec, _ = secured
    topic = sh.unique("kcat")
    assert sorted(sh.roundtrip_kcat(sec.kcat(scenario), topic)) == sorted(_expected())


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_kafka_python(secured: tuple[sh.Secured, BrokerProcess], scenario: str) -> None:
    sec, _ = secured
    topic = sh.unique("kafka-python")
    got = sh.roundtrip_kafka_python(sec.kafka_python(scenario), topic)
    assert sorted(got) == sorted(_expected())


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_aiokafka(secured: tuple[sh.Secured, BrokerProcess], scenario: str) -> None:
    sec, _ = secured
    topic = sh.unique("aiokafka")
    assert sorted(sh.roundtrip_aiokafka(sec.aiokafka(scenario), topic)) == sorted(_expected())


@pytest.mark.parametrize(
    "scenario", ["SSL", "SASL_PLAINTEXT/SCRAM-SHA-512", "SASL_SSL/PLAIN", "SASL_SSL/OAUTHBEARER"]
)
def test_strom_client(secured: tuple[sh.Secured, BrokerProcess], scenario: str) -> None:
    sec, _ = secured
    topic = sh.unique("strom")
    assert sorted(sh.roundtrip_strom(sec.strom(scenario), topic)) == sorted(_expected())


def test_transactions_and_admin_over_sasl_ssl(secured: tuple[sh.Secured, BrokerProcess]) -> None:
    from confluent_kafka import Consumer, Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    sec, _ = secured
    conf = sec.confluent("SASL_SSL/SCRAM-SHA-256")
    topic = sh.unique("txn")
    admin = AdminClient(conf)
    admin.create_topics([NewTopic(topic, 2, 1)])[topic].result(sh.TIMEOUT_S)
    assert topic in admin.list_topics(timeout=sh.TIMEOUT_S).topics
    p = Producer({**conf, "transactional.id": sh.unique("tx")})
    p.init_transactions(sh.TIMEOUT_S)
    p.begin_transaction()
    p.produce(topic, b"aborted")
    p.abort_transaction(sh.TIMEOUT_S)
    p.begin_transaction()
    p.produce(topic, b"committed")
    p.commit_transaction(sh.TIMEOUT_S)
    c = Consumer(
        {
            **conf,
            "group.id": sh.unique("g"),
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
        }
    )
    try:
        c.subscribe([topic])
        got = []
        for _ in range(30):
            m = c.poll(1.0)
            if m is not None and m.error() is None:
                got.append(m.value())
            if got:
                break
    finally:
        c.close()
    assert got == [b"committed"]


def test_wrong_password_is_refused_and_the_broker_serves_on(
    secured: tuple[sh.Secured, BrokerProcess],
) -> None:
    from confluent_kafka import Producer

    sec, _ = secured
    errors: list[str] = []
    bad = Producer(
        {
            **sec.confluent("SASL_PLAINTEXT/SCRAM-SHA-256", password="wrong"),
            "error_cb": lambda e: errors.append(e.str()),
        }
    )
    for _ in range(50):
        bad.poll(0.2)
        if errors:
            break
    assert any(
        "Authentication failed during authentication due to invalid credentials with SASL "
        "mechanism SCRAM-SHA-256" in e
        for e in errors
    ), errors
    topic = sh.unique("after")
    assert sorted(sh.roundtrip_confluent(sec.confluent("SASL_PLAINTEXT/PLAIN"), topic)) == sorted(
        _expected()
    )


def test_strom_configs_adds_scram_credentials(secured: tuple[sh.Secured, BrokerProcess]) -> None:
    sec, proc = secured
    user = sh.unique("carol")
    r = strom(
        "configs",
        "--bootstrap-server",
        proc.bootstrap,
        "--alter",
        "--entity-type",
        "users",
        "--entity-name",
        user,
        "--add-config",
        "SCRAM-SHA-512=[iterations=8192,password=c-pw]",
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"Completed updating config for user {user}."

    async def describe() -> dict[str, dict[str, int]]:
        async with AIOAdmin({"bootstrap.servers": proc.bootstrap}) as admin:
            return await admin.describe_user_scram_credentials([user])

    assert asyncio.run(describe()) == {user: {"SCRAM-SHA-512": 8192}}

    async def errors() -> list[int]:
        from strom.protocol.errors import KafkaError

        codes = []
        async with AIOAdmin({"bootstrap.servers": proc.bootstrap}) as admin:
            for call in (
                admin.describe_user_scram_credentials(["nobody-" + user]),
                admin.alter_user_scram_credentials([(user, "SCRAM-SHA-256", "pw", 1000)]),
                admin.alter_user_scram_credentials([(user, "SCRAM-SHA-256", "pw", 20000)]),
                admin.alter_user_scram_credentials(deletions=[(user, "SCRAM-SHA-256")]),
            ):
                try:
                    await call
                    codes.append(0)
                except KafkaError as exc:
                    codes.append(exc.code)
        return codes

    # unknown user; too few and too many iterations; deleting what does not exist
    assert asyncio.run(errors()) == [91, 93, 93, 91]
    sh.PASSWORDS[user] = "c-pw"
    try:
        topic = sh.unique("carol")
        got = sh.roundtrip_confluent(sec.confluent("SASL_SSL/SCRAM-SHA-512", user), topic, 3)
        assert sorted(got) == _expected(3)
        # --command-config: strom's tools connect with the same security settings
        props = sec.certs_dir / f"{user}.properties"
        props.write_text(
            "".join(f"{k}={v}\n" for k, v in sec.strom("SASL_SSL/SCRAM-SHA-512", user).items())
        )
        listed = strom(
            "topics",
            "--bootstrap-server",
            sec.bootstrap("SASL_SSL"),
            "--command-config",
            str(props),
            "--list",
        )
        assert listed.returncode == 0, listed.stderr
        assert topic in listed.stdout.split()
    finally:
        del sh.PASSWORDS[user]


def test_a_listeners_key_store_is_rotated_at_runtime(
    secured: tuple[sh.Secured, BrokerProcess], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Kafka's per-broker dynamic update of listener.name.<l>.ssl.keystore.location: new
    connections present the new certificate; refused at the cluster level, for password
    configs and for a store that does not load. (Last in the module: it puts the old
    store back.)"""
    from confluent_kafka.admin import AdminClient

    from strom.client.admin_types import AlterConfigOp, AlterConfigOpType, ConfigResource
    from strom.client.admin_types import ConfigResourceType as CRT
    from strom.protocol.errors import KafkaError
    from strom.testing.certs import CertificateAuthority

    sec, proc = secured
    key = "listener.name.sasl_ssl.ssl.keystore.location"
    other_ca = CertificateAuthority(tmp_path_factory.mktemp("other-ca"))
    rotated = other_ca.issue("broker2", {"CN": "broker2"})
    assert sec.broker_cert is not None
    old = str(sec.broker_cert.keystore)

    async def alter(name: str, entity: str, value: str | None) -> int:
        op = AlterConfigOp(
            name, value, AlterConfigOpType.SET if value else AlterConfigOpType.DELETE
        )
        async with AIOAdmin({"bootstrap.servers": proc.bootstrap}) as admin:
            try:
                await admin.incremental_alter_configs({ConfigResource(CRT.BROKER, entity): [op]})
            except KafkaError as exc:
                return exc.code
            return 0

    def lists_topics(ca: str) -> bool:
        conf = {**sec.confluent("SASL_SSL/PLAIN"), "ssl.ca.location": ca}
        try:
            AdminClient(conf).list_topics(timeout=4)
        except Exception:
            return False
        return True

    assert asyncio.run(alter(key, "", str(rotated.keystore))) == 42  # not at cluster level
    assert asyncio.run(alter("listener.name.sasl_ssl.ssl.key.password", "1", "x")) == 42
    assert asyncio.run(alter(key, "1", "/no/such/file.pem")) == 42
    assert lists_topics(sec.ca_path)
    assert asyncio.run(alter(key, "1", str(rotated.keystore))) == 0
    try:
        assert lists_topics(str(other_ca.ca_path))
        assert not lists_topics(sec.ca_path)
        described = strom(
            "configs", "--bootstrap-server", proc.bootstrap, "--describe", "--broker", "1"
        )
        assert f"{key}={rotated.keystore} sensitive=false" in described.stdout
    finally:
        assert asyncio.run(alter(key, "1", None)) == 0
    assert lists_topics(sec.ca_path)
    assert old
