"""Client benchmark: strom's producer/consumer vs kafka-python and aiokafka.

strom runs twice: its asyncio API (AIOProducer/AIOConsumer, compared with
aiokafka) and its blocking API (Producer/Consumer, compared with kafka-python).

One strom broker (fresh, temporary directory), the same records for every
client, lz4 compression, acks=1, linger.ms=5, batch.size=64 KB:

  N x 100 B and N/5 x 1 KB records, one topic per client and size, 3 partitions.

Producer: send everything, then flush; records/s. Consumer: read a whole topic
with partitions assigned (no group), from the beginning; records/s. Every
consumer reads the same topic (the one aiokafka's producer wrote), so all decode
the same batches. Each case runs ``--repeat`` times (default 5) and the fastest
run counts. Prints a table and strom/kafka-python and strom/aiokafka ratios
(> 1 means strom is faster).

    python bench/client_bench.py            # N = 200,000
    python bench/client_bench.py --quick    # N = 20,000

Not part of the test suite and never a timed assertion; quote ratios from one run.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

from strom.client.aio.consumer import AIOConsumer
from strom.client.aio.producer import AIOProducer
from strom.common.types import TopicPartition
from strom.testing.broker import BrokerProcess
from strom.testing.kafka import create_topic

PARTITIONS = 3
COMMON = {"acks": 1, "linger.ms": 5, "batch.size": 65536, "compression.type": "lz4"}


def payload(size: int) -> bytes:
    return (b"strom-bench-" * (size // 12 + 1))[:size]


# -- strom ---------------------------------------------------------------------------


def strom_produce(bootstrap: str, topic: str, n: int, size: int) -> float:
    async def run() -> float:
        cfg = {"bootstrap.servers": bootstrap, "enable.idempotence": False, **COMMON}
        async with AIOProducer(cfg) as p:
            value = payload(size)
            start = time.perf_counter()
            for _ in range(n):
                await p.send(topic, value)
            await p.flush()
            return time.perf_counter() - start

    return asyncio.run(run())


def strom_consume(bootstrap: str, topic: str, n: int) -> float:
    async def run() -> float:
        cfg = {"bootstrap.servers": bootstrap, "auto.offset.reset": "earliest"}
        async with AIOConsumer(cfg) as c:
            c.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
            start = time.perf_counter()
            got = 0
            while got < n:
                got += len(await c.poll(1.0, max_records=5000))
            return time.perf_counter() - start

    return asyncio.run(run())


def strom_sync_produce(bootstrap: str, topic: str, n: int, size: int) -> float:
    from strom.client.blocking import Producer

    cfg = {"bootstrap.servers": bootstrap, "enable.idempotence": False, **COMMON}
    with Producer(cfg) as p:
        value = payload(size)
        start = time.perf_counter()
        for _ in range(n):
            p.send(topic, value)
        p.flush()
        return time.perf_counter() - start


def strom_sync_consume(bootstrap: str, topic: str, n: int) -> float:
    from strom.client.blocking import Consumer

    with Consumer({"bootstrap.servers": bootstrap, "auto.offset.reset": "earliest"}) as c:
        c.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
        start = time.perf_counter()
        got = 0
        while got < n:
            got += len(c.poll(1.0, max_records=5000))
        return time.perf_counter() - start


# -- kafka-python -------------------------------------------------------------------------


def kp_produce(bootstrap: str, topic: str, n: int, size: int) -> float:
    from kafka import KafkaProducer

    p = KafkaProducer(
        bootstrap_servers=bootstrap, acks=1, linger_ms=5, batch_size=65536, compression_type="lz4"
    )
    value = payload(size)
    start = time.perf_counter()
    for _ in range(n):
        p.send(topic, value)
    p.flush()
    elapsed = time.perf_counter() - start
    p.close()
    return elapsed


def kp_consume(bootstrap: str, topic: str, n: int) -> float:
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KTP

    c = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    c.assign([KTP(topic, p) for p in range(PARTITIONS)])
    c.seek_to_beginning()
    start = time.perf_counter()
    got = 0
    while got < n:
        got += sum(len(v) for v in c.poll(1000, max_records=5000).values())
    elapsed = time.perf_counter() - start
    c.close()
    return elapsed


# -- aiokafka --------------------------------------------------------------------------


def aio_produce(bootstrap: str, topic: str, n: int, size: int) -> float:
    from aiokafka import AIOKafkaProducer

    async def run() -> float:
        p = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            acks=1,
            linger_ms=5,
            max_batch_size=65536,
            compression_type="lz4",
        )
        await p.start()
        value = payload(size)
        start = time.perf_counter()
        for _ in range(n):
            await p.send(topic, value)
        await p.flush()
        elapsed = time.perf_counter() - start
        await p.stop()
        return elapsed

    return asyncio.run(run())


def aio_consume(bootstrap: str, topic: str, n: int) -> float:
    from aiokafka import AIOKafkaConsumer
    from aiokafka import TopicPartition as ATP

    async def run() -> float:
        c = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        await c.start()
        c.assign([ATP(topic, p) for p in range(PARTITIONS)])
        await c.seek_to_beginning()
        start = time.perf_counter()
        got = 0
        while got < n:
            batches = await c.getmany(timeout_ms=1000, max_records=5000)
            got += sum(len(v) for v in batches.values())
        elapsed = time.perf_counter() - start
        await c.stop()
        return elapsed

    return asyncio.run(run())


CLIENTS: dict[str, tuple[Callable[..., float], Callable[..., float]]] = {
    "strom": (strom_produce, strom_consume),
    "strom blocking": (strom_sync_produce, strom_sync_consume),
    "kafka-python": (kp_produce, kp_consume),
    "aiokafka": (aio_produce, aio_consume),
}


def best_rate(n: int, repeat: int, run: Callable[..., float], *args: object) -> float:
    """Records/s of the fastest of ``repeat`` runs (the least disturbed on a busy machine)."""
    return n / min(run(*args) for _ in range(repeat))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5, help="runs per case; the best counts")
    args = parser.parse_args()
    if args.repeat < 2:
        parser.error("--repeat must be at least 2")
    n100 = 20_000 if args.quick else args.records
    warnings.simplefilter("ignore")
    results: dict[tuple[str, str, int], float] = {}
    with tempfile.TemporaryDirectory() as tmp, BrokerProcess(Path(tmp)) as broker:
        for size, n in ((100, n100), (1024, n100 // 5)):
            for name, (produce, _) in CLIENTS.items():
                topic = f"bench-{name.replace(' ', '-')}-{size}"
                create_topic(broker.bootstrap, topic, PARTITIONS)
                create_topic(broker.bootstrap, f"{topic}-again", PARTITIONS)
                first = produce(broker.bootstrap, topic, n, size)  # the data to consume
                again = f"{topic}-again"
                rate = best_rate(n, args.repeat - 1, produce, broker.bootstrap, again, n, size)
                results[(name, "produce", size)] = max(rate, n / first)
            source = f"bench-aiokafka-{size}"  # every consumer reads the same batches
            for name, (_, consume) in CLIENTS.items():
                rate = best_rate(n, args.repeat, consume, broker.bootstrap, source, n)
                results[(name, "consume", size)] = rate
            for name in CLIENTS:
                print(
                    f"{name:15} {size:5} B  produce {results[(name, 'produce', size)]:>10,.0f} "
                    f"rec/s  consume {results[(name, 'consume', size)]:>10,.0f} rec/s",
                    flush=True,
                )
    print("\nratios (strom / other; > 1 = strom faster)")
    for size in (100, 1024):
        for op in ("produce", "consume"):
            ours = results[("strom", op, size)]
            kp = ours / results[("kafka-python", op, size)]
            aio = ours / results[("aiokafka", op, size)]
            print(f"{op:8} {size:5} B   vs kafka-python {kp:5.2f}x   vs aiokafka {aio:5.2f}x")
    print("\nstrom's blocking API / kafka-python (both synchronous)")
    for size in (100, 1024):
        for op in ("produce", "consume"):
            ratio = results[("strom blocking", op, size)] / results[("kafka-python", op, size)]
            print(f"{op:8} {size:5} B   {ratio:5.2f}x")


if __name__ == "__main__":
    main()
