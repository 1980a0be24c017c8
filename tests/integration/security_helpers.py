"""Secured brokers for the security tests: certificates made at run time, listeners of
every security protocol side by side, and each client library's settings for them.

``Secured`` knows the ports of one broker's listeners and builds, per client
library, the settings to reach a listener as a user. Scenario names:
``SSL``, ``SASL_PLAINTEXT/PLAIN``, ``SASL_SSL/SCRAM-SHA-512`` and so on.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from strom.common.sasl import unsecured_token
from strom.testing.broker import BrokerFactory, BrokerProcess, free_port
from strom.testing.certs import CertFiles, CertificateAuthority

PLAIN_MODULE = "org.apache.kafka.common.security.plain.PlainLoginModule"
SCRAM_MODULE = "org.apache.kafka.common.security.scram.ScramLoginModule"
OAUTH_MODULE = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule"
MECHANISMS = "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER"
PASSWORDS = {"admin": "admin-secret", "alice": "alice-secret", "bob": "bob-secret"}
TIMEOUT_S = 30.0


def plain_jaas(user: str = "admin") -> str:
    users = " ".join(f'user_{u}="{p}"' for u, p in PASSWORDS.items())
    return f'{PLAIN_MODULE} required username="{user}" password="{PASSWORDS[user]}" {users};'


@dataclass
class Secured:
    """One broker with PLAINTEXT, SSL, SASL_PLAINTEXT and SASL_SSL listeners."""

    certs_dir: Path
    ports: dict[str, int] = field(default_factory=dict)
    ca: CertificateAuthority | None = None
    broker_cert: CertFiles | None = None
    clients: dict[str, CertFiles] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.ca = CertificateAuthority(self.certs_dir)
        self.broker_cert = self.ca.issue("broker", {"CN": "broker"})
        for name in ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"):
            self.ports[name] = free_port()

    def client_cert(self, name: str, subject: dict[str, str] | None = None) -> CertFiles:
        assert self.ca is not None
        if name not in self.clients:
            self.clients[name] = self.ca.issue(name, subject or {"CN": name})
        return self.clients[name]

    @property
    def ca_path(self) -> str:
        assert self.ca is not None
        return str(self.ca.ca_path)

    def overrides(self, **extra: str) -> dict[str, str]:
        assert self.broker_cert is not None
        listeners = ",".join(f"{n}://127.0.0.1:{p}" for n, p in self.ports.items())
        settings = {
            "listeners": listeners,
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(self.broker_cert.keystore),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": self.ca_path,
            "listener.name.ssl.ssl.client.auth": "requested",
            "sasl.enabled.mechanisms": MECHANISMS,
            "group.initial.rebalance.delay.ms": "0",
        }
        for listener in ("sasl_plaintext", "sasl_ssl"):
            settings[f"listener.name.{listener}.plain.sasl.jaas.config"] = plain_jaas()
            settings[f"listener.name.{listener}.oauthbearer.sasl.jaas.config"] = (
                f'{OAUTH_MODULE} required unsecuredLoginStringClaim_sub="admin";'
            )
        settings.update(extra)
        return settings

    def start(self, factory: BrokerFactory, **extra: str) -> BrokerProcess:
        return factory(self.overrides(**extra), port=self.ports["PLAINTEXT"])

    def bootstrap(self, scenario: str) -> str:
        return f"127.0.0.1:{self.ports[scenario.split('/')[0]]}"

    # -- client settings --------------------------------------------------------------
    def confluent(
        self, scenario: str, user: str = "alice", password: str | None = None
    ) -> dict[str, Any]:
        protocol, _, mechanism = scenario.partition("/")
        conf: dict[str, Any] = {"bootstrap.servers": self.bootstrap(scenario)}
        if protocol != "PLAINTEXT":
            conf["security.protocol"] = protocol
        if protocol.endswith("SSL"):
            conf["ssl.ca.location"] = self.ca_path
        if protocol == "SSL":
            cert = self.client_cert(user)
            conf["ssl.certificate.location"] = str(cert.cert)
            conf["ssl.key.location"] = str(cert.key)
        if mechanism == "OAUTHBEARER":
            conf["sasl.mechanism"] = mechanism
            conf["sasl.oauthbearer.config"] = f"principal={user}"
            conf["enable.sasl.oauthbearer.unsecure.jwt"] = True
        elif mechanism:
            conf["sasl.mechanism"] = mechanism
            conf["sasl.username"] = user
            conf["sasl.password"] = PASSWORDS[user] if password is None else password
        return conf

    def kcat(self, scenario: str, user: str = "alice") -> list[str]:
        out = []
        for key, value in self.confluent(scenario, user).items():
            if key != "bootstrap.servers":
                out += ["-X", f"{key}={str(value).lower() if isinstance(value, bool) else value}"]
        return ["-b", self.bootstrap(scenario), *out]

    def strom(self, scenario: str, user: str = "alice") -> dict[str, str | int]:
        """strom's client: Kafka's Java client names."""
        protocol, _, mechanism = scenario.partition("/")
        conf: dict[str, str | int] = {"bootstrap.servers": self.bootstrap(scenario)}
        conf["security.protocol"] = protocol
        if protocol.endswith("SSL"):
            conf["ssl.truststore.type"] = "PEM"
            conf["ssl.truststore.location"] = self.ca_path
        if protocol == "SSL":
            conf["ssl.keystore.type"] = "PEM"
            conf["ssl.keystore.location"] = str(self.client_cert(user).keystore)
        if mechanism:
            conf["sasl.mechanism"] = mechanism
            if mechanism == "OAUTHBEARER":
                jaas = f'{OAUTH_MODULE} required unsecuredLoginStringClaim_sub="{user}";'
            else:
                module = PLAIN_MODULE if mechanism == "PLAIN" else SCRAM_MODULE
                jaas = f'{module} required username="{user}" password="{PASSWORDS[user]}";'
            conf["sasl.jaas.config"] = jaas
        return conf

    def kafka_python(self, scenario: str, user: str = "alice") -> dict[str, Any]:
        protocol, _, mechanism = scenario.partition("/")
        kw: dict[str, Any] = {"bootstrap_servers": self.bootstrap(scenario)}
        kw["security_protocol"] = protocol
        if protocol.endswith("SSL"):
            kw["ssl_cafile"] = self.ca_path
        if protocol == "SSL":
            cert = self.client_cert(user)
            kw["ssl_certfile"], kw["ssl_keyfile"] = str(cert.cert), str(cert.key)
        if mechanism == "OAUTHBEARER":
            from kafka.net.sasl.oauth import AbstractTokenProvider

            class Provider(AbstractTokenProvider):  # type: ignore[misc]
                def token(self) -> str:
                    return unsecured_token(user)

            kw["sasl_mechanism"] = mechanism
            kw["sasl_oauth_token_provider"] = Provider()
        elif mechanism:
            kw["sasl_mechanism"] = mechanism
            kw["sasl_plain_username"] = user
            kw["sasl_plain_password"] = PASSWORDS[user]
        return kw

    def aiokafka(self, scenario: str, user: str = "alice") -> dict[str, Any]:
        from aiokafka.helpers import create_ssl_context

        protocol, _, mechanism = scenario.partition("/")
        kw: dict[str, Any] = {"bootstrap_servers": self.bootstrap(scenario)}
        kw["security_protocol"] = protocol
        if protocol == "SSL":
            cert = self.client_cert(user)
            kw["ssl_context"] = create_ssl_context(
                cafile=self.ca_path, certfile=str(cert.cert), keyfile=str(cert.key)
            )
        elif protocol == "SASL_SSL":
            kw["ssl_context"] = create_ssl_context(cafile=self.ca_path)
        if mechanism == "OAUTHBEARER":
            from aiokafka.abc import AbstractTokenProvider

            class Provider(AbstractTokenProvider):  # type: ignore[misc]
                async def token(self) -> str:
                    return unsecured_token(user)

            kw["sasl_mechanism"] = mechanism
            kw["sasl_oauth_token_provider"] = Provider()
        elif mechanism:
            kw["sasl_mechanism"] = mechanism
            kw["sasl_plain_username"] = user
            kw["sasl_plain_password"] = PASSWORDS[user]
        return kw


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# -- round trips: produce N values, read them back in a consumer group ----------------------
def roundtrip_confluent(conf: dict[str, Any], topic: str, n: int = 20) -> list[bytes]:
    from confluent_kafka import Consumer, Producer

    p = Producer(conf)
    for i in range(n):
        p.produce(topic, value=f"v{i}".encode())
    assert p.flush(TIMEOUT_S) == 0
    c = Consumer({**conf, "group.id": unique("g"), "auto.offset.reset": "earliest"})
    try:
        c.subscribe([topic])
        got: list[bytes] = []
        deadline = time.monotonic() + TIMEOUT_S
        while len(got) < n and time.monotonic() < deadline:
            m = c.poll(1.0)
            if m is not None and m.error() is None:
                got.append(m.value())
        c.commit(asynchronous=False)
    finally:
        c.close()
    return got


def roundtrip_kafka_python(kw: dict[str, Any], topic: str, n: int = 20) -> list[bytes]:
    from kafka import KafkaConsumer, KafkaProducer

    p = KafkaProducer(**kw)
    try:
        for i in range(n):
            p.send(topic, value=f"v{i}".encode())
        p.flush(TIMEOUT_S)
    finally:
        p.close()
    c = KafkaConsumer(
        topic, group_id=unique("g"), auto_offset_reset="earliest", consumer_timeout_ms=15000, **kw
    )
    try:
        got = []
        for m in c:
            got.append(m.value)
            if len(got) >= n:
                break
        c.commit()
    finally:
        c.close()
    return got


def roundtrip_aiokafka(kw: dict[str, Any], topic: str, n: int = 20) -> list[bytes]:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    async def run() -> list[bytes]:
        p = AIOKafkaProducer(**kw)
        await p.start()
        try:
            for i in range(n):
                await p.send_and_wait(topic, f"v{i}".encode())
        finally:
            await p.stop()
        c = AIOKafkaConsumer(topic, group_id=unique("g"), auto_offset_reset="earliest", **kw)
        await c.start()
        got: list[bytes] = []
        try:
            async with asyncio.timeout(TIMEOUT_S):
                while len(got) < n:
                    batch = await c.getmany(timeout_ms=1000)
                    got += [m.value for ms in batch.values() for m in ms]
            await c.commit()
        finally:
            await c.stop()
        return got

    return asyncio.run(run())


def roundtrip_kcat(args: list[str], topic: str, n: int = 20) -> list[bytes]:
    kcat = shutil.which("kcat")
    assert kcat is not None, "kcat is not installed (apt-get install kcat)"
    data = "".join(f"v{i}\n" for i in range(n))
    produced = subprocess.run(
        [kcat, *args, "-P", "-t", topic],
        input=data,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert produced.returncode == 0, produced.stderr
    consumed = subprocess.run(
        [kcat, *args, "-G", unique("g"), "-o", "beginning", "-c", str(n), "-e", topic],
        capture_output=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert consumed.returncode == 0, consumed.stderr
    return consumed.stdout.splitlines()


def roundtrip_strom(conf: dict[str, str | int], topic: str, n: int = 20) -> list[bytes]:
    from strom.client import Consumer, Producer

    with Producer(conf) as p:
        for f in [p.send(topic, f"v{i}".encode()) for i in range(n)]:
            f.result(TIMEOUT_S)
    got: list[bytes] = []
    with Consumer({**conf, "group.id": unique("g"), "auto.offset.reset": "earliest"}) as c:
        c.subscribe([topic])
        deadline = time.monotonic() + TIMEOUT_S
        while len(got) < n and time.monotonic() < deadline:
            got += [r.value for r in c.poll(1.0) if r.value is not None]
        c.commit()
    return got
