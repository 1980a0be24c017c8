"""Security benchmark: what TLS and SASL cost, on one broker in one run.

One strom broker (fresh, temporary directory) with four listeners side by side:
PLAINTEXT, SSL, SASL_PLAINTEXT (SCRAM-SHA-256) and SASL_SSL (SCRAM-SHA-256), an
ECDSA P-256 certificate made for the run. confluent-kafka (librdkafka, so that the
client is not the bottleneck) produces N records of 1 KB, uncompressed, acks=1, to a
topic per listener, then reads it back with partitions assigned; the fastest of
``--repeat`` runs counts (the listeners take turns, so that the machine's load hits
them alike). Then the connection set-up rate with strom's own client:
TCP connect + ApiVersions (+ TLS handshake) (+ SaslHandshake and the SCRAM exchange,
4096 PBKDF2 iterations on each side) + close, one connection at a time.

Prints a table and each listener's ratio to PLAINTEXT (< 1: slower than plaintext).

    python bench/security_bench.py            # N = 200,000
    python bench/security_bench.py --quick    # N = 20,000

Not part of the test suite and never a timed assertion; quote ratios from one run.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from strom.client.aio.admin import AIOAdmin
from strom.net.connection import BrokerConnection
from strom.net.security import security_from_mapping
from strom.testing.broker import BrokerProcess, free_port
from strom.testing.certs import CertificateAuthority

LISTENERS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
USER, PASSWORD = "bench", "bench-secret"
SIZE = 1024


def broker_settings(ports: dict[str, int], keystore: Path, ca: Path) -> dict[str, str]:
    return {
        "listeners": ",".join(f"{n}://127.0.0.1:{p}" for n, p in ports.items()),
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(keystore),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(ca),
        "sasl.enabled.mechanisms": "SCRAM-SHA-256",
        "num.partitions": "3",
    }


def confluent_conf(listener: str, port: int, ca: Path) -> dict[str, Any]:
    conf: dict[str, Any] = {"bootstrap.servers": f"127.0.0.1:{port}"}
    if listener != "PLAINTEXT":
        conf["security.protocol"] = listener
    if listener.endswith("SSL"):
        conf["ssl.ca.location"] = str(ca)
    if listener.startswith("SASL"):
        conf.update(
            {"sasl.mechanism": "SCRAM-SHA-256", "sasl.username": USER, "sasl.password": PASSWORD}
        )
    return conf


def produce(conf: dict[str, Any], topic: str, n: int) -> float:
    from confluent_kafka import Producer

    p = Producer({**conf, "acks": 1, "linger.ms": 5, "batch.size": 262144})
    value = b"x" * SIZE
    start = time.perf_counter()
    for _ in range(n):
        while True:
            try:
                p.produce(topic, value)
                break
            except BufferError:
                p.poll(0.01)
    assert p.flush(120) == 0
    return time.perf_counter() - start


def consume(conf: dict[str, Any], topic: str, n: int) -> float:
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({**conf, "group.id": "bench", "enable.auto.commit": False})
    c.assign([TopicPartition(topic, p, 0) for p in range(3)])
    got = 0
    start = time.perf_counter()
    while got < n:
        got += len([m for m in c.consume(10000, 1.0) if m.error() is None])
    elapsed = time.perf_counter() - start
    c.close()
    return elapsed


def client_security(listener: str, ca: Path) -> dict[str, str]:
    conf = {"security.protocol": listener}
    if listener.endswith("SSL"):
        conf.update({"ssl.truststore.type": "PEM", "ssl.truststore.location": str(ca)})
    if listener.startswith("SASL"):
        conf["sasl.mechanism"] = "SCRAM-SHA-256"
        conf["sasl.jaas.config"] = (
            "org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="{USER}" password="{PASSWORD}";'
        )
    return conf


async def connection_rate(listener: str, port: int, ca: Path, seconds: float) -> float:
    security = security_from_mapping(client_security(listener, ca))
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        conn = await BrokerConnection.open("127.0.0.1", port, security=security)
        await conn.close()
        count += 1
    return count / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="N = 20,000")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--connect-seconds", type=float, default=5.0)
    args = ap.parse_args()
    n = 20_000 if args.quick else 200_000
    with tempfile.TemporaryDirectory(prefix="strom-security-bench-") as tmp:
        root = Path(tmp)
        ca = CertificateAuthority(root / "certs")
        cert = ca.issue("broker")
        ports = {name: free_port() for name in LISTENERS}
        broker = BrokerProcess(
            root / "broker",
            broker_settings(ports, cert.keystore, ca.ca_path),
            port=ports["PLAINTEXT"],
        )
        with broker:

            async def user() -> None:
                async with AIOAdmin({"bootstrap.servers": broker.bootstrap}) as admin:
                    await admin.alter_user_scram_credentials(
                        [(USER, "SCRAM-SHA-256", PASSWORD, 4096)]
                    )

            asyncio.run(user())
            # round robin: each repeat runs every listener, so a busy moment of the
            # machine hits them alike; the fastest run of each counts
            best = {name: [float("inf"), float("inf")] for name in LISTENERS}
            for r in range(args.repeat):
                for listener in LISTENERS:
                    conf = confluent_conf(listener, ports[listener], ca.ca_path)
                    topic = f"bench-{listener.lower()}-{r}"
                    best[listener][0] = min(best[listener][0], produce(conf, topic, n))
                    best[listener][1] = min(best[listener][1], consume(conf, topic, n))
            rows: dict[str, tuple[float, float, float]] = {}
            for listener in LISTENERS:
                rate = asyncio.run(
                    connection_rate(listener, ports[listener], ca.ca_path, args.connect_seconds)
                )
                rows[listener] = (n / best[listener][0], n / best[listener][1], rate)
    base = rows["PLAINTEXT"]
    print(f"{n} records of {SIZE} B per run, best of {args.repeat}; connections: strom client")
    print(
        f"{'listener':<16}{'produce rec/s':>15}{'consume rec/s':>15}{'conn/s':>10}"
        f"{'produce':>10}{'consume':>10}{'connect':>10}"
    )
    for listener, (prod, cons, conn) in rows.items():
        print(
            f"{listener:<16}{prod:>15,.0f}{cons:>15,.0f}{conn:>10.1f}"
            f"{prod / base[0]:>10.2f}{cons / base[1]:>10.2f}{conn / base[2]:>10.2f}"
        )


if __name__ == "__main__":
    main()
